from __future__ import annotations

import pytest
from pytester_run import Run, assert_lines

BROKEN_FDS = """
from pytest_resources.detector.probes.fds import FdProbe

def broken(self):
    raise OSError("no /proc here")

FdProbe.snapshot = broken
"""
THREE = """
import os

def test_one():
    pass

def test_two():
    os.environ["STILL_CHECKED"] = "1"

def test_three():
    pass
"""


def test_a_failing_probe_is_disabled_with_one_warning_and_the_run_goes_on(run: Run) -> None:
    run.pytester.makeconftest(BROKEN_FDS)
    result = run(
        THREE,
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


@pytest.mark.parametrize("mode", [(), ("--resource-strict",)], ids=["warn", "strict"])
def test_plugin_warnings_never_fail_a_test_under_filterwarnings_error(
    run: Run, mode: tuple[str, ...]
) -> None:
    run.pytester.makeconftest(BROKEN_FDS)
    result = run(THREE, *mode, ini="filterwarnings = error\n")
    # Strict mode fails the leak itself; the probe's warning fails nothing, in either mode.
    result.assert_outcomes(passed=3, errors=len(mode), warnings=2 - len(mode))
    assert_lines(result, "ResourceGuardWarning: the 'fds' probe failed and is now off")
