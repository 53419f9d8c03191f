"""A suite that tests its own pytest plugin runs pytest inside pytest (``pytester.runpytest()``
in-process): our plugin is loaded into each inner session, in a process whose global pytest
state (the mark generator, warnings filters) belongs to the outer one."""

from __future__ import annotations

import pytest
from pytester_run import Run

# The outer suite: each test runs an inner session in-process, the second twice in a row, all
# under -W error, where an unknown-mark warning is fatal.
NESTED = '''
import atexit, logging, os

INI = (
    "[pytest]\\n"
    "asyncio_default_fixture_loop_scope = function\\n"
    "asyncio_default_test_loop_scope = function\\n"
)
INNER = """
import os

def test_clean():
    pass

def test_leaks():
    os.environ["INNER_LEAK"] = "1"
"""

def inner(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_inner=INNER)
    # pytest-rerunfailures (with xdist installed) starts a status-server thread per session and
    # never stops it: a real leak of the inner session, not what this test is about.
    args = ("-W", "error", "-p", "no:randomly", "-p", "no:memray", "-p", "no:rerunfailures",
            "--resource-strict")
    # The env kind wraps these while a session runs; an inner session's end leaves the
    # outer one's (or none) in place.
    register = atexit.register
    methods = dict(vars(logging.Logger)), dict(vars(logging.RootLogger))
    result = pytester.runpytest(*args)
    assert atexit.register is register
    assert (dict(vars(logging.Logger)), dict(vars(logging.RootLogger))) == methods
    result.assert_outcomes(passed=2, errors=1)
    assert any("ERROR at teardown of test_leaks" in line for line in result.outlines)
    os.environ.pop("INNER_LEAK", None)  # the inner strict run puts it back; without it, we do

def test_inner_session(pytester):
    inner(pytester)

def test_inner_session_twice(pytester):
    inner(pytester)
    inner(pytester)
'''


@pytest.mark.parametrize(
    "outer",
    [
        pytest.param(("-p", "no:resources"), id="outer-without-plugin"),
        pytest.param(("--resource-strict",), id="outer-with-plugin"),
    ],
)
def test_plugin_loads_in_nested_in_process_sessions_under_w_error(
    run: Run, outer: tuple[str, ...]
) -> None:
    # pytest-memray's session end removes MEMRAY_RESULT_PATH (inherited from ours): a real
    # change of os.environ, but not what this test is about.
    args = ("-p", "pytester", "-p", "no:memray", "-p", "no:randomly", "-W", "error")
    result = run(NESTED, *args, *outer)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
