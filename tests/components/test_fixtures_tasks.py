"""The ``task_manager`` and ``cleanup_registry`` fixtures, run in a pytest subprocess."""

from __future__ import annotations

from pytester_run import Run, assert_lines


def test_tasks_that_finish_or_that_the_test_shuts_down_pass(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_waits(task_manager):
    task = task_manager.create_task(asyncio.sleep(0, result=7))
    await task_manager.wait_for_all()
    assert task.result() == 7

@pytest.mark.asyncio
async def test_shuts_down_itself(task_manager):
    task_manager.create_task(asyncio.Event().wait(), name="server")
    await asyncio.sleep(0)
    stats = await task_manager.shutdown()
    assert stats["status"] == "cancelled"

@pytest.mark.asyncio
async def test_takes_its_failures(task_manager):
    async def boom():
        raise ValueError("expected")
    task_manager.create_task(boom())
    await task_manager.wait_for_all()
    [failure] = task_manager.take_failures()
    assert isinstance(failure.exception, ValueError)
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3)


def test_a_task_left_running_fails_the_test_at_teardown(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_leaves_a_poller(task_manager):
    task_manager.create_task(asyncio.Event().wait(), name="poller")
    task_manager.create_task(asyncio.Event().wait(), name="pusher")
    await asyncio.sleep(0)
"""
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(
        result,
        "2 task(s) still running at teardown had to be cancelled: 'poller', 'pusher'",
    )


def test_an_unseen_failure_fails_the_test_at_teardown(run: Run) -> None:
    result = run(
        """
import pytest

@pytest.mark.asyncio
async def test_ignores_a_failure(task_manager):
    async def boom():
        raise ValueError("lost in the background")
    task_manager.create_task(boom(), name="exploder")
    await task_manager.wait_for_all()
"""
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(
        result,
        "1 task failure(s) nobody took (call task_manager.take_failures() to check them):",
        "'exploder': ValueError('lost in the background')",
    )
    assert "never retrieved" not in result.stdout.str()


def test_a_task_that_refuses_to_exit_is_named_with_its_stack(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

async def stubborn():
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass  # ignores the teardown's cancel; the loop's close cancels again
    await asyncio.sleep(3600)

@pytest.mark.asyncio
async def test_stubborn(task_manager):
    task_manager.shutdown_timeout = 0.1
    task_manager.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
"""
    )
    assert_lines(
        result,
        "1 task(s) still running at teardown had to be cancelled: 'stubborn'",
        "1 task(s) ignored cancellation for 0.1s and are still running:",
        "'stubborn' at (outermost first):",
        "test_it.py:9 in stubborn",  # where it sits after swallowing the cancel
    )
    result.assert_outcomes(passed=1, errors=1, warnings=1)  # the warning: the plugin's leak


def test_the_cleanup_registry_closes_at_teardown_and_reports_failures(run: Run) -> None:
    result = run(
        """
import pytest

CLOSED = []

@pytest.mark.asyncio
async def test_registers(cleanup_registry):
    cleanup_registry.register(lambda: CLOSED.append("pool"))

def test_it_was_closed():
    assert CLOSED == ["pool"]

@pytest.mark.asyncio
async def test_broken_closer(cleanup_registry):
    def broken():
        raise OSError("socket already gone")
    cleanup_registry.register(broken, name="client")
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=3, errors=1)
    assert_lines(
        result,
        "CleanupError: 1 of 1 closers failed (1 sub-exception)",
        "OSError: socket already gone",
        "while closing 'client'",
    )
