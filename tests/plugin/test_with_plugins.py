"""Popular plugins together with ours: each runs a leaking and a clean test, and the verdicts
stay each test's own (the plugins are real, from the ``test`` extra)."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import pytest
from pytester_run import Run, assert_lines, verdicts

LEAKS = {"PASSED", "ERROR"}  # strict mode: the body passed, the teardown errors with the leak

SUITE = """
import threading
STOP = threading.Event()

def test_leaks():
    threading.Thread(target=STOP.wait, name="plugin-leak", daemon=True).start()

def test_clean():
    pass
"""


def assert_one_leak(result: pytest.RunResult) -> None:
    assert_lines(
        result,
        "ERROR test_it.py::test_leaks - leaked thread 'plugin-leak'",
        "threads: thread 'plugin-leak'",
        "1 test(s) leaked resources (strict: these tests error",
    )


# xdist -----------------------------------------------------------------------------------------

XDIST_SUITE = """
import os, threading
import pytest
STOP = threading.Event()

@pytest.mark.xdist_group("one")
class TestOne:
    def test_leaks(self):
        threading.Thread(target=STOP.wait, name="xdist-one", daemon=True).start()

    def test_clean(self):
        pass

@pytest.mark.xdist_group("two")
class TestTwo:
    def test_leaks(self):
        os.environ["XDIST_TWO"] = "1"

    @pytest.mark.parametrize("n", range(3))
    def test_clean(self, n):
        pass
"""


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadgroup"])
def test_xdist_distribution_modes_keep_each_tests_verdict(run: Run, dist: str) -> None:
    result = run(XDIST_SUITE, "-n", "2", "--dist", dist, "--resource-strict", "-rA")
    result.assert_outcomes(passed=6, errors=2)
    found = verdicts(result)
    assert found.pop("test_it.py::TestOne::test_leaks") == LEAKS
    assert found.pop("test_it.py::TestTwo::test_leaks") == LEAKS
    assert set(map(frozenset, found.values())) == {frozenset({"PASSED"})}
    assert_lines(
        result,
        "threads: thread 'xdist-one'",
        "env: os.environ['XDIST_TWO'] added: '1'",
        "2 test(s) leaked resources (strict: these tests error",
    )
    assert result.stdout.str().count("= resource leaks =") == 1


# pytest-randomly -------------------------------------------------------------------------------

RANDOM_SUITE = """
import os, threading
import pytest
STOP = threading.Event()

def test_thread_leak():
    threading.Thread(target=STOP.wait, name="random-leak", daemon=True).start()

def test_env_leak():
    os.environ["RANDOM_LEAK"] = "1"

@pytest.mark.parametrize("n", range(8))
def test_clean(n):
    pass
"""


def test_randomly_shuffled_orders_give_the_same_verdicts(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS")  # conftest's "-p no:randomly": shuffling is the point
    orders = set()
    for seed in ("1", "4242", "987654321"):  # crc32-keyed: seeds of one length order alike
        result = run(RANDOM_SUITE, "--randomly-seed", seed, "--resource-strict", "-rA", "-v")
        assert_lines(result, f"Using --randomly-seed={seed}")
        result.assert_outcomes(passed=10, errors=2)
        found = verdicts(result)
        assert found.pop("test_it.py::test_thread_leak") == LEAKS
        assert found.pop("test_it.py::test_env_leak") == LEAKS
        assert set(map(frozenset, found.values())) == {frozenset({"PASSED"})}
        orders.add(tuple(re.findall(r"^test_it.py::(\S+) PASSED", result.stdout.str(), re.M)))
    assert len(orders) == 3, orders  # the seeds did reorder the tests


# pytest-rerunfailures --------------------------------------------------------------------------

RERUN_SUITE = """
import threading
import pytest
STOP = threading.Event()
ATTEMPTS = []

@pytest.mark.flaky(reruns=2)
def test_leaks_every_attempt_passes_the_third():
    ATTEMPTS.append(None)
    threading.Thread(target=STOP.wait, name=f"attempt-{len(ATTEMPTS)}", daemon=True).start()
    assert len(ATTEMPTS) == 3

def test_clean():
    pass
"""


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "warn"])
def test_rerun_test_reports_its_own_runs_leaks_not_all_attempts(run: Run, strict: bool) -> None:
    mode = ["--resource-strict"] if strict else []
    result = run(RERUN_SUITE, "--junitxml=junit.xml", "-rAR", *mode)
    nodeid = "test_it.py::test_leaks_every_attempt_passes_the_third"
    found = verdicts(result)
    assert found[nodeid] == ({"RERUN", "PASSED", "ERROR"} if strict else {"RERUN", "PASSED"})
    assert found["test_it.py::test_clean"] == {"PASSED"}
    summary = result.stdout.str().split("= resource leaks =")[1]
    assert "1 test(s) leaked resources" in summary
    if strict:  # the leak is listed with the last attempt's error
        errors = result.stdout.str().split("= ERRORS =")[1].split("= PASSES =")[0]
        assert "threads: thread 'attempt-3'" in errors
        assert "attempt-1" not in errors
        assert "attempt-2" not in errors
    else:
        assert "thread 'attempt-3'" in summary
        assert "attempt-1" not in summary
        assert "attempt-2" not in summary
    # junitxml writes a test case per attempt: each holds its own attempt's leak.
    cases = ElementTree.parse(run.pytester.path / "junit.xml").iter("testcase")
    leaks = [
        [p.get("value", "").split("\n")[0] for p in case.iter("property")]
        for case in cases
        if case.get("name") == nodeid.split("::")[1]
    ]
    assert leaks == [[f"threads: thread 'attempt-{n}'"] for n in (1, 2, 3)]


RERUN_CLEAN_SUITE = """
import os
import pytest
ATTEMPTS = []

@pytest.mark.flaky(reruns=1)
def test_leaks_only_the_first_time():
    ATTEMPTS.append(None)
    if len(ATTEMPTS) == 1:
        os.environ["FIRST_ATTEMPT"] = "1"
"""


def test_rerun_after_a_leak_that_is_clean_passes_with_nothing_to_tell(run: Run) -> None:
    # Strict: the leak errors the first attempt, strict cleanup puts os.environ back, and the
    # rerun finds nothing.
    result = run(RERUN_CLEAN_SUITE, "--resource-strict", "-rAR", "--resource-report=out.json")
    assert verdicts(result) == {"test_it.py::test_leaks_only_the_first_time": {"RERUN", "PASSED"}}
    assert result.ret == 0
    assert "= resource leaks =" not in result.stdout.str()
    report = json.loads((run.pytester.path / "out.json").read_text())
    assert [test["leaks"] for test in report["tests"]] == [[]]


# pytest-repeat ---------------------------------------------------------------------------------

REPEAT_SUITE = """
import os, threading
STOP = threading.Event()

def test_leaks_each_time():
    threading.Thread(target=STOP.wait, name="repeat-leak", daemon=True).start()

def test_leaks_once():
    os.environ["REPEAT_ONCE"] = "1"  # the repetitions find it already set

def test_clean():
    pass
"""


def test_repeat_count_judges_every_repetition(run: Run) -> None:
    # Warn mode, which repairs nothing: the env leak is the first repetition's alone.
    result = run(REPEAT_SUITE, "--count", "3")
    result.assert_outcomes(passed=9, warnings=4)
    summary = result.stdout.str().split("= resource leaks =")[1]
    leaking = re.findall(r"^(test_it.py::\S+):$", summary, re.M)
    assert leaking == [
        "test_it.py::test_leaks_each_time[1-3]",
        "test_it.py::test_leaks_each_time[2-3]",
        "test_it.py::test_leaks_each_time[3-3]",
        "test_it.py::test_leaks_once[1-3]",
    ]
    assert summary.count("threads: thread 'repeat-leak'") == 3


# pytest-timeout --------------------------------------------------------------------------------

TIMEOUT_SUITE = (
    SUITE
    + """
def test_times_out():
    STOP.wait()
"""
)


def test_timeout_signal_method_fails_only_the_timed_out_test(run: Run) -> None:
    # The signal method swaps SIGALRM's handler around each test: not a leak of the test's.
    result = run(
        TIMEOUT_SUITE, "--timeout=4", "--timeout-method=signal", "--resource-strict", "-rA"
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    found = verdicts(result)
    assert found == {
        "test_it.py::test_leaks": LEAKS,
        "test_it.py::test_clean": {"PASSED"},
        "test_it.py::test_times_out": {"FAILED"},
    }
    assert_lines(result, "Failed: Timeout (>4.0s) from pytest-timeout.")
    assert_one_leak(result)
    assert "SIGALRM" not in result.stdout.str()


def test_timeout_thread_method_under_xdist_keeps_the_other_tests_verdicts(run: Run) -> None:
    # The thread method's timer thread lives through each test (not a leak); on a timeout it
    # ends the process, so it is used with xdist, which reports the lost test and goes on.
    result = run(
        TIMEOUT_SUITE,
        "--timeout=4",
        "--timeout-method=thread",
        "-n",
        "2",
        "--resource-strict",
        "-rA",
    )
    found = verdicts(result)
    assert found == {
        "test_it.py::test_leaks": LEAKS,
        "test_it.py::test_clean": {"PASSED"},
        "test_it.py::test_times_out": {"FAILED"},
    }
    assert_lines(result, "crashed while running 'test_it.py::test_times_out'")
    assert_one_leak(result)
