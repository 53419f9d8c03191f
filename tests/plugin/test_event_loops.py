"""Tasks on every asyncio loop, whoever runs it, and loops nobody closed.

Each leaking snippet leaves a task pending that its loop's shutdown would cancel silently;
each clean twin awaits or cancels its task, and must pass under --resource-strict.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from pytester_run import Run, assert_lines

from pytest_resources.detector.probes.loops import RunnerHooks

HEADER = """
import asyncio
import unittest

import pytest

LEAK = []

async def forever():
    await asyncio.Event().wait()

def test_next():
    pass
"""


def leaked_on(result: pytest.RunResult, test: str) -> None:
    """``test`` (and only it) errors in teardown with the pending ``forever()`` task."""
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([f"*ERROR at teardown of {test}*"])
    assert_lines(result, "running forever()", "test_it.py:9 in forever")


@pytest.mark.parametrize("backend", ['"asyncio"', '("asyncio", {"use_uvloop": True})'])
def test_anyio_test_on_the_asyncio_backend(run: Run, backend: str) -> None:
    result = run(
        HEADER
        + f"""
@pytest.fixture
def anyio_backend():
    return {backend}

@pytest.mark.anyio
async def test_anyio_task_leak():
    LEAK.append(asyncio.get_running_loop().create_task(forever()))
""",
        "--resource-strict",
    )
    leaked_on(result, "test_anyio_task_leak")


def test_asyncio_run_in_a_sync_test(run: Run) -> None:
    result = run(
        HEADER
        + """
def test_asyncio_run_task_leak():
    async def main():
        LEAK.append(asyncio.get_running_loop().create_task(forever()))
    asyncio.run(main())
""",
        "--resource-strict",
    )
    leaked_on(result, "test_asyncio_run_task_leak")


def test_isolated_asyncio_test_case(run: Run) -> None:
    result = run(
        HEADER
        + """
class TestIso(unittest.IsolatedAsyncioTestCase):
    async def test_iso_task_leak(self):
        LEAK.append(asyncio.get_running_loop().create_task(forever()))
""",
        "--resource-strict",
    )
    leaked_on(result, "TestIso.test_iso_task_leak")


def test_asyncio_runner_used_directly(run: Run) -> None:
    result = run(
        HEADER
        + """
def test_runner_task_leak():
    async def main():
        LEAK.append(asyncio.get_running_loop().create_task(forever(), name="kept"))
    with asyncio.Runner() as runner:
        runner.run(main())
""",
        "--resource-strict",
    )
    leaked_on(result, "test_runner_task_leak")
    assert_lines(result, "tasks: task 'kept' running forever()")


@pytest.mark.parametrize("how", ["runner", "run"])
def test_uvloop(run: Run, how: str) -> None:
    start = {
        "runner": "with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:\n"
        "        r.run(main())",
        "run": "uvloop.run(main())",
    }[how]
    result = run(
        HEADER
        + f"""
import uvloop

def test_uvloop_task_leak():
    async def main():
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        LEAK.append(asyncio.get_running_loop().create_task(forever()))
    {start}
""",
        "--resource-strict",
    )
    leaked_on(result, "test_uvloop_task_leak")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in Python 3.12")
def test_eager_task_left_pending(run: Run) -> None:
    result = run(
        HEADER
        + """
def test_eager_task_leak():
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        LEAK.append(loop.create_task(forever()))
    asyncio.run(main())
""",
        "--resource-strict",
    )
    leaked_on(result, "test_eager_task_leak")


CLEAN = """
import asyncio
import unittest

import pytest
import uvloop

async def forever():
    await asyncio.Event().wait()

async def awaited_and_cancelled():
    done = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await done
    cancelled = asyncio.get_running_loop().create_task(forever())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_anyio(anyio_backend):
    import anyio
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0)
    if anyio_backend == "asyncio":
        await awaited_and_cancelled()

def test_asyncio_run():
    asyncio.run(awaited_and_cancelled())

def test_runner():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(awaited_and_cancelled())

def test_closed_loop():
    loop = asyncio.new_event_loop()
    loop.run_until_complete(awaited_and_cancelled())
    loop.close()

class TestIso(unittest.IsolatedAsyncioTestCase):
    async def test_iso(self):
        await awaited_and_cancelled()

@pytest.mark.asyncio
async def test_pytest_asyncio():
    await awaited_and_cancelled()
"""


def test_tasks_awaited_or_cancelled_are_clean_on_every_runner(run: Run) -> None:
    result = run(CLEAN, "--resource-strict")
    result.assert_outcomes(passed=7)
    assert "resource leaks" not in result.stdout.str()


def test_a_leak_on_anyios_shared_runner_is_the_tests_and_the_fixtures_task_the_fixtures(
    run: Run,
) -> None:
    # A session-scoped async fixture holds anyio's runner (and its loop) for the session.
    result = run(
        """
import asyncio
import pytest

async def forever():
    await asyncio.Event().wait()

@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"

@pytest.fixture(scope="session")
async def server():
    task = asyncio.get_running_loop().create_task(forever(), name="server")
    yield task

@pytest.mark.anyio
async def test_leaks(server):
    asyncio.get_running_loop().create_task(forever(), name="stray")

@pytest.mark.anyio
async def test_clean(server):
    await asyncio.sleep(0)
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "*tasks: task 'stray' running forever()",
            "*ERROR at teardown of test_clean*",
            "*tasks: task 'server' running forever() (owned by session-scoped fixture 'server')",
        ]
    )
    assert "_run_tests_and_fixtures" not in result.stdout.str()


def test_a_loop_left_open_is_one_leak_naming_the_loop_and_its_fds(run: Run) -> None:
    result = run(
        """
import asyncio

LOOPS = []

def test_leaves_loop_open():
    LOOPS.append(asyncio.new_event_loop())

def test_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_loop_open*"])
    assert_lines(
        result,
        "leaked 1 resource:",
        "fds: unclosed event loop <_UnixSelectorEventLoop running=False closed=False",
        "holds fd ",
        "(anon_inode:[eventpoll]), fd ",
        "(socket)",
    )
    assert "fds: fd " not in result.stdout.str()


def test_a_dropped_unclosed_loop_is_an_fds_leak_of_its_test(run: Run) -> None:
    result = run(
        """
import asyncio

def test_drops_loop():
    asyncio.new_event_loop()

def test_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_drops_loop*"])
    assert_lines(result, "fds: unclosed event loop <_UnixSelectorEventLoop")


def test_runner_hooks_see_start_and_close_and_never_break_the_runner() -> None:
    seen: list[tuple[str, int]] = []

    def started(loop: asyncio.AbstractEventLoop) -> None:
        seen.append(("started", len(asyncio.all_tasks(loop))))
        raise RuntimeError("a broken hook")

    def closing(loop: asyncio.AbstractEventLoop) -> None:
        seen.append(("closing", len(asyncio.all_tasks(loop))))
        raise RuntimeError("a broken hook")

    async def main() -> None:
        # Pending when the runner closes, done within the session guard's own grace.
        asyncio.get_running_loop().create_task(asyncio.sleep(0.01))

    import asyncio.runners

    hooks = RunnerHooks(started, closing)
    before = (asyncio.runners.Runner._lazy_init, asyncio.runners._cancel_all_tasks)  # type: ignore[attr-defined]
    hooks.install()
    try:
        asyncio.run(main())
    finally:
        hooks.uninstall()
    assert seen == [("started", 0), ("closing", 1)]
    assert (asyncio.runners.Runner._lazy_init, asyncio.runners._cancel_all_tasks) == before  # type: ignore[attr-defined]
