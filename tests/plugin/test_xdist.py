from __future__ import annotations

from pytester_run import Run, assert_lines

SUITE = """
import os, threading
import pytest
STOP = threading.Event()

def test_thread_leak():
    threading.Thread(target=STOP.wait, name="xdist-leak", daemon=True).start()

def test_env_leak():
    os.environ["XDIST_LEAK"] = "1"

@pytest.mark.parametrize("n", range(6))
def test_clean(n):
    pass
"""


def test_xdist_gives_the_same_verdicts_and_one_summary_on_the_controller(run: Run) -> None:
    result = run(SUITE, "-n", "2", "--resource-strict")
    result.assert_outcomes(passed=8, errors=2)
    result.stdout.fnmatch_lines(
        ["*= resource leaks =*", "2 test(s) leaked resources (strict: these tests error; *"]
    )
    assert_lines(
        result,
        "threads: thread 'xdist-leak'",
        "env: os.environ['XDIST_LEAK'] added: '1'",
        # The one-line message set on the worker crosses to the controller's summary.
        "ERROR test_it.py::test_thread_leak - leaked thread 'xdist-leak'",
        "ERROR test_it.py::test_env_leak - leaked os.environ['XDIST_LEAK'] added: '1'",
    )
    assert result.stdout.str().count("= resource leaks =") == 1


def test_xdist_warn_mode_and_junit_properties(run: Run) -> None:
    result = run(SUITE, "-n", "2", "--junitxml=junit.xml")
    result.assert_outcomes(passed=8, warnings=2)
    junit = (run.pytester.path / "junit.xml").read_text()
    assert '<property name="resource_leak" value="threads: thread' in junit
    assert "XDIST_LEAK" in junit
