"""Installing the plugin never changes which tests a suite runs: ``slow`` tests are skipped only
in a project that opts in with ``resource_slow = skip``."""

from __future__ import annotations

import pytest
from pytester_run import Run

SLOW = """
import pytest

@pytest.mark.slow
def test_slow():
    pass

def test_fast():
    pass
"""
OPT_IN = "resource_slow = skip\n"
HEADER = "resources: skipping slow tests (ini resource_slow = skip; --run-slow runs them)"


def test_slow_tests_run_in_a_project_that_did_not_opt_in(run: Run) -> None:
    result = run(SLOW)
    result.assert_outcomes(passed=2)
    assert "skipping slow tests" not in result.stdout.str()
    run(SLOW, "--run-slow").assert_outcomes(passed=2)  # still accepted, changes nothing


def test_a_suite_with_its_own_slow_marker_keeps_its_selection(run: Run) -> None:
    ini = "addopts = --strict-markers\nmarkers =\n    slow: our own long tests\n"
    run(SLOW, "-v", ini=ini).stdout.fnmatch_lines(["*::test_slow PASSED*", "*::test_fast PASSED*"])
    # Its own deselection stays exactly what it was.
    deselected = run(SLOW, "-m", "not slow", ini=ini)
    deselected.assert_outcomes(passed=1, deselected=1)


def test_opted_in_project_skips_slow_tests_and_says_so(run: Run) -> None:
    result = run(SLOW, "-rs", ini=OPT_IN)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([HEADER, "SKIPPED * slow test: pass --run-slow to run it"])


def test_run_slow_runs_them_in_an_opted_in_project(run: Run) -> None:
    result = run(SLOW, "--run-slow", ini=OPT_IN)
    result.assert_outcomes(passed=2)
    assert HEADER not in result.stdout.str()


def test_opt_in_with_checks_off_still_skips(run: Run) -> None:
    run(SLOW, "--no-resource-checks", ini=OPT_IN).assert_outcomes(passed=1, skipped=1)


OWN_RUN_SLOW = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, dest="mine")

def pytest_collection_modifyitems(config, items):
    if not config.getoption("mine"):
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="own skip"))
"""


def test_suite_with_its_own_run_slow_option_keeps_working(run: Run) -> None:
    run.pytester.makeconftest(OWN_RUN_SLOW)
    run(SLOW).assert_outcomes(passed=1, skipped=1)
    run(SLOW, "--run-slow").assert_outcomes(passed=2)


def test_opting_in_beside_an_own_run_slow_option_is_a_one_line_error(run: Run) -> None:
    run.pytester.makeconftest(OWN_RUN_SLOW)
    result = run(SLOW, ini=OPT_IN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if line.strip()]
    assert line.startswith("ERROR: resource_slow = skip: this suite defines --run-slow itself")
