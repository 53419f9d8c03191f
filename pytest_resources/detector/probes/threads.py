"""Threads: the live ``threading.Thread`` objects, plus a count of bare ``_thread`` threads."""

from __future__ import annotations

import _thread
import fnmatch
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from types import FrameType
from typing import Any

from . import singletons
from .base import INFRA_MODULES, Items, Leak, Probe
from .stacks import FrameFilter, format_frames, qualname, thread_stack

UNMANAGED = "unmanaged-threads"
TASK_DIR = "/proc/self/task"


def origin(thread: threading.Thread) -> object:
    """The function a thread runs (its target, a Timer's function, or the subclass' run)."""
    for attr in ("_target", "function"):
        func = getattr(thread, attr, None)
        if func is not None:
            return func
    return type(thread).run


class ThreadProbe(Probe):
    kind = "threads"

    def __init__(
        self,
        ignore_names: Iterable[str] = (),
        owned_elsewhere: Callable[[], set[threading.Thread]] = set,
    ) -> None:
        self._ignore_names = tuple(ignore_names)
        self._owned_elsewhere = owned_elsewhere

    def snapshot(self) -> tuple[dict[int, threading.Thread], tuple[threading.Thread, ...], int]:
        # threading's own registry, copied (atomic under the GIL): a fraction of the cost of
        # enumerate(), which takes a lock and builds lists. Threads still starting are in _limbo.
        limbo = threading._limbo  # type: ignore[attr-defined]
        return (
            threading._active.copy(),  # type: ignore[attr-defined]
            tuple(limbo) if limbo else (),
            _thread._count(),
        )

    def count(self, snap: Any) -> int:
        return len(snap[0]) + len(snap[1])

    def items(self, snap: Any) -> Items:
        active, limbo, count = snap
        threads = [*active.values(), *limbo]
        out: dict[Hashable, object] = dict.fromkeys(threads)
        # Threads started with _thread.start_new_thread have no Thread object; the
        # interpreter's count of started threads still sees them.
        known = sum(
            1 for t in threads if not isinstance(t, threading._DummyThread) and t.ident is not None
        )
        out[UNMANAGED] = max(0, count - known + 1)
        return out

    def changed(self, before: Any, after: Any) -> dict[Hashable, tuple[object, object]]:
        out = super().changed(before, after)
        # A drop in bare threads is not a leak; only growth is.
        pair = out.get(UNMANAGED)
        if pair is not None and _count(pair[1]) <= _count(pair[0]):
            del out[UNMANAGED]
        if out:
            owned = self._owned_elsewhere()
            for key in [k for k in out if k in owned]:
                del out[key]
        return out

    def unowned(
        self, key: Hashable, change: tuple[object, object], owned: object
    ) -> tuple[object, object] | None:
        if key != UNMANAGED:
            return None
        # The owner's bare threads are counted from its setup on: the test's own are only
        # what grew beyond both its window's start and the owner's count.
        floor = max(_count(change[0]), _count(owned))
        return (floor, change[1]) if _count(change[1]) > floor else None

    def remains(self, key: Hashable, owned: object, now: object, start: Items) -> bool:
        if key != UNMANAGED:
            return now == owned
        # A count cannot tell whose thread ended: the owner's are gone when the count fell in
        # the window it ended in (a later test's bare thread, still running, was that test's).
        return _count(now) >= max(_count(owned), _count(start.get(UNMANAGED)))

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        if not isinstance(key, threading.Thread):
            return False
        if isinstance(key, threading._DummyThread) or not key.is_alive():
            return True
        if key in singletons.idle_pool_threads():
            return True
        module = getattr(origin(key), "__module__", None) or ""
        if module.split(".")[0] in INFRA_MODULES:
            return True
        return any(fnmatch.fnmatchcase(key.name, pat) for pat in self._ignore_names)

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        if not isinstance(key, threading.Thread):
            grown = _count(new) - _count(old)
            return Leak(
                self.kind,
                f"{grown} thread(s) started with _thread.start_new_thread",
                "no threading.Thread object: see the audit event _thread.start_new_thread",
                signature="threads:unmanaged",
            )
        func = origin(key)
        stack = thread_stack(sys._current_frames().get(key.ident or -1))
        head = f"target: {qualname(func)}, daemon: {key.daemon}"
        details, brief = f"{head}, ident: {key.ident}", head
        if stack:
            details += f"\nstack (innermost last):\n{format_frames(stack)}"
        is_user = FrameFilter().is_user
        if mine := [fs for fs in stack if is_user(fs.filename)]:
            brief += f"\nstack (innermost last):\n{format_frames(mine)}"
        return Leak(
            self.kind,
            f"thread {key.name!r}",
            details,
            signature=f"threads:{_stable_name(key.name)}:{qualname(func)}",
            brief=brief,
        )


def _stable_name(name: str) -> str:
    # "Thread-12 (worker)" and "asyncio_3" carry counters that change between runs.
    return "".join("N" if c.isdigit() else c for c in name)


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def bare_threads() -> dict[int, FrameType]:
    """The threads without a ``threading.Thread`` (``_thread.start_new_thread``), by ident,
    with their current frame (the leak path only: it reads every thread's frame)."""
    managed = {
        t.ident
        for t in list(threading._active.values())  # type: ignore[attr-defined]
        if not isinstance(t, threading._DummyThread)
    }
    return {i: f for i, f in sys._current_frames().items() if i not in managed}


def holders(frame: FrameType) -> list[object]:
    """What a bare thread's outermost frame holds: the locals of the function it was started
    with (a bound method's ``self``, its arguments, a closure's cells), which whoever owns the
    thread also holds."""
    while frame.f_back is not None:
        frame = frame.f_back
    return list(frame.f_locals.values())


def native_count() -> int:
    """The process' OS threads (-1 where /proc is missing): listed as soon as they exist,
    while ``_thread._count()`` counts a thread only once it runs Python code."""
    try:
        return len(os.listdir(TASK_DIR))
    except OSError:
        return -1


def wait_counted(native_before: int, count_before: int, timeout: float = 0.05) -> None:
    """Give threads started since ``native_before``/``count_before`` up to ``timeout``
    seconds to be counted: one ``_thread.start_new_thread`` just started may not have run
    yet, and a snapshot taken now would hand it to the next window instead of its starter."""
    if native_before < 0:
        return
    deadline = time.monotonic() + timeout
    while _thread._count() - count_before < native_count() - native_before:
        if time.monotonic() >= deadline:  # threads without Python code never get counted
            return
        time.sleep(0.001)
