"""The tests that leaked in one run are traced in the next (pytest's cache remembers them)."""

from __future__ import annotations

import json

import pytest
from pytester_run import Run, assert_lines

SUITE = """
import socket, sys, threading
STOP = threading.Event()
KEPT = []

def test_thread():
    threading.Thread(target=STOP.wait, name="leaker", daemon=True).start()  # THREAD

def test_socket():
    KEPT.append(socket.socket())  # SOCKET

def test_clean_and_untraced():
    # Only the remembered tests' windows are traced: nothing is installed around this one.
    assert threading.Thread.start.__module__ == "threading"
    assert sys.get_coroutine_origin_tracking_depth() == 0
"""
CACHED = ".pytest_cache/v/resources/leakers"


def line_of(marker: str, source: str = SUITE) -> int:
    lines = source.strip("\n").splitlines()  # as pytester writes it
    return next(n for n, line in enumerate(lines, 1) if line.endswith(f"# {marker}"))


def remembered(run: Run) -> list[str]:
    path = run.pytester.path / CACHED
    return json.loads(path.read_text()) if path.exists() else []


def test_the_next_run_says_where_the_leaks_were_created(run: Run) -> None:
    first = run(SUITE, "--resource-strict", cache=True)
    first.assert_outcomes(passed=3, errors=2)
    assert "created at test_it.py" not in first.stdout.str()
    assert_lines(first, "created at: not recorded; the next run traces the tests that leaked")
    assert remembered(run) == ["test_it.py::test_socket", "test_it.py::test_thread"]

    second = run(SUITE, "--resource-strict", cache=True)
    second.assert_outcomes(passed=3, errors=2)
    assert_lines(
        second,
        "tracing the 2 test(s) that leaked last run",
        f"created at test_it.py:{line_of('THREAD')} in test_thread",
        f"created at test_it.py:{line_of('SOCKET')} in test_socket",
    )
    assert "created at: not recorded" not in second.stdout.str()
    assert remembered(run) == ["test_it.py::test_socket", "test_it.py::test_thread"]

    # A remembered test that no longer leaks is forgotten; one that did not run is kept.
    fixed = SUITE.replace("KEPT.append(socket.socket())", "socket.socket().close()")
    third = run(fixed, "--resource-strict", "-k", "socket", cache=True)
    third.assert_outcomes(passed=1)
    assert remembered(run) == ["test_it.py::test_thread"]


def test_xdist_workers_trace_what_the_controller_remembered(run: Run) -> None:
    run(SUITE, "-n", "2", cache=True).assert_outcomes(passed=3, warnings=2)
    assert remembered(run) == ["test_it.py::test_socket", "test_it.py::test_thread"]
    second = run(SUITE, "-n", "2", cache=True)
    second.assert_outcomes(passed=3, warnings=2)
    assert_lines(
        second,
        f"created at test_it.py:{line_of('THREAD')} in test_thread",
        f"created at test_it.py:{line_of('SOCKET')} in test_socket",
    )


def test_ini_switch_turns_it_off(run: Run) -> None:
    ini = "resource_trace_leakers = false\n"
    run(SUITE, "--resource-strict", ini=ini, cache=True).assert_outcomes(passed=3, errors=2)
    assert remembered(run) == []
    second = run(SUITE, "--resource-strict", ini=ini, cache=True)
    assert "created at test_it.py" not in second.stdout.str()
    assert_lines(second, "created at: not recorded; run again with --resource-trace")


FIXTURE_SUITE = """
import socket, threading
import pytest
STOP = threading.Event()
KEPT = []

@pytest.fixture(scope="module")
def worker():
    threading.Thread(target=STOP.wait, name="kept", daemon=True).start()  # FIXTURE_THREAD
    KEPT.append(socket.socket())  # FIXTURE_SOCKET

def test_first(worker):
    pass

def test_second(worker):
    pass
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["plain", "xdist"])
def test_a_fixture_leak_traces_the_test_that_set_the_fixture_up(
    run: Run, xdist: tuple[str, ...]
) -> None:
    # Reported when the module ends, on test_second; created in test_first's setup, so that
    # is the test to trace (also across xdist's serialised reports).
    first = run(FIXTURE_SUITE, "--resource-strict", "-p", "no:randomly", *xdist, cache=True)
    first.assert_outcomes(passed=2, errors=1)
    assert remembered(run) == ["test_it.py::test_first"]
    second = run(FIXTURE_SUITE, "--resource-strict", "-p", "no:randomly", *xdist, cache=True)
    second.assert_outcomes(passed=2, errors=1)
    assert_lines(
        second,
        "owned by module-scoped fixture",
        f"created at test_it.py:{line_of('FIXTURE_THREAD', FIXTURE_SUITE)} in worker",
        f"created at test_it.py:{line_of('FIXTURE_SOCKET', FIXTURE_SUITE)} in worker",
    )
    assert remembered(run) == ["test_it.py::test_first"]
