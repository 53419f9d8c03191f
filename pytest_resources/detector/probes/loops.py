"""asyncio event loops, whoever runs them: when a runner starts or shuts one down, and which
descriptors an unclosed one holds.

On Python 3.11+ every runner a test suite meets runs its loop through ``asyncio.Runner``:
``asyncio.run``, ``unittest.IsolatedAsyncioTestCase``, pytest-asyncio's loop fixtures, anyio's
pytest plugin (asyncio backend, and uvloop through ``loop_factory``) and ``uvloop.run``. One
pair of hooks on it therefore sees them all, with no adapter per plugin:

* ``Runner._lazy_init`` creates the loop, into ``Runner._loop`` (from ``__enter__``,
  ``get_loop`` or ``run``, whichever comes first);
* ``Runner.close`` calls the module function ``asyncio.runners._cancel_all_tasks(loop)``
  (looked up at call time) while the loop is stopped and its pending tasks still pending,
  then cancels them silently.

Both are private CPython details, the same in 3.11, 3.12 and 3.13; the tests run on each.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import contextlib
import gc
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .base import Leak
from .fds import target

LoopHook = Callable[[asyncio.AbstractEventLoop], None]


class RunnerHooks:
    """Calls ``started(loop)`` once a runner made its loop and ``closing(loop)`` before a
    runner cancels what is left on it. A hook that fails never breaks the runner."""

    def __init__(self, started: LoopHook, closing: LoopHook) -> None:
        self._started = started
        self._closing = closing
        self._saved: tuple[Any, Any] | None = None
        self._ours: tuple[Any, Any] = (None, None)

    def install(self) -> None:
        if self._saved is not None:
            return
        runner_cls: Any = asyncio.runners.Runner
        lazy_init = runner_cls._lazy_init
        cancel_all = asyncio.runners._cancel_all_tasks  # type: ignore[attr-defined]
        self._saved = (lazy_init, cancel_all)
        started, closing = self._started, self._closing

        def _lazy_init(runner: Any) -> None:
            fresh = runner._loop is None  # run() and get_loop() call it again each time
            lazy_init(runner)
            if fresh:
                with contextlib.suppress(Exception):
                    started(runner._loop)

        def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
            with contextlib.suppress(Exception):
                closing(loop)
            cancel_all(loop)

        self._ours = (_lazy_init, _cancel_all_tasks)
        runner_cls._lazy_init = _lazy_init
        asyncio.runners._cancel_all_tasks = _cancel_all_tasks  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        if self._saved is None:
            return
        lazy_init, cancel_all = self._saved
        ours_init, ours_cancel = self._ours
        runner_cls: Any = asyncio.runners.Runner
        # Put back only what is still ours: something patched on top keeps its patch.
        if runner_cls.__dict__.get("_lazy_init") is ours_init:
            runner_cls._lazy_init = lazy_init
        if getattr(asyncio.runners, "_cancel_all_tasks", None) is ours_cancel:
            asyncio.runners._cancel_all_tasks = cancel_all  # type: ignore[attr-defined]
        self._saved = None


def loop_fds(loop: asyncio.AbstractEventLoop) -> list[int]:
    """The descriptors a selector event loop holds: its selector (epoll, kqueue) and the
    self-pipe socket pair (``_selector``, ``_ssock``, ``_csock``: private attributes of
    ``asyncio.selector_events.BaseSelectorEventLoop`` in 3.11-3.13). Other loops (uvloop)
    keep theirs out of reach: none."""
    fds = []
    fileno = getattr(getattr(loop, "_selector", None), "fileno", None)
    if callable(fileno):
        with contextlib.suppress(Exception):
            fds.append(fileno())
    for name in ("_ssock", "_csock"):
        sock = getattr(loop, name, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                fds.append(sock.fileno())
    return [fd for fd in fds if isinstance(fd, int) and fd >= 0]


def unclosed_loops(fds: Iterable[int]) -> tuple[list[Leak], dict[int, Leak]]:
    """Leaked descriptors that belong to an event loop nobody closed: one leak per loop,
    and the descriptors it covers, each with its loop's leak. Only called for descriptors
    that leaked; finding the loops walks the gc's objects, so it runs only when a socket or
    anonymous inode leaked."""
    leaked = set(fds)
    if "asyncio" not in sys.modules or not any(
        target(fd).startswith(("socket:", "anon_inode:")) for fd in leaked
    ):
        return [], {}
    leaks: list[Leak] = []
    covered: dict[int, Leak] = {}
    for obj in gc.get_objects():
        # By type, not isinstance: a mock with an event loop spec is no loop.
        if not issubclass(type(obj), asyncio.AbstractEventLoop):
            continue
        try:
            held = [] if obj.is_closed() else [fd for fd in loop_fds(obj) if fd in leaked]
        except Exception:  # a loop subclass in a broken state holds nothing we can name
            continue
        if not held:
            continue
        paths = {fd: target(fd) for fd in sorted(held)}
        leak = Leak(
            "fds",
            f"unclosed event loop {obj!r}",
            "holds " + ", ".join(f"fd {fd} ({path})" for fd, path in paths.items()),
            signature=f"fds:event-loop:{type(obj).__name__}",
            # Without -v: no socket or pipe inode numbers.
            brief="holds " + ", ".join(f"fd {fd} ({_kind(path)})" for fd, path in paths.items()),
        )
        leaks.append(leak)
        covered.update(dict.fromkeys(held, leak))
    return leaks, covered


def _kind(path: str) -> str:
    """``socket:[81269]`` → ``socket``; ``anon_inode:[eventpoll]`` stays as it is."""
    return path.split(":", 1)[0] if path.startswith(("socket:", "pipe:")) else path
