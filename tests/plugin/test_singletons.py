"""Default ignores for process-wide pools and one-time set-ups, against the real libraries."""

from __future__ import annotations

from pytester_run import Run, assert_errors_on, strict


def test_idle_trio_worker_threads_are_not_a_leak(run: Run) -> None:
    result = strict(
        run,
        """
import threading
import trio

def test_to_thread():
    async def main():
        assert await trio.to_thread.run_sync(lambda: 42) == 42
    trio.run(main)
    # The worker waits 10 s for its next job: still alive after the test.
    assert any(t.name.startswith("Trio thread") for t in threading.enumerate())

def test_next():
    pass
""",
    )
    result.assert_outcomes(passed=2)


def test_trio_worker_still_busy_with_the_tests_job_is_the_tests(run: Run) -> None:
    result = strict(
        run,
        """
import threading
import trio

RELEASE = threading.Event()

def work(scope):
    trio.from_thread.run_sync(scope.cancel)  # the job runs: now give up on it
    RELEASE.wait()

def test_abandons_a_job():
    async def main():
        with trio.CancelScope() as scope:
            await trio.to_thread.run_sync(work, scope, abandon_on_cancel=True)
    trio.run(main)  # returns while the worker still runs the job

def test_release():
    RELEASE.set()
""",
    )
    # trio names a busy worker after its job.
    assert_errors_on(
        result,
        "test_abandons_a_job",
        "threads: thread 'work from test_it.test_abandons_a_job",
        "RELEASE.wait()",
    )


def test_uvloop_signal_pipe_of_the_first_loop_is_not_a_leak(run: Run) -> None:
    result = strict(
        run,
        """
import asyncio
import uvloop

async def main():
    await asyncio.sleep(0)

def test_first_uvloop_loop():
    uvloop.run(main())

def test_second_uvloop_loop():
    uvloop.run(main())
""",
    )
    result.assert_outcomes(passed=2)


def test_a_leaked_pipe_is_still_a_leak_with_uvloop_loaded(run: Run) -> None:
    result = strict(
        run,
        """
import asyncio, os
import uvloop

KEPT = []

def test_first_uvloop_loop():
    uvloop.run(asyncio.sleep(0))

def test_leaks_a_pipe():
    KEPT.extend(os.pipe())
""",
    )
    assert_errors_on(result, "test_leaks_a_pipe")


def test_multiprocessing_heap_arena_is_not_a_leak(run: Run) -> None:
    result = strict(
        run,
        """
import multiprocessing, os

def test_first_value():
    counter = multiprocessing.Value("i", 0)
    with counter.get_lock():
        counter.value += 1
    assert counter.value == 1
    # The arena behind it stays mapped for the life of the process.
    assert any("pym-" in os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))

def test_second_value():
    assert multiprocessing.Array("d", 4)[:] == [0.0] * 4
""",
    )
    result.assert_outcomes(passed=2)


def test_redis_pys_push_response_logger_is_not_a_leak(run: Run) -> None:
    # No server needed: a PubSub connects on first use, but sets up the logger when made.
    result = strict(
        run,
        """
import logging
import redis

def test_first_pubsub():
    client = redis.Redis()
    client.pubsub().close()
    client.close()
    assert logging.getLogger("push_response").handlers

def test_a_handler_added_to_it_later_is_a_leak():
    logging.getLogger("push_response").addHandler(logging.StreamHandler())
""",
    )
    assert_errors_on(result, "test_a_handler_added_to_it_later")
