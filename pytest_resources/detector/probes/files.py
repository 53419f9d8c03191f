"""Files and directories left on disk: new entries of the system temp dir, the current
directory and the rootdir, and POSIX shared memory segments (``/dev/shm``).

A directory is listed again only when something in it changed. With ``watch()`` (Linux,
called before the first test when the session checks files), inotify says so: a clean test
costs one ``poll()`` of its descriptor, ~1.5 k instructions (callgrind). Otherwise (a test's
marker asks for files, or inotify is not available) adding or removing an entry moves its
directory's mtime: one ``stat`` per directory, ~5.6 k instructions each, and a listing while
the mtime is too recent to trust (a file system stamps times from a clock that ticks every
few ms: a file created in the tick of the last listing leaves the mtime where it was).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import select
import struct
import tempfile
import time
from collections.abc import Hashable, Iterable
from typing import Any

from ..sizes import format_size
from .base import Items, Leak, Probe

SHM_DIR = "/dev/shm"
#: What test tools create in the project as they go (a bytecode cache, pytest's and
#: hypothesis' caches, coverage data files) and pytest's own temp root, ``pytest-of-<user>``.
DEFAULT_IGNORED_NAMES = (
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".coverage",
    ".coverage.*",
    "pytest-of-*",
)
#: How recent an mtime must be to be rescanned next time: coarser than the kernel's
#: timestamp tick (a jiffy, 1 to 10 ms).
RACY_NS = 50_000_000
#: Entries counted under a leaked directory before the size says "at least".
TREE_LIMIT = 1000

Listing = dict[str, int]

# inotify(7): entries created, moved in or out, removed; the watched directory gone.
_IN_CHANGED = 0x100 | 0x80 | 0x40 | 0x200 | 0x400 | 0x800
_IN_Q_OVERFLOW = 0x4000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class FilesProbe(Probe):
    """Keyed by path, valued by inode: a file removed and made again under its name is new."""

    kind = "files"

    def __init__(
        self,
        dirs: Iterable[str],
        ignore: Iterable[str] = (),
        exempt: Iterable[str] = (),
    ) -> None:
        """``dirs``: where to look; ``ignore``: fnmatch patterns of names or full paths;
        ``exempt``: paths (pytest's basetemp) whose entry, or the entry holding them, is
        never a leak."""
        watched: dict[str, None] = {}
        for directory in dirs:
            real = os.path.realpath(directory)
            if os.path.isdir(real):
                watched.setdefault(real)
        self.dirs = tuple(watched)
        self._shared = frozenset(d for d in self.dirs if d in _shared_dirs())
        patterns = DEFAULT_IGNORED_NAMES + tuple(ignore)
        self._ignored = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
        self._exempt = frozenset(
            _entry_in(d, os.path.realpath(p)) for p in exempt for d in self.dirs
        ) - {None}
        self._mtimes: tuple[int | None, ...] = ()
        self._racy = True
        self._listings: tuple[Listing, ...] = tuple({} for _ in self.dirs)
        #: The inotify descriptor and its poll object, and which directory each watch is.
        self._inotify: int | None = None
        self._poll: Any = None
        self._watches: dict[int, int] = {}

    def watch(self) -> None:
        """Be told of changes by inotify, from now on (a descriptor of the session's, opened
        before the first test); without it (not Linux, no instance left), stat as before."""
        if self._inotify is not None or not self.dirs:
            return
        try:
            import ctypes  # on use: only sessions that check files pay for the import

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        watches = {}
        for index, directory in enumerate(self.dirs):
            wd = libc.inotify_add_watch(fd, os.fsencode(directory), _IN_CHANGED)
            if wd < 0:
                os.close(fd)
                return
            watches[wd] = index
        self._inotify, self._watches = fd, watches
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._update(set(range(len(self.dirs))))

    def close(self) -> None:
        if self._inotify is not None:
            os.close(self._inotify)
            self._inotify = self._poll = None

    def snapshot(self) -> tuple[Listing, ...]:
        if self._poll is not None:
            if self._poll.poll(0):
                self._changed()
            return self._listings
        mtimes: tuple[int | None, ...]
        try:
            mtimes = tuple([s.st_mtime_ns for s in map(os.stat, self.dirs)])
        except OSError:  # a watched directory was removed
            mtimes = tuple(map(_mtime, self.dirs))
        if mtimes == self._mtimes and not self._racy:
            return self._listings  # the same object: comparing it is an identity check
        return self._scan(mtimes)

    def _scan(self, mtimes: tuple[int | None, ...]) -> tuple[Listing, ...]:
        now = time.time_ns()
        old = self._mtimes or (None,) * len(self.dirs)
        self._update({i for i, m in enumerate(mtimes) if m != old[i] or self._racy})
        self._mtimes = mtimes
        self._racy = any(m is not None and m > now - RACY_NS for m in mtimes)
        return self._listings

    def _changed(self) -> None:
        """Read every pending event, then list the directories they name, once each."""
        assert self._inotify is not None
        changed: set[int] = set()
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._inotify, 65536):
                offset = 0
                while offset < len(data):
                    wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                    offset += _EVENT.size + size
                    if mask & _IN_Q_OVERFLOW or wd not in self._watches:
                        changed.update(range(len(self.dirs)))
                    else:
                        changed.add(self._watches[wd])
        self._update(changed)

    def _update(self, indexes: set[int]) -> None:
        listings = list(self._listings)
        for index in indexes:
            listing = self._list(self.dirs[index])
            if listing != listings[index]:
                listings[index] = listing
        state = tuple(listings)
        if state != self._listings:
            self._listings = state

    def _list(self, directory: str) -> Listing:
        ignored, exempt = self._ignored, self._exempt
        out: Listing = {}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    path = entry.path
                    if not (ignored(entry.name) or ignored(path) or path in exempt):
                        out[path] = entry.inode()
        except OSError:
            pass
        return out

    def items(self, snap: Any) -> Items:
        listings: tuple[Listing, ...] = snap
        out: dict[Hashable, object] = {}
        for listing in listings:
            out.update(listing)
        return out

    def changed(self, before: Any, after: Any) -> dict[Hashable, tuple[object, object]]:
        """New entries only: removing or replacing a file that was there is no leak."""
        old, new = self.items(before), self.items(after)
        return {path: (None, inode) for path, inode in new.items() if path not in old}

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        # Another user's file is another process's, whatever the timing says.
        try:
            return os.lstat(str(key)).st_uid != os.geteuid()
        except OSError:
            return True  # gone already

    def can_end(self, keys: list[Hashable]) -> bool:
        # In shared directories other processes' short-lived files come and go; what a test
        # left in the project stays until code removes it, and waiting runs none.
        return any(os.path.dirname(str(key)) in self._shared for key in keys)

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        path = str(key)
        directory, name = os.path.split(path)
        try:
            st = os.lstat(path)
        except OSError:
            return Leak(self.kind, f"{path} (gone)", signature=_signature(directory, name, ""))
        if os.path.isdir(path) and not os.path.islink(path):
            count, size, complete = _tree(path)
            what = "directory"
            entries = f"{count}{'' if complete else '+'} entr{'y' if count == 1 else 'ies'}"
            content = f"{entries}, {format_size(size)}"
        else:
            what = "shared memory segment" if directory == SHM_DIR else "file"
            content = format_size(st.st_size)
        return Leak(
            self.kind,
            f"{what} {path} ({content})",
            _place(directory),
            signature=_signature(directory, name, what),
        )


def _shared_dirs() -> tuple[str, ...]:
    return (os.path.realpath(tempfile.gettempdir()), os.path.realpath(SHM_DIR))


def _entry_in(directory: str, path: str) -> str | None:
    """The entry of ``directory`` that is ``path`` or holds it, if any."""
    prefix = directory.rstrip(os.sep) + os.sep
    if not path.startswith(prefix):
        return None
    return prefix + path[len(prefix) :].split(os.sep, 1)[0]


def _tree(path: str) -> tuple[int, int, bool]:
    """Entries under ``path`` and their total size, counting at most TREE_LIMIT entries."""
    count = size = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            count += 1
            if count > TREE_LIMIT:
                return TREE_LIMIT, size, False
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return count, size, True


def _place(directory: str) -> str:
    if directory == SHM_DIR:
        return "never unlinked: unlink() it when done"
    if directory == os.path.realpath(tempfile.gettempdir()):
        return "created in the temp dir and never removed: use tmp_path, or remove it"
    return "created during the test and never removed: use tmp_path, or remove it"


def _signature(directory: str, name: str, what: str) -> str:
    """Stable across runs: a name in the project, only the kind of entry in the shared
    directories, whose names are random (``tmpk3j2_x``, ``psm_5f2c``)."""
    if directory in _shared_dirs():
        where = "shm" if directory == SHM_DIR else "tmp"
        return f"files:{where}:{what}"
    return f"files:project:{name}"
