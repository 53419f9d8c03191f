"""A leaked non-daemon thread keeps the process alive after the last line of output: Python
waits for it at exit. The plugin names each one at the end of the session, before that wait."""

from __future__ import annotations

from pytester_run import Run, assert_lines

# Released only at pytest_unconfigure, after the terminal summary: until then the threads
# are exactly what would hang the run.
CONFTEST = """
import threading

RELEASE = threading.Event()

def pytest_unconfigure():
    RELEASE.set()
"""

SUITE = """
import threading
import time
from conftest import RELEASE

def serve_forever():
    RELEASE.wait()

def test_leaks_a_worker():
    threading.Thread(target=serve_forever, name="stuck-worker").start()

def test_thread_ending_soon():
    threading.Thread(target=time.sleep, args=(0.05,), name="ends-soon").start()

def test_clean():
    pass
"""


def test_non_daemon_threads_alive_at_session_end_are_named_with_their_test(run: Run) -> None:
    run.pytester.makeconftest(CONFTEST)
    result = run(SUITE, "-p", "no:randomly")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*= threads still running at exit =*",
            "Python waits for 1 non-daemon thread(s) before it exits; the run hangs until *",
            "thread 'stuck-worker' (target: test_it.serve_forever, ident: *), "
            "leaked by test_it.py::test_leaks_a_worker",
            "  stack (innermost last):",
        ]
    )
    assert_lines(result, "test_it.py:6 in serve_forever")
    assert "'ends-soon'" not in result.stdout.str().split("threads still running at exit")[1]


def test_a_thread_from_outside_any_test_is_named_too(run: Run) -> None:
    run.pytester.makeconftest(
        CONFTEST
        + """
def pytest_sessionstart():
    threading.Thread(target=RELEASE.wait, name="started-by-conftest").start()
"""
    )
    result = run("def test_clean():\n    pass\n")
    result.assert_outcomes(passed=1)
    assert_lines(
        result,
        "thread 'started-by-conftest' (target: threading.Event.wait, ident: ",
        "not reported as a test's leak",
    )


def test_no_section_without_lingering_threads(run: Run) -> None:
    result = run("def test_clean():\n    pass\n")
    assert "threads still running at exit" not in result.stdout.str()
