from __future__ import annotations

from pytester_run import Run, assert_lines

POOL = """
import asyncio
import pytest

pytestmark = pytest.mark.parametrize("message_queue_factory", ["memory"], indirect=True)

@pytest.mark.asyncio
async def test_leaves_a_handler_running(task_manager_pool):
    started = asyncio.Event()

    async def hang(payload, context):
        started.set()
        await asyncio.Event().wait()

    task_manager_pool.register("hang", hang)
    await task_manager_pool.submit("hang", None)
    await started.wait()

@pytest.mark.asyncio
async def test_shuts_down_itself(task_manager_pool):
    async def echo(payload, context):
        return payload

    task_manager_pool.register("echo", echo)
    handle = await task_manager_pool.submit("echo", 5)
    assert await handle.result(timeout=30) == 5
    await task_manager_pool.shutdown()
"""


def test_task_manager_pool_errors_a_test_whose_handlers_had_to_be_cancelled(run: Run) -> None:
    result = run(POOL, "--resource-strict")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_a_handler_running*"])
    assert_lines(
        result, "task_manager_pool: 1 handler(s) were still running at teardown and were cancelled"
    )
