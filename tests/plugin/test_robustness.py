from __future__ import annotations

from pytester_run import Run, assert_lines


def test_a_failing_probe_is_disabled_with_one_warning_and_the_run_goes_on(run: Run) -> None:
    run.pytester.makeconftest(
        """
from pytest_resources.detector.probes.fds import FdProbe

def broken(self):
    raise OSError("no /proc here")

FdProbe.snapshot = broken
"""
    )
    result = run(
        """
import os

def test_one():
    pass

def test_two():
    os.environ["STILL_CHECKED"] = "1"

def test_three():
    pass
""",
        "--resource-strict",
        "-W",
        "default::pytest_resources.ResourceGuardWarning",
    )
    result.assert_outcomes(passed=3, errors=1, warnings=1)
    assert_lines(
        result,
        "the 'fds' probe failed and is now off: OSError: no /proc here",
        "env: os.environ['STILL_CHECKED'] added: '1'",
    )
    assert result.stdout.str().count("ResourceGuardWarning: the 'fds' probe failed") == 1
