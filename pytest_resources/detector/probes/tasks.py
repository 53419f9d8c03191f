"""asyncio tasks left pending on the event loops tests run on.

Loops are registered as their runner creates them (see ``loops.RunnerHooks``). A live loop's
pending tasks are snapshotted around each test; a loop about to be shut down is inspected by
``pending_before_close`` before its runner cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from ...awaits import Site, await_frames, site_text
from .base import Items, Leak, Probe
from .stacks import FrameFilter

#: Tasks a test runner keeps for as long as its loop lives, by (module, coroutine qualname):
#: anyio's pytest runner feeds tests and fixtures to one task that its shutdown cancels.
RUNNER_TASKS = frozenset({("anyio._backends._asyncio", "TestRunner._run_tests_and_fixtures")})


class LoopRegistry:
    """The event loops under watch, held weakly, each with the fixture that created it ("" for
    a test's own loop)."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = (
            weakref.WeakKeyDictionary()
        )
        self.reported: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    def add(self, loop: asyncio.AbstractEventLoop, owner: str = "") -> None:
        self._loops.setdefault(loop, owner)

    def owner(self, loop: asyncio.AbstractEventLoop) -> str:
        return self._loops.get(loop, "")

    def discard(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loops.pop(loop, None)

    def live(self) -> list[asyncio.AbstractEventLoop]:
        """Open loops whose tasks can be diffed: not one running in another thread, whose
        tasks are in flux (they are judged when it shuts down)."""
        if not self._loops:  # the common case, without iterating a WeakKeyDictionary
            return []
        current = asyncio._get_running_loop()
        return [loop for loop in self._open() if loop is current or not loop.is_running()]

    def _open(self) -> list[asyncio.AbstractEventLoop]:
        # keyrefs() copies in one step: a runner in another thread may add a loop meanwhile.
        loops = (ref() for ref in self._loops.keyrefs())
        return [loop for loop in loops if loop is not None and not loop.is_closed()]

    def executor_threads(self) -> set[threading.Thread]:
        """Worker threads of open loops' default executors: they live as long as the loop
        (``_default_executor`` is a private attribute of ``BaseEventLoop`` in 3.11-3.13)."""
        out: set[threading.Thread] = set()
        for loop in self._open():
            executor = getattr(loop, "_default_executor", None)
            out.update(getattr(executor, "_threads", ()))
        return out


#: The weak references behind ``asyncio.all_tasks`` in 3.11-3.13 (private attributes; 3.14
#: keeps native tasks elsewhere): one for every task alive, pending or not.
_TASKS: set[Any] | None = None
if sys.version_info < (3, 14):
    _weak = getattr(asyncio.tasks, "_scheduled_tasks", None)  # 3.12+
    _weak = getattr(asyncio.tasks, "_all_tasks", None) if _weak is None else _weak
    _TASKS = getattr(_weak, "data", None)
#: Tasks running their first step eagerly (3.12+): they are not in _TASKS yet.
_EAGER: set[Any] = getattr(asyncio.tasks, "_eager_tasks", set())


class TaskProbe(Probe):
    """A snapshot that finds the interpreter's tasks unchanged since the last one (the same
    loops, the same set of task references, compared in C) is the last one again: a session
    loop holding a thousand pending tasks costs a set comparison, not a walk of every task.
    Tasks in it may have finished since; ``items`` leaves those out."""

    kind = "tasks"

    def __init__(self, registry: LoopRegistry) -> None:
        self.registry = registry
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._tasks: frozenset[Any] = frozenset()
        self._last: dict[asyncio.Task[Any], None] = {}

    def count(self, snap: Any) -> int:
        return len(self.items(snap))

    def items(self, snap: Any) -> Items:
        return {task: None for task in snap if not task.done()}

    def snapshot(self) -> dict[asyncio.Task[Any], None]:
        loops = self.registry.live()
        tasks = _TASKS
        if tasks is not None and not _EAGER and loops == self._loops and tasks == self._tasks:
            return self._last
        # Copied before listing: a task made meanwhile makes the next snapshot list again.
        self._tasks = frozenset(tasks) if tasks is not None else frozenset()
        out: dict[asyncio.Task[Any], None] = {}
        for loop in loops:
            for task in asyncio.all_tasks(loop):
                out[task] = None
        self._loops, self._last = loops, out
        return out

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        assert isinstance(key, asyncio.Task)
        return key.done() or key in self.registry.reported or runner_task(key)

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        assert isinstance(key, asyncio.Task)
        self.registry.reported.add(key)
        return describe_task(key)

    def settle(self, keys: list[Hashable], delay: float) -> None:
        run_until_done([k for k in keys if isinstance(k, asyncio.Task)], delay)

    def cleanup(self, keys: list[Hashable], before: Any) -> None:
        tasks = [k for k in keys if isinstance(k, asyncio.Task)]
        for task in tasks:
            task.cancel()
        run_until_done(tasks, 1.0)


def run_until_done(tasks: Iterable[asyncio.Task[Any]], timeout: float) -> None:
    """Let ``tasks`` run on their (stopped) loops for up to ``timeout`` seconds."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Task[Any]]] = {}
    for task in tasks:
        by_loop.setdefault(task.get_loop(), []).append(task)
    for loop, pending in by_loop.items():
        if loop.is_closed() or loop.is_running():
            continue
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.wait(pending, timeout=timeout))


def pending_before_close(
    loop: asyncio.AbstractEventLoop,
    registry: LoopRegistry,
    grace: float,
    owner: str = "",
    annotate: Callable[[str, Hashable, Leak], Leak] | None = None,
) -> list[Leak]:
    """Tasks still pending on ``loop`` (after ``grace`` seconds to finish) that nobody reported.

    Call it before the loop's runner closes, because closing cancels them silently.
    """
    if loop.is_closed() or loop.is_running():
        return []
    pending = [
        t for t in asyncio.all_tasks(loop) if t not in registry.reported and not runner_task(t)
    ]
    if pending and grace > 0:
        run_until_done(pending, grace)
    leaks = []
    for task in pending:
        if not task.done():
            registry.reported.add(task)
            leak = describe_task(task, owner)
            leaks.append(annotate("tasks", task, leak) if annotate else leak)
    return leaks


def runner_task(task: asyncio.Task[Any]) -> bool:
    """Is ``task`` one a test runner keeps for itself (see ``RUNNER_TASKS``)?"""
    frame = getattr(task.get_coro(), "cr_frame", None)
    if frame is None:
        return False
    return (frame.f_globals.get("__name__"), frame.f_code.co_qualname) in RUNNER_TASKS


def describe_task(task: asyncio.Task[Any], owner: str = "") -> Leak:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", type(coro).__name__)
    frames = await_frames(coro)
    is_user = FrameFilter().is_user
    mine = [site for site in frames if is_user(site[0])]
    return Leak(
        "tasks",
        f"task {task.get_name()!r} running {name}()",
        _suspended(frames),
        signature=f"tasks:{name}",
        owner=owner,
        brief=_suspended(mine),
    )


def _suspended(frames: list[Site]) -> str:
    if not frames:
        return ""
    return "suspended at (outermost first):\n" + "\n".join(site_text(f) for f in frames)
