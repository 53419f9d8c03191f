from __future__ import annotations

import json

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from pytester_run import Run, assert_lines

from pytest_resources.detector.reporting.json_report import schema
from pytest_resources.detector.sizes import parse_size


def test_repeat_catches_growth_in_every_run_and_names_the_site(run: Run) -> None:
    result = run(
        """
import pytest
KEPT = []

@pytest.mark.resources(repeat=3)
def test_appends():
    KEPT.append(bytearray(50_000_000))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(
        result,
        "memory: grew 47.7 MiB per run in each of 3 repeated runs",
        "test_it.py:6: +143.1 MiB in ",
    )


def test_repeat_traps_stay_clean(run: Run) -> None:
    result = run(
        """
import functools, re
import pytest

@functools.lru_cache(maxsize=None)
def table(n):
    return list(range(n))

@pytest.mark.resources(repeat=3)
def test_alloc_and_free():
    data = bytearray(50_000_000)
    del data

@pytest.mark.resources(repeat=3)
def test_cache_fills_once():
    table(100_000)
    re.compile(r"fills-the-regex-cache-once-\\d+")

@pytest.mark.resources(repeat=3)
def test_first_import():
    import decimal, fractions
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3)


def test_repeat_option_applies_to_every_test(run: Run) -> None:
    result = run(
        """
KEPT = []

def test_grows():
    KEPT.append(bytearray(1_000_000))

def test_steady():
    pass
""",
        "--resource-repeat=2",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_grows*"])


def test_repeat_runs_async_tests_on_their_loop(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest
KEPT = []

@pytest.mark.asyncio
@pytest.mark.resources(repeat=2)
async def test_grows():
    await asyncio.sleep(0)
    KEPT.append(bytearray(2_000_000))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(result, "in each of 2 repeated runs")


def test_memory_limit_fails_with_the_figures(run: Run) -> None:
    result = run(
        """
import pytest

@pytest.mark.resources(memory_limit="10MB")
def test_big_peak():
    data = bytearray(50_000_000)
    data[::4096] = b"x" * len(data[::4096])  # touch every page so RSS really grows
    del data

@pytest.mark.resources(memory_limit="200MiB")
def test_within_limit():
    data = bytearray(1_000_000)
    del data
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_big_peak*"])
    assert_lines(result, "memory: peak RSS grew by ", "above the limit of 9.5 MiB", "peak ")


@pytest.mark.parametrize("args", [(), ("--resource-checks=all",)], ids=["marker", "option"])
def test_the_meters_own_files_are_not_a_tests_leak(run: Run, args: tuple[str, ...]) -> None:
    # The meter keeps two /proc files open; a marker makes it mid-session, inside a window.
    result = run(
        """
import pytest

def test_before():
    pass

@pytest.mark.resources(memory_limit="1GB")
def test_measured():
    pass

def test_after():
    pass
""",
        "--resource-strict",
        *args,
    )
    result.assert_outcomes(passed=3)


def test_memory_limit_from_ini_and_warn_mode(run: Run) -> None:
    result = run(
        """
def test_big_peak():
    data = bytearray(50_000_000)
    data[::4096] = b"x" * len(data[::4096])
    del data
""",
        ini="resource_memory_limit = 10MB\n",
    )
    result.assert_outcomes(passed=1, warnings=1)
    assert_lines(result, "memory: peak RSS grew by")


def test_memory_figures_are_report_only(run: Run) -> None:
    run.pytester.makeconftest(
        """
import json

def pytest_runtest_logreport(report):
    if report.when == "teardown":
        print("MEMORY", json.dumps(getattr(report, "resource_memory", None)))
"""
    )
    result = run(
        """
KEPT = []

def test_grows_rss():
    data = bytearray(30_000_000)
    data[::4096] = b"x" * len(data[::4096])
    KEPT.append(data)
""",
        "--resource-checks=memory",
        "--resource-strict",
        "-s",
    )
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if "MEMORY " in line)
    figures = json.loads(line.split("MEMORY ", 1)[1])
    assert figures["rss_after"] - figures["rss_before"] >= 25_000_000
    assert figures["peak"] >= figures["rss_after"]
    assert figures["peak_growth"] == figures["peak"] - figures["rss_before"]


@pytest.mark.parametrize(
    ("args", "ini", "error"),
    [
        (["--resource-repeat=many"], "", "--resource-repeat: expected a whole number of runs"),
        ([], "resource_memory_limit = 64 megs\n", "resource_memory_limit: expected a size"),
        ([], "resource_repeat = -1\n", "resource_repeat: expected a whole number of runs"),
    ],
)
def test_bad_memory_options_are_one_line_errors(
    run: Run, args: list[str], ini: str, error: str
) -> None:
    result = run("def test_x(): pass\n", *args, ini=ini)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {error}*"])


def test_bad_memory_marker_errors_that_test(run: Run) -> None:
    result = run(
        "import pytest\n\n@pytest.mark.resources(memory_limit='lots')\ndef test_x(): pass\n"
    )
    result.assert_outcomes(errors=1)
    assert_lines(result, "resources(memory_limit=...): expected a size like 64MB")


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MB", 64_000_000), ("512KiB", 524_288), ("1.5 GiB", 1_610_612_736), (1024, 1024)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text, "x") == size


def test_memory_tracker_measures_a_block(memory_tracker: object) -> None:
    from pytest_resources.fixtures.memory import MemoryTracker

    assert isinstance(memory_tracker, MemoryTracker)
    kept = []
    with memory_tracker.measure() as block:
        kept.append(bytearray(5_000_000))
        transient = bytearray(20_000_000)
        del transient
    assert 5_000_000 <= block.retained < 6_000_000
    assert block.peak >= 25_000_000
    assert block.sites[0].file == __file__
    assert block.sites[0].size >= 5_000_000
    kept.clear()


def test_memory_under_xdist(run: Run) -> None:
    result = run(
        """
import pytest
KEPT = []

@pytest.mark.resources(repeat=2)
def test_grows():
    KEPT.append(bytearray(3_000_000))

@pytest.mark.resources(repeat=2)
def test_clean():
    pass
""",
        "-n",
        "2",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    assert_lines(
        result, "ERROR test_it.py::test_grows - leaked memory", "in each of 2 repeated runs"
    )


def test_json_report_carries_memory_figures_and_growth(run: Run) -> None:
    result = run(
        """
import pytest
KEPT = []

@pytest.mark.resources(repeat=2)
def test_grows():
    KEPT.append(bytearray(2_000_000))
""",
        "--resource-checks=all",
        "--resource-report=report.json",
    )
    result.assert_outcomes(passed=1, warnings=1)
    document = json.loads((run.pytester.path / "report.json").read_text())
    jsonschema.validate(document, schema())
    (test,) = document["tests"]
    memory = test["memory"]
    assert memory["peak"] >= memory["rss_before"]
    assert memory["peak_growth"] == memory["peak"] - memory["rss_before"]
    assert memory["growth"]["per_run"] >= 2_000_000
    assert memory["growth"]["sites"][0]["line"] == 6


def test_repeats_judge_memory_only(run: Run) -> None:
    result = run(
        """
import os
import sys
import threading
import time

STOP = threading.Event()

def test_leaks_a_thread_each_run():
    threading.Thread(target=STOP.wait, name="kept", daemon=True).start()

def test_sets_env_and_path_each_run():
    os.environ["REPEATED"] = str(time.monotonic())
    sys.path.append("/repeated")

def test_thread_finishing_after_each_run():
    threading.Thread(target=time.sleep, args=(0.2,)).start()

def test_capsys(capsys):
    print("hello")
    assert capsys.readouterr().out == "hello\\n"

def test_capfd(capfd):
    os.write(1, b"hi\\n")
    assert capfd.readouterr().out == "hi\\n"
""",
        "--resource-repeat=3",
        "--resource-checks=threads,env",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=5, warnings=2)
    out = result.stdout.str().split("= resource leaks =")[1]
    # Judged once, on the normal run, as it left things.
    assert out.count("threads: thread 'kept'") == 1
    assert out.count("+ '/repeated'") == 1
    assert out.count("os.environ['REPEATED'] added") == 1
    assert "test_thread_finishing_after_each_run:" not in out
    result.stdout.fnmatch_lines(
        [
            "resources: not repeated for memory growth: test_it.py::test_capsys: uses capsys, *",
            "resources: not repeated for memory growth: test_it.py::test_capfd: uses capfd, *",
        ]
    )
