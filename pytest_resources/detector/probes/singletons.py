"""Process-wide pools and one-time set-ups of well-known libraries.

Each is started by whichever test first needs it and kept, by design, for the life of the
process (or until it idles out), so it is never that test's leak. Every entry says how it is
recognised; each is checked only for what already differs (the leak path), and only when
its library is imported.
"""

from __future__ import annotations

import array
import fcntl
import logging
import os
import sys
import termios
import threading
from collections.abc import Mapping


def idle_pool_threads() -> set[threading.Thread]:
    """trio's worker-thread cache (``trio.to_thread.run_sync``): a worker waits up to 10 s
    for the next job before it exits. Idle workers (in the cache's idle set) are the
    process's; a worker still running a job is not idle, so it stays the test's."""
    cache = sys.modules.get("trio._core._thread_cache")
    idle = getattr(getattr(cache, "THREAD_CACHE", None), "_idle_workers", None)
    if not idle:
        return set()
    return {t for t in (getattr(w, "_thread", None) for w in list(idle)) if t is not None}


def heap_arena_inodes() -> set[tuple[int, int]]:
    """multiprocessing's shared-memory heap (``multiprocessing.Value``, ``Array``, shared
    ctypes): its arenas are unlinked files (``/dev/shm/pym-* (deleted)``) mapped once and
    reused for every later allocation. Each arena's descriptor and the one ``mmap`` keeps
    (a dup) share the arena's inode."""
    heap_module = sys.modules.get("multiprocessing.heap")
    heap = getattr(getattr(heap_module, "BufferWrapper", None), "_heap", None)
    out: set[tuple[int, int]] = set()
    for arena in list(getattr(heap, "_arenas", ())):
        fd = getattr(arena, "fd", -1)
        if isinstance(fd, int) and fd >= 0:
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            out.add((st.st_dev, st.st_ino))
    return out


def is_libuv_signal_pipe(fd: int, ident: object, listing: Mapping[int, object]) -> bool:
    """libuv's process-wide signal lock (uvloop): the first loop creates a pipe whose two
    ends stay open for the life of the process, holding one byte while unlocked. Recognised
    by that shape: both ends open here, one byte buffered, uvloop imported."""
    if "uvloop" not in sys.modules or ident is None:
        return False
    if sum(1 for other in listing.values() if other == ident) != 2:
        return False
    try:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
            return False
        buffered = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buffered)
    except OSError:
        return False
    return buffered[0] == 1


def is_push_response_logger(name: str, old: object, new: object) -> bool:
    """redis-py's and valkey-py's push-response logger (``utils._set_info_logger``): the first
    ``PubSub`` without a push handler creates logger ``push_response`` at level INFO with one
    ``StreamHandler``, once per process (only while no such logger exists). Recognised by
    exactly that change, from an untouched logger, with redis or valkey imported."""
    if name != "push_response" or not ("redis" in sys.modules or "valkey" in sys.modules):
        return False
    if not (isinstance(old, tuple) and isinstance(new, tuple)):
        return False
    _, level, handlers = new
    return (
        old[1:] == (logging.NOTSET, ())
        and level == logging.INFO
        and len(handlers) == 1
        and type(handlers[0]) is logging.StreamHandler
    )
