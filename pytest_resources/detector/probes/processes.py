"""Child processes, keyed by (pid, start time); zombies count until they are reaped."""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import os
import shlex
from collections.abc import Hashable, Iterable

from .base import Leak, Probe

TASK_DIR = "/proc/self/task"
#: The last pid (or thread id) the kernel handed out in our pid namespace.
LAST_PID = "/proc/sys/kernel/ns_last_pid"
# Helpers the standard library starts once and keeps for the life of the process.
DEFAULT_IGNORED_CMDLINES = (
    "*multiprocessing.resource_tracker*",
    "*multiprocessing.forkserver*",
)


def _has_children_files() -> bool:
    try:
        tid = os.listdir(TASK_DIR)[0]
    except OSError:
        return False
    return os.path.exists(f"{TASK_DIR}/{tid}/children")


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Field 22 (starttime) counted after the parenthesised command name.
    return int(data[data.rindex(b")") + 2 :].split()[19])


def has_children() -> bool:
    """One syscall: most tests have no child at all, which ends the snapshot here."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def child_pids() -> dict[int, int | None]:
    pids: list[int] = []
    for tid in os.listdir(TASK_DIR):
        # os.open/os.read: a third of the cost of open() for these tiny proc files.
        try:
            fd = os.open(f"{TASK_DIR}/{tid}/children", os.O_RDONLY)
        except OSError:  # thread ended meanwhile
            continue
        try:
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
        if data:
            pids.extend(int(p) for p in data.split())
    return {pid: _start_time(pid) for pid in pids}


def child_pids_portable() -> dict[int, int | None]:
    import psutil  # lazily: most runs never need it

    out: dict[int, int | None] = {}
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            out[child.pid] = int(child.create_time() * 100)
    return out


class ProcessProbe(Probe):
    """A session that keeps children pays for listing them (a file per thread, one per child)
    only when something may have changed: the pid namespace's last pid did not move since the
    last listing (no new child, nor a new one on a reused pid) and every child listed then
    still exists (``kill(pid, 0)``: an exited child that nobody reaped yet still does), so
    the listing stands. On a busy machine the last pid moves often, and those snapshots list
    as before."""

    kind = "processes"

    def __init__(self, ignore_cmdlines: Iterable[str] = ()) -> None:
        self._ignore = DEFAULT_IGNORED_CMDLINES + tuple(ignore_cmdlines)
        self._read = child_pids if _has_children_files() else child_pids_portable
        self._last_pid: int | None = None
        with contextlib.suppress(OSError):
            self._last_pid = os.open(LAST_PID, os.O_RDONLY | os.O_CLOEXEC)
        #: The last listing, and the last pid when it began (b"" for none).
        self._last: dict[int, int | None] = {}
        self._generation = b""

    def close(self) -> None:
        if self._last_pid is not None:
            os.close(self._last_pid)
            self._last_pid = None

    def count(self, snap: dict[int, int | None]) -> int:
        return len(snap)

    def snapshot(self) -> dict[int, int | None]:
        if not has_children():
            if self._last:  # the same empty snapshot again: comparing it is an identity check
                self._last, self._generation = {}, b""
            return self._last
        generation = os.pread(self._last_pid, 32, 0) if self._last_pid is not None else b""
        if generation and generation == self._generation and _all_exist(self._last):
            return self._last
        # Read before listing: a child started meanwhile moves it, and the next one lists.
        self._last, self._generation = self._read(), generation
        return self._last

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        assert isinstance(key, int)
        line = " ".join(_cmdline(key))
        return any(fnmatch.fnmatchcase(line, pat) for pat in self._ignore)

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        import psutil  # lazily: most runs never need it

        assert isinstance(key, int)
        cmd = _cmdline(key)
        status: str
        try:
            status = psutil.Process(key).status()
        except psutil.Error:
            status = "gone"
        if status == psutil.STATUS_ZOMBIE:
            status = "zombie: exited but never waited for"
        exe = os.path.basename(cmd[0]) if cmd else "?"
        return Leak(
            self.kind,
            f"pid {key} ({shlex.join([exe, *cmd[1:]])})",
            f"command: {shlex.join(cmd) or '?'}\nstatus: {status}",
            signature=f"processes:{exe}",
            brief=f"status: {status}",
        )

    def cleanup(self, keys: list[Hashable], before: object) -> None:
        import psutil  # lazily: most runs never need it

        for pid in keys:
            assert isinstance(pid, int)
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                proc.kill()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _all_exist(pids: Iterable[int]) -> bool:
    try:
        # map() calls kill() from C: a fraction of a Python loop's cost per child.
        list(map(os.kill, pids, itertools.repeat(0)))
    except OSError:  # gone (reaped), or no longer ours to signal: list again
        return False
    return True


def _cmdline(pid: int) -> list[str]:
    import psutil  # lazily: most runs never need it

    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
