"""A test that fails under state an earlier test left gets that state, and the test that left
it, in its failure report."""

from __future__ import annotations

from pytester_run import Run, assert_lines

SECTION = "state left by earlier tests"

POLLUTED = """
import os

def test_sets_mode():
    os.environ["APP_MODE"] = "debug"

def test_unrelated():
    pass

def test_sets_level():
    os.environ["APP_LEVEL"] = "9"

def test_reads_mode():
    assert os.environ.get("APP_MODE", "prod") == "prod"
"""


def test_a_failure_names_the_tests_whose_state_is_still_in_effect(run: Run) -> None:
    result = run(POLLUTED, "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    section = out[out.index(f" {SECTION} ") :]
    # Most recent first; the clean test between them is not named.
    level = section.index("test_it.py::test_sets_level left, still in effect:")
    mode = section.index("test_it.py::test_sets_mode left, still in effect:")
    assert level < mode
    assert_lines(
        result,
        "env: os.environ['APP_MODE'] added: 'debug'",
        "env: os.environ['APP_LEVEL'] added: '9'",
    )
    assert "test_unrelated left" not in out


def test_state_an_earlier_test_undid_is_not_named(run: Run) -> None:
    result = run(
        """
import os

def test_sets_mode():
    os.environ["APP_MODE"] = "debug"

def test_puts_it_back():
    del os.environ["APP_MODE"]

def test_fails():
    assert False
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2, failed=1)
    assert SECTION not in result.stdout.str()


def test_a_failure_after_clean_tests_has_no_section(run: Run) -> None:
    result = run(
        """
import os

def test_sets_mode(monkeypatch):
    monkeypatch.setenv("APP_MODE", "debug")

def test_reads_mode():
    assert os.environ.get("APP_MODE", "prod") == "debug"
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert SECTION not in result.stdout.str()


def test_strict_mode_repairs_the_state_so_there_is_nothing_to_name(run: Run) -> None:
    result = run(
        """
import os

def test_sets_mode():
    os.environ["APP_MODE"] = "debug"

def test_fails():
    assert os.environ.get("APP_MODE") is None
    assert False
""",
        "-p",
        "no:randomly",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert_lines(result, "env: os.environ['APP_MODE'] added: 'debug'")
    assert SECTION not in result.stdout.str()


def test_a_leak_strict_mode_cannot_undo_is_named(run: Run) -> None:
    result = run(
        """
import os

KEPT = []

def test_opens():
    KEPT.append(open(os.devnull))

def test_fails():
    assert False
""",
        "-p",
        "no:randomly",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert_lines(result, "test_it.py::test_opens left, still in effect:", "fds: fd ")


def test_the_section_reaches_the_controller_under_xdist(run: Run) -> None:
    result = run(POLLUTED, "-p", "no:randomly", "-n", "1")
    result.assert_outcomes(passed=3, failed=1)
    assert_lines(result, "test_it.py::test_sets_mode left, still in effect:")


def test_a_mock_patch_and_a_cwd_left_behind_are_named(run: Run) -> None:
    result = run(
        """
import os
from unittest import mock

def test_patches():
    mock.patch("os.cpu_count", return_value=512).start()

def test_moves(tmp_path):
    os.chdir(tmp_path)

def test_fails():
    assert os.cpu_count() < 512
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2, failed=1)
    assert_lines(
        result,
        "test_it.py::test_moves left, still in effect:",
        "env: cwd ",
        "test_it.py::test_patches left, still in effect:",
        "env: unittest.mock patch of os.cpu_count still active",
    )


def test_state_a_wider_fixture_left_and_an_unclosed_loop_are_named(run: Run) -> None:
    # A module fixture's leak is found when the module ends; a loop's descriptors are one
    # leak. Both still hold when the other module's test fails.
    run.pytester.makepyfile(
        test_z="""
def test_fails():
    assert False
"""
    )
    result = run(
        """
import asyncio, os
import pytest

LOOPS = []

@pytest.fixture(scope="module")
def configured():
    os.environ["APP_CONFIGURED"] = "1"

def test_uses(configured):
    pass

def test_keeps_a_loop():
    LOOPS.append(asyncio.new_event_loop())
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    section = out[out.index(f" {SECTION} ") : out.index("warnings summary")]
    assert "os.environ['APP_CONFIGURED'] added: '1' (owned by module-scoped fixture" in section
    assert section.count("unclosed event loop") == 1, section
