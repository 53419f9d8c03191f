from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_run import Run, assert_lines

SUITE = """
import os, threading
import pytest
STOP = threading.Event()

def test_thread():
    threading.Thread(target=STOP.wait, name="known-7", daemon=True).start()

def test_env():
    os.environ["{env}"] = "1"

def test_clean():
    pass

@pytest.mark.skip(reason="not today")
def test_skipped():
    os.environ["SKIPPED_LEAK"] = "1"
"""
LEAKY = SUITE.format(env="KNOWN_ENV")


def update(run: Run, source: str, *args: str) -> pytest.RunResult:
    return run(source, "--resource-baseline=base.json", "--resource-baseline-update", *args)


def entries(run: Run) -> list[dict[str, object]]:
    data = json.loads((run.pytester.path / "base.json").read_text())
    assert data["version"] == 1
    known: list[dict[str, object]] = data["known_leaks"]
    return known


def test_update_writes_sorted_stable_entries_and_does_not_fail(run: Run) -> None:
    result = update(run, LEAKY, "--resource-strict", "-n", "2")
    result.assert_outcomes(passed=3, skipped=1)
    assert_lines(result, "resources: baseline written to", "(2 known leak(s) in 2 test(s))")
    assert entries(run) == [
        {"nodeid": "test_it.py::test_env", "kind": "env", "signature": "env:environ:KNOWN_ENV",
         "count": 1},
        {"nodeid": "test_it.py::test_thread", "kind": "threads",
         "signature": "threads:known-N:threading.Event.wait", "count": 1},
    ]  # fmt: skip
    lines = (run.pytester.path / "base.json").read_text().splitlines()
    assert sum('"nodeid"' in line for line in lines) == 2  # one line per entry: diff-friendly


def test_known_leaks_pass_in_strict_mode_and_show_as_baselined(run: Run) -> None:
    update(run, LEAKY)
    result = run(LEAKY, "--resource-baseline=base.json", "--resource-strict", "-n", "2",
                 "--resource-report=r.json")  # fmt: skip
    result.assert_outcomes(passed=3, skipped=1)
    assert_lines(
        result,
        "env: os.environ['KNOWN_ENV'] added: '1' (in baseline)",
        "0 test(s) leaked resources (strict: these tests error); "
        "2 test(s) leaked only what allow_leaks or the baseline expects",
    )
    report = json.loads((run.pytester.path / "r.json").read_text())
    assert report["summary"]["baselined"] == 2
    assert report["summary"]["leaks"] == 0
    assert report["session"]["baseline"].endswith("base.json")


def test_a_new_leak_fails_while_the_known_one_does_not(run: Run) -> None:
    update(run, LEAKY)
    source = LEAKY.replace(
        'os.environ["KNOWN_ENV"] = "1"',
        'os.environ["KNOWN_ENV"] = "1"; os.environ["NEW_ENV"] = "1"',
    )
    result = run(source, "--resource-baseline=base.json", "--resource-strict")
    result.assert_outcomes(passed=3, skipped=1, errors=1)
    assert_lines(
        result,
        "ERROR test_it.py::test_env - leaked os.environ['NEW_ENV'] added: '1'",
        "env: os.environ['NEW_ENV'] added: '1'",
    )
    assert "KNOWN_ENV' added: '1'\n" not in result.stdout.str().split("short test summary")[0]


def test_a_second_leak_with_a_known_signature_is_new(run: Run) -> None:
    update(run, LEAKY)
    source = LEAKY.replace(
        "def test_thread():\n",
        "def test_thread():\n"
        '    threading.Thread(target=STOP.wait, name="known-8", daemon=True).start()\n',
    )
    result = run(source, "--resource-baseline=base.json", "--resource-strict")
    result.assert_outcomes(passed=3, skipped=1, errors=1)
    assert_lines(result, "ERROR test_it.py::test_thread - leaked thread 'known-")


def test_a_fixed_leak_fails_in_strict_mode_until_the_baseline_is_updated(run: Run) -> None:
    update(run, LEAKY)
    fixed = SUITE.format(env="PYTEST_RESOURCE_UNUSED").replace(
        '    os.environ["PYTEST_RESOURCE_UNUSED"] = "1"\n', "    pass\n"
    )
    result = run(fixed, "--resource-baseline=base.json", "--resource-strict")
    result.assert_outcomes(passed=3, skipped=1, errors=1)
    assert_lines(
        result,
        "ERROR test_it.py::test_env - 1 baseline entry no longer leaks",
        "no longer leaks env 'env:environ:KNOWN_ENV' listed in the "
        "baseline: update it with --resource-baseline-update",
    )
    warned = run(fixed, "--resource-baseline=base.json")
    warned.assert_outcomes(passed=3, skipped=1, warnings=1)
    assert_lines(
        warned,
        "ResourceLeakWarning: 1 baseline entry no longer leaks (details under 'resource leaks'",
        "  no longer leaks env 'env:environ:KNOWN_ENV' listed in the baseline",
    )

    update(run, fixed)
    assert [e["nodeid"] for e in entries(run)] == ["test_it.py::test_thread"]
    again = run(fixed, "--resource-baseline=base.json", "--resource-strict")
    again.assert_outcomes(passed=3, skipped=1)


# With --reruns, pytest-rerunfailures logs a test's reports only after its teardown, so
# whether the call failed must be known before the reports are logged.
@pytest.mark.parametrize("reruns", [(), ("--reruns=1",)], ids=["plain", "reruns"])
def test_a_test_that_did_not_complete_is_not_reported_as_fixed(
    run: Run, reruns: tuple[str, ...]
) -> None:
    update(run, LEAKY)
    broken = LEAKY.replace(
        'def test_env():\n    os.environ["KNOWN_ENV"] = "1"', "def test_env():\n    assert False"
    )
    result = run(broken, "--resource-baseline=base.json", "--resource-strict", *reruns)
    outcomes = result.parseoutcomes()
    counts = [outcomes.get(key, 0) for key in ("passed", "failed", "skipped", "rerun")]
    assert counts == [2, 1, 1, len(reruns)], result.stdout.str()
    assert "no longer leaks" not in result.stdout.str()


def test_a_partial_update_keeps_the_entries_of_tests_that_did_not_run(run: Run) -> None:
    update(run, LEAKY)
    no_thread = LEAKY.replace(
        '    threading.Thread(target=STOP.wait, name="known-7", daemon=True).start()\n',
        "    pass\n",
    )
    update(run, no_thread, "-k", "test_thread")
    assert [e["nodeid"] for e in entries(run)] == ["test_it.py::test_env"]


def test_entries_of_deleted_test_files_are_dropped_by_an_update(run: Run) -> None:
    update(run, LEAKY)
    data = json.loads((run.pytester.path / "base.json").read_text())
    data["known_leaks"].append(
        {"nodeid": "gone.py::test_x", "kind": "env", "signature": "env:cwd", "count": 1}
    )
    (run.pytester.path / "base.json").write_text(json.dumps(data))
    update(run, LEAKY)
    assert "gone.py::test_x" not in {e["nodeid"] for e in entries(run)}


@pytest.mark.parametrize(
    ("args", "content", "error"),
    [
        (["--resource-baseline=nope.json"], None,
         "ERROR: --resource-baseline: '*nope.json' does not exist "
         "(write it with --resource-baseline-update)"),
        (["--resource-baseline=base.json"], "[1, 2]",
         "ERROR: --resource-baseline: '*base.json' is not a baseline file: *"),
        (["--resource-baseline=base.json"], '{"version": 9, "known_leaks": []}',
         "ERROR: --resource-baseline: '*base.json' is not a baseline file: "
         "unsupported version 9 (expected 1)"),
        (["--resource-baseline-update"], None,
         "ERROR: --resource-baseline-update: needs --resource-baseline=PATH "
         "(or ini resource_baseline)"),
    ],
)  # fmt: skip
def test_bad_baseline_is_one_line_naming_the_option(
    run: Run, args: list[str], content: str | None, error: str
) -> None:
    if content is not None:
        Path(run.pytester.path / "base.json").write_text(content)
    result = run("def test_ok(): pass", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1
