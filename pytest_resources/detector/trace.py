"""Creation sites for ``--resource-trace``: where threads, tasks, sockets, files and child
processes were created, so a leak report can say "created at file:line in function".

Nothing is installed until ``Tracer.start()``. Then: ``threading.Thread.start`` is wrapped,
coroutines record their origin (``sys.set_coroutine_origin_tracking_depth``), and one audit
hook watches ``open``, ``os.mkdir``, ``socket.__new__`` and ``subprocess.Popen``. ``stop()``
undoes all of it except the audit hook, which Python cannot remove: it stays, inert,
returning at once. The tracer belongs to the session's Guard; nothing here is module state.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable
from types import FrameType
from typing import Any

from .probes.base import Leak
from .probes.stacks import KEEP, STOP, FrameFilter

Frames = tuple[tuple[str, int, str], ...]

MAX_FRAMES = 8
#: Remembered file paths and command lines, each; the oldest are forgotten first.
MAX_SITES = 4096
ORIGIN_DEPTH = 32
WATCHED = frozenset({"open", "os.mkdir", "socket.__new__", "subprocess.Popen"})


class Tracer:
    """Remembers creation sites while started; one per session."""

    def __init__(self) -> None:
        self.threads: weakref.WeakKeyDictionary[threading.Thread, Frames] = (
            weakref.WeakKeyDictionary()
        )
        self.sockets: dict[int, tuple[weakref.ref[Any], Frames]] = {}
        self.paths: dict[str, Frames] = {}
        self.commands: dict[str, Frames] = {}
        # Its own frames (the Thread.start wrapper, the audit hook) are never the creator.
        self._kind = FrameFilter(skip=(__file__,)).kind
        self._depth = 0
        self.active = False
        self._hooked = False
        self._thread_start: Callable[[threading.Thread], None] = threading.Thread.start
        self._traced_start = self._make_traced_start()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if not self._hooked:  # once per tracer: an audit hook cannot be removed
            sys.addaudithook(self._audit)
            self._hooked = True
        self._thread_start = threading.Thread.start
        self._traced_start = self._make_traced_start()
        threading.Thread.start = self._traced_start  # type: ignore[method-assign,assignment]
        self._depth = sys.get_coroutine_origin_tracking_depth()
        sys.set_coroutine_origin_tracking_depth(ORIGIN_DEPTH)
        self.active = True

    def stop(self) -> None:
        self.active = False
        if threading.Thread.start is self._traced_start:
            threading.Thread.start = self._thread_start  # type: ignore[method-assign,assignment]
        sys.set_coroutine_origin_tracking_depth(self._depth)

    def _make_traced_start(self) -> Callable[[threading.Thread], None]:
        original = self._thread_start

        def traced_start(thread: threading.Thread) -> None:
            if self.active:  # a reference taken while tracing was on may outlive it
                self.threads[thread] = self.frames(sys._getframe(1))
            return original(thread)

        return traced_start

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event in WATCHED:
            self.on_event(event, args)

    # -- recording -------------------------------------------------------------------------

    def frames(self, frame: FrameType | None) -> Frames:
        """Up to MAX_FRAMES frames of the code that asked, innermost first, without the
        standard library's frames and stopping at the test runner's."""
        out: list[tuple[str, int, str]] = []
        while frame is not None and len(out) < MAX_FRAMES:
            code = frame.f_code
            kind = self._kind(code.co_filename)
            if kind == STOP:
                break
            if kind == KEEP:
                out.append((code.co_filename, frame.f_lineno, code.co_name))
            frame = frame.f_back
        return tuple(reversed(out))

    def _origin(self, origin: Iterable[tuple[str, int, str]]) -> Frames:
        out: list[tuple[str, int, str]] = []
        for site in origin:  # innermost first
            kind = self._kind(site[0])
            if kind == STOP or len(out) == MAX_FRAMES:
                break
            if kind == KEEP:
                out.append(site)
        return tuple(reversed(out))

    def on_event(self, event: str, args: tuple[Any, ...]) -> None:
        frames = self.frames(sys._getframe(2))
        if not frames:
            return
        if event == "socket.__new__":
            sock = args[0]
            key = id(sock)
            self.sockets[key] = (weakref.ref(sock, lambda _: self.sockets.pop(key, None)), frames)
        elif event in ("open", "os.mkdir"):
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            _remember(self.paths, os.path.abspath(os.fsdecode(path)), frames)
        else:
            _remember(self.commands, _command(args[1]), frames)

    # -- lookup ----------------------------------------------------------------------------

    def annotate(self, kind: str, key: Hashable, leak: Leak) -> Leak:
        """``leak`` with its creation site, when it is known: any site while tracing is on;
        after it, only one that belongs to the leaked object itself (a thread, a task, a
        socket), which cannot be another's since: that places a wider fixture's leak, found
        when the fixture ends, after the traced window that made it. A path or a command
        seen earlier may be another's by now."""
        if leak.created:
            return leak
        frames = self.site(kind, key, own_only=not self.active)
        return leak._replace(created=frames) if frames else leak

    def site(self, kind: str, key: Hashable, own_only: bool = False) -> Frames:
        if kind == "threads" and isinstance(key, threading.Thread):
            return self.threads.get(key, ())
        if kind == "tasks" and isinstance(key, asyncio.Task):
            return self._origin(getattr(key.get_coro(), "cr_origin", None) or ())
        if kind == "fds" and isinstance(key, int):
            return self._fd_site(key, own_only)
        if own_only:
            return ()
        if kind == "processes" and isinstance(key, int):
            return self.commands.get(_cmdline(key), ())
        if kind == "files" and isinstance(key, str):
            return self.paths.get(key, ())
        return ()

    def _fd_site(self, fd: int, own_only: bool) -> Frames:
        for ref, frames in list(self.sockets.values()):
            sock = ref()
            if sock is not None and _fileno(sock) == fd:
                return frames
        if own_only:
            return ()
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ()
        found = self.paths.get(target)
        if found is None:  # opened through a symlink
            found = next(
                (f for p, f in reversed(self.paths.items()) if os.path.realpath(p) == target), ()
            )
        return found


def _remember(sites: dict[str, Frames], key: str, frames: Frames) -> None:
    sites.pop(key, None)  # the latest site moves to the end
    sites[key] = frames
    if len(sites) > MAX_SITES:
        del sites[next(iter(sites))]


def _command(args: Any) -> str:
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    return " ".join(os.fsdecode(a) for a in args)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(os.fsdecode(p) for p in f.read().split(b"\0") if p)
    except OSError:
        return ""


def _fileno(sock: Any) -> int:
    try:
        return int(sock.fileno())
    except Exception:  # a closed or broken socket object
        return -1
