from __future__ import annotations

from pytester_run import Run


def test_leaked_thread_is_reported_with_name_target_and_stack(run: Run) -> None:
    result = run(
        """
import threading
STOP = threading.Event()

def park():
    STOP.wait()

def test_leaks():
    threading.Thread(target=park, name="parked-worker", daemon=True).start()

def test_after():
    pass
"""
    )
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*resource leaks*",
            "test_it.py::test_leaks:",
            "*threads: thread 'parked-worker'",
            "*target: test_it.park, daemon: True*",
            "*test_it.py:*in park",
            "*STOP.wait()*",
        ]
    )
    assert "test_it.py::test_after:" not in result.stdout.str()


def test_joined_thread_and_executor_with_block_are_clean(run: Run) -> None:
    result = run(
        """
import threading
from concurrent.futures import ThreadPoolExecutor

def test_joined():
    t = threading.Thread(target=sum, args=([1],))
    t.start()
    t.join()

def test_executor():
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(abs, [-1, -2])) == [1, 2]
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2)


def test_thread_finishing_within_grace_is_not_a_leak(run: Run) -> None:
    result = run(
        """
import threading, time

def test_short_lived():
    threading.Thread(target=time.sleep, args=(0.1,)).start()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1)


def test_executor_without_shutdown_leaks_its_workers(run: Run) -> None:
    result = run(
        """
from concurrent.futures import ThreadPoolExecutor
POOLS = []

def test_forgets_shutdown():
    pool = ThreadPoolExecutor(1, thread_name_prefix="forgotten")
    POOLS.append(pool)
    pool.submit(abs, 1).result()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*threads: thread 'forgotten_0'*"])


def test_ignore_threads_ini_silences_matching_names(run: Run) -> None:
    result = run(
        """
import threading
STOP = threading.Event()

def test_leaks():
    threading.Thread(target=STOP.wait, name="metrics-flusher", daemon=True).start()
""",
        "--resource-strict",
        ini="resource_ignore_threads = metrics-*\n",
    )
    result.assert_outcomes(passed=1)


def test_bare_thread_without_thread_object_is_counted(run: Run) -> None:
    result = run(
        """
import _thread, threading
STARTED, STOP = threading.Event(), threading.Event()

def park():
    STARTED.set()
    STOP.wait()

def test_bare():
    _thread.start_new_thread(park, ())
    STARTED.wait()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 thread(s) started with _thread.start_new_thread*"])
