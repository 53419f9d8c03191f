from __future__ import annotations

import pytest
from pytester_run import Run, assert_lines

PENDING = """
import asyncio
import pytest

async def poll_forever():
    while True:
        await asyncio.sleep(1)

@pytest.mark.asyncio{scope}
async def test_leaves_task():
    asyncio.get_running_loop().create_task(poll_forever(), name="poller")

@pytest.mark.asyncio{scope}
async def test_next():
    pass
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pending_task_on_function_loop_is_reported_before_teardown_cancels_it(
    run: Run, mode: str
) -> None:
    result = run(PENDING.format(scope=""), "--resource-strict", ini=f"asyncio_mode = {mode}\n")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_task*"])
    assert_lines(
        result,
        "tasks: task 'poller' running poll_forever()",
        "test_it.py:6 in poll_forever",
    )


@pytest.mark.parametrize("scope", ["module", "session"])
def test_pending_task_on_shared_loop_is_blamed_on_its_test(run: Run, scope: str) -> None:
    result = run(PENDING.format(scope=f'(loop_scope="{scope}")'), "--resource-strict")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_task*"])
    assert_lines(result, "tasks: task 'poller' running poll_forever()")


def test_task_finishing_within_grace_is_clean(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_short_task():
    asyncio.get_running_loop().create_task(asyncio.sleep(0.05))

@pytest.mark.asyncio(loop_scope="module")
async def test_short_task_on_module_loop():
    asyncio.get_running_loop().create_task(asyncio.sleep(0.05))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2)


def test_unawaited_coroutine_is_reported_on_its_test(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

async def work():
    pass

@pytest.mark.asyncio
async def test_forgets_await():
    work()

def test_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_forgets_await*"])
    assert_lines(result, "tasks: coroutine 'work' was never awaited")


def test_never_retrieved_task_exception_is_reported_on_its_test(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

async def fail():
    raise ValueError("boom")

@pytest.mark.asyncio
async def test_drops_failed_task():
    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.wait([task])
    del task

def test_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_drops_failed_task*"])
    assert_lines(result, "tasks: Task exception was never retrieved")


def test_loop_owned_resources_on_a_module_loop_are_not_leaks(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest

@pytest.mark.asyncio(loop_scope="module")
async def test_to_thread_starts_executor_workers():
    assert await asyncio.to_thread(sum, [1, 2]) == 3

@pytest.mark.asyncio(loop_scope="module")
async def test_again():
    assert await asyncio.to_thread(sum, [3]) == 3

def test_asyncio_run_in_sync_test():
    asyncio.run(asyncio.sleep(0))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3)


def test_module_fixture_task_is_owned_by_the_fixture(run: Run) -> None:
    result = run(
        """
import asyncio
import pytest
import pytest_asyncio

async def heartbeat():
    while True:
        await asyncio.sleep(1)

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server():
    task = asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")
    yield task

@pytest.mark.asyncio(loop_scope="module")
async def test_first(server):
    assert not server.done()

@pytest.mark.asyncio(loop_scope="module")
async def test_second(server):
    assert not server.done()
""",
        "--resource-strict",
    )
    # Not blamed on test_first; reported when the fixture's scope ends (last test's teardown).
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_second*"])
    assert_lines(
        result,
        "tasks: task 'heartbeat' running heartbeat() (owned by module-scoped fixture 'server')",
    )


def test_shared_loop_holding_tasks_still_sees_each_new_one(run: Run) -> None:
    # A held task finishes and a new one starts in the same test: the count is unchanged,
    # the set of tasks is not. A task the fixture holds that finished is not its leak.
    result = run(
        """
import asyncio
import pytest
import pytest_asyncio

async def poll_forever():
    while True:
        await asyncio.sleep(1)

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def held():
    stops = [asyncio.Event() for _ in range(20)]
    tasks = [asyncio.get_running_loop().create_task(s.wait()) for s in stops]
    yield stops, tasks
    for stop in stops:
        stop.set()
    await asyncio.gather(*tasks)

@pytest.mark.asyncio(loop_scope="module")
async def test_swaps(held):
    stops, tasks = held
    stops[0].set()
    await tasks[0]
    asyncio.get_running_loop().create_task(poll_forever(), name="poller")

@pytest.mark.asyncio(loop_scope="module")
async def test_finishes_one(held):
    stops, tasks = held
    stops[1].set()
    await tasks[1]

@pytest.mark.asyncio(loop_scope="module")
async def test_last(held):
    assert tasks_done(held) == 2

def tasks_done(held):
    return sum(task.done() for task in held[1])
""",
        "--resource-strict",
        "--resource-checks=tasks",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_swaps*"])
    assert_lines(result, "tasks: task 'poller' running poll_forever()")
    assert "owned by" not in result.stdout.str()
