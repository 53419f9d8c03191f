"""File descriptors: files, pipes, sockets and anything else a process holds open."""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import io
import os
import select
import selectors
import socket
import sys
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from . import singletons
from .base import Leak, Probe

FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


def open_fds(directory: int | str = FD_DIR) -> list[int]:
    return [int(name) for name in os.listdir(directory)]


def _is_open(fd: int) -> bool:
    # listdir's own descriptor shows in the listing but is closed by the time we look.
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def target(fd: int) -> str:
    try:
        return os.readlink(f"{FD_DIR}/{fd}")
    except OSError:
        return "?"


class FdProbe(Probe):
    """Identity is (device, inode): closing one file and opening another on the same number
    is a leak. Descriptors already open at the first snapshot (stdio, pytest's capture, what
    plugins open while the session starts) are tracked by number only.

    Those a fixture wider than a test owns are tracked by number only too, while it owns them:
    test verdicts pass over them by number anyway, and a session holding hundreds of them
    would otherwise pay an ``fstat`` each per test.

    Where the kernel reports the number of open descriptors as the size of ``/proc/self/fd``
    (Linux 6.2+), a snapshot first checks that count, that every descriptor of the last
    snapshot is still open (one ``poll()`` for all of them) and that those tracked by identity
    are still the same file; only a difference pays for listing the directory."""

    kind = "fds"

    def __init__(
        self,
        ignore_targets: Iterable[str] = (),
        holders: Callable[[list[int]], tuple[list[Leak], dict[int, Leak]]] | None = None,
    ) -> None:
        #: Names what holds several leaked descriptors (an unclosed event loop); leak path only.
        self._holders = holders
        # Listing through an open directory descriptor skips the path lookup each time.
        self._dir: int | str = FD_DIR
        with contextlib.suppress(OSError):
            self._dir = os.open(FD_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._session_fds: frozenset[int] | None = None  # set by the first listing
        #: Descriptors tracked by number only: the session's and those a wider scope owns.
        self._by_number: frozenset[int] = frozenset()
        self._owned: set[int] = set()
        self._ignore_targets = tuple(ignore_targets)
        self._last: dict[int, tuple[int, int] | None] = {}
        #: The last snapshot's descriptors, for one liveness check, and those with an identity.
        self._poll = select.poll()
        self._identified: list[tuple[int, tuple[int, int]]] = []
        # Linux before 6.2 reports 0; there is always one open descriptor, the directory's.
        self._counted = self._count() > 0
        #: The kernel's count while the open descriptors are those of _last (see snapshot).
        self._expected = -1
        #: The (device, inode) of libuv's signal pipe once seen (see singletons.py).
        self._uv_pipe: object = None

    def _count(self) -> int:
        return os.fstat(self._dir).st_size if isinstance(self._dir, int) else -1

    def _still(self) -> bool:
        """Is every descriptor of the last snapshot still open, and still the same file?"""
        # Registered with no events, poll() reports only closed (POLLNVAL), hung-up or failed
        # descriptors: one system call instead of one per descriptor.
        if any(event & select.POLLNVAL for _fd, event in self._poll.poll(0)):
            return False
        try:
            for fd, ident in self._identified:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != ident:
                    return False
        except OSError:
            return False
        return True

    def close(self) -> None:
        if isinstance(self._dir, int):
            os.close(self._dir)
            self._dir = FD_DIR

    def count(self, snap: Any) -> int:
        return len(snap)

    def snapshot(self) -> dict[int, tuple[int, int] | None]:
        last = self._last
        # Same count and every known descriptor unchanged: the set of open ones is the same.
        if self._counted and last and self._count() == self._expected and self._still():
            return last
        counted = self._count()
        self._last = listing = self._list()
        # The kernel counts a descriptor it has reserved and not yet installed (a thread
        # blocked in accept() holds one: pytest-rerunfailures' status server with xdist, a
        # session's test server), which no listing shows. So the count to expect while nothing
        # changes is the one seen around this listing, not its length; -1 (never a count)
        # when something opened or closed meanwhile. A reserved number that becomes a
        # descriptor (accept() returning) with no other change is listed at the next change.
        self._expected = counted if self._count() == counted else -1
        self._poll = select.poll()
        for fd in listing:
            self._poll.register(fd, 0)
        self._identified = [(fd, ident) for fd, ident in listing.items() if ident is not None]
        return listing

    def _open(self) -> list[int]:
        return [fd for fd in open_fds(self._dir) if _is_open(fd)]

    def owned(self, keys: list[Hashable]) -> None:
        self._owned.update(k for k in keys if isinstance(k, int))
        self._by_number = frozenset(self._owned).union(self._session_fds or ())
        self._identified = [(fd, i) for fd, i in self._identified if fd not in self._owned]

    def released(self, keys: list[Hashable]) -> None:
        self._owned.difference_update(keys)
        self._by_number = frozenset(self._owned).union(self._session_fds or ())
        self._last = {}  # the next snapshot lists them again, with their identities

    def _list(self) -> dict[int, tuple[int, int] | None]:
        if self._session_fds is None:  # the first listing: what is open now is the session's
            self._session_fds = self._by_number = frozenset(self._open())
            return dict.fromkeys(sorted(self._session_fds))
        by_number = self._by_number
        out: dict[int, tuple[int, int] | None] = {}
        for fd in open_fds(self._dir):
            if fd in by_number:
                out[fd] = None
                continue
            try:
                st = os.fstat(fd)
            except OSError:  # the descriptor listdir itself used, already closed
                continue
            out[fd] = (st.st_dev, st.st_ino)
        return out

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        assert isinstance(key, int)
        if key in stdlib_helper_fds() or self._process_wide(key, new):
            return True
        if not self._ignore_targets:
            return False
        path = target(key)
        return any(fnmatch.fnmatchcase(path, pat) for pat in self._ignore_targets)

    def describe_together(self, keys: list[Hashable]) -> tuple[list[Leak], dict[Hashable, Leak]]:
        if self._holders is None:
            return [], {}
        leaks, covered = self._holders([k for k in keys if isinstance(k, int)])
        return leaks, dict(covered.items())

    def can_end(self, keys: list[Hashable]) -> bool:
        # After the gc pass, a descriptor that no live object owns (os.open, os.pipe, or an
        # owner collected without closing it) closes only if code closes it by number; one
        # whose file or socket is still reachable may be closed by whoever holds that.
        return not set(keys).isdisjoint(owned_fds())

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        assert isinstance(key, int)
        path = target(key)
        if path.startswith("socket:"):
            what, raw, signature = describe_socket(key)
            brief = "" if raw else None  # described: the inode is only for -v
            details = f"{raw}, {path}" if raw else path
            return Leak(self.kind, f"fd {key} ({what})", details, f"fds:{signature}", brief=brief)
        if path.startswith("pipe:"):
            return Leak(self.kind, f"fd {key} (pipe)", path, signature="fds:pipe", brief="")
        if path.startswith("anon_inode:"):
            return Leak(self.kind, f"fd {key} ({path})", signature="fds:anon_inode")
        details = "replaced a descriptor that was open before the test" if old else ""
        return Leak(self.kind, f"fd {key} ({path})", details, signature=f"fds:file:{path}")

    def _process_wide(self, fd: int, ident: object) -> bool:
        """A descriptor of a well-known process-wide singleton (see singletons.py)."""
        if ident is None:
            return False
        if ident in singletons.heap_arena_inodes():
            return True
        # libuv makes its signal pipe once per process: the first one recognised is it.
        if self._uv_pipe is None and singletons.is_libuv_signal_pipe(fd, ident, self._last):
            self._uv_pipe = ident
        return ident == self._uv_pipe


def owned_fds() -> set[int]:
    """Descriptors held by a live file, socket, selector or multiprocessing connection
    (walks every object the gc tracks: leak path only)."""
    owners: list[type] = [io.FileIO, socket.socket, selectors.BaseSelector]
    connection = sys.modules.get("multiprocessing.connection")
    if connection is not None:
        owners.append(connection._ConnectionBase)
    kinds = tuple(owners)
    out = set()
    for obj in gc.get_objects():
        if isinstance(obj, kinds) and (fileno := getattr(obj, "fileno", None)) is not None:
            with contextlib.suppress(OSError, ValueError):  # closed
                out.add(fileno())
    return out


def stdlib_helper_fds() -> set[int]:
    """Pipes to multiprocessing's resource tracker and forkserver: started once, kept for
    the life of the process."""
    fds = set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        fds.add(getattr(tracker._resource_tracker, "_fd", None))
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is not None:
        fds.add(getattr(forkserver._forkserver, "_forkserver_alive_fd", None))
    return {fd for fd in fds if isinstance(fd, int)}


def describe_socket(fd: int) -> tuple[str, str, str]:
    """What a socket fd is (``socket 127.0.0.1:8080 LISTEN``), its raw family and type
    (empty when unknown: a socket that is not bound yet) and a stable signature."""
    import psutil  # lazily: most runs never need it

    try:
        conns = psutil.Process().net_connections(kind="all")
    except (psutil.Error, OSError):
        conns = []
    for conn in conns:
        if conn.fd == fd:
            family = _name(socket.AddressFamily, conn.family)
            kind = _name(socket.SocketKind, conn.type)
            parts = [_PROTOCOLS.get((family, kind), f"{family} {kind} socket")]
            if conn.laddr:
                parts.append(_addr(conn.laddr))
            if conn.raddr:
                parts.append(f"→ {_addr(conn.raddr)}")
            if conn.status and conn.status != psutil.CONN_NONE:
                parts.append(conn.status)
            return " ".join(parts), f"{family} {kind}", f"socket:{family}:{kind}"
    return "socket", "", "socket"


# How a socket is named in a leak: TCP needs no word, its state (LISTEN...) says it.
_PROTOCOLS = {
    ("AF_INET", "SOCK_STREAM"): "socket",
    ("AF_INET6", "SOCK_STREAM"): "socket",
    ("AF_INET", "SOCK_DGRAM"): "udp socket",
    ("AF_INET6", "SOCK_DGRAM"): "udp socket",
    ("AF_UNIX", "SOCK_STREAM"): "unix socket",
    ("AF_UNIX", "SOCK_DGRAM"): "unix datagram socket",
}


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name)
    except ValueError:
        return str(value)


def _addr(addr: Any) -> str:
    if not addr:
        return "-"
    if isinstance(addr, str):
        return addr
    host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
    return f"{host}:{addr[1]}"
