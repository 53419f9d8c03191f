"""Chat sessions on a TaskManager; the ``test_*`` functions run as tests (once per backend)."""

from __future__ import annotations

import pytest

from pytest_resources.components.workers import TaskContext, TaskManager


class ChatSession:
    """One conversation: remembers its history across tasks, closed when idle."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.history: list[str] = []
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def reply(message: str, context: TaskContext) -> int:
    session: ChatSession = context.instance
    session.history.append(message)
    for word in f"you said {message}".split():
        context.emit(word)  # streamed to the submitter as it is produced
    return len(session.history)


@pytest.mark.asyncio
async def test_a_session_remembers_and_streams(task_manager_pool: TaskManager) -> None:
    task_manager_pool.register("reply", reply, instances=ChatSession)

    first = await task_manager_pool.submit("reply", "hello", key="agent-1#session-9")
    assert [word async for word in first] == ["you", "said", "hello"]
    assert await first.result(timeout=30) == 1

    second = await task_manager_pool.submit("reply", "again", key="agent-1#session-9")
    assert await second.result(timeout=30) == 2  # the same ChatSession instance
    health = await task_manager_pool.health()
    assert (health.active_instances, health.worker_count, health.running) == (1, 4, True)
