"""``ProcessSupervisor``: a child process in its own process group, stopped as a group
(SIGTERM, a deadline, then SIGKILL) and always reaped."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, TypeVar

__all__ = [
    "ProcessExit",
    "ProcessStopError",
    "ProcessSupervisor",
    "ProcessSupervisorError",
]

R = TypeVar("R")
StrPath = str | os.PathLike[str]
File = int | IO[Any] | None

DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_KILL_TIMEOUT = 5.0
# Waiting polls waitpid with a doubling delay, as subprocess.Popen.wait(timeout) does: it needs
# no helper thread, no extra descriptor and no child watcher.
_FIRST_POLL = 0.0005
_MAX_POLL = 0.05
# A finalizer may not block for long; SIGKILL normally takes effect in microseconds.
_FINALIZER_REAP_TIMEOUT = 1.0


class ProcessSupervisorError(RuntimeError):
    """The supervisor was used out of order (started twice, stopped before it started)."""


class ProcessStopError(TimeoutError):
    """Members of the process group were still alive ``kill_timeout`` seconds after
    ``kill_signal`` (a process stuck in the kernel, or a ``kill_signal`` it can ignore).

    The supervisor stays stoppable: a later ``stop()`` sends ``kill_signal`` again and waits.
    """


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """How a supervised process ended.

    ``exit_code`` is set when it exited, ``signal`` when a signal ended it (exactly one of
    the two is set). ``stopped`` says the supervisor asked it to stop (it had not exited by
    itself), ``escalated`` that the group had to be sent ``kill_signal`` (SIGKILL) because
    ``term_signal`` did not end it in time, ``duration`` the seconds from start to reaped.
    """

    pid: int
    exit_code: int | None
    signal: signal.Signals | None
    stopped: bool
    escalated: bool
    duration: float

    @property
    def returncode(self) -> int:
        """As ``subprocess.Popen.returncode``: the exit code, or minus the signal number."""
        return -self.signal if self.signal is not None else (self.exit_code or 0)


class ProcessSupervisor:
    """Start a command in a new process group; stop the whole group and reap the child.

    ``stop(timeout)`` sends ``term_signal`` (SIGTERM) to the group, waits until no member is
    alive, sends ``kill_signal`` (SIGKILL) to the group if the deadline passes, and reaps the
    child. Members
    other than the child (its own children) are reaped by whichever process adopts them;
    the supervisor waits until none is alive. ``stop`` is idempotent and thread-safe: every
    caller, sync or async, waits for the same end and gets the same ``ProcessExit``.

    >>> with ProcessSupervisor(["sleep", "60"]) as proc:
    ...     pass
    >>> proc.exit.signal
    <Signals.SIGTERM: 15>
    """

    def __init__(
        self,
        args: Sequence[StrPath],
        *,
        stdin: File = None,
        stdout: File = None,
        stderr: File = None,
        env: Mapping[str, str] | None = None,
        cwd: StrPath | None = None,
        pass_fds: Collection[int] = (),
        term_signal: signal.Signals = signal.SIGTERM,
        kill_signal: signal.Signals = signal.SIGKILL,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        kill_timeout: float = DEFAULT_KILL_TIMEOUT,
    ) -> None:
        self._popen: subprocess.Popen[bytes] | None = None
        if not args:
            raise ValueError("args must name a program")
        if stop_timeout < 0 or kill_timeout < 0:
            raise ValueError("stop_timeout and kill_timeout must not be negative")
        self._args = [os.fspath(a) for a in args]
        self._popen_options: dict[str, Any] = {
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
            "env": env,
            "cwd": cwd,
            "pass_fds": tuple(pass_fds),
        }
        self.term_signal = term_signal
        self.kill_signal = kill_signal
        self.stop_timeout = stop_timeout
        self.kill_timeout = kill_timeout
        self._lock = threading.Lock()
        self._started_at = 0.0
        self._term_deadline: float | None = None
        self._kill_deadline: float | None = None
        self._stopped = False
        self._escalated = False
        self._exit: ProcessExit | None = None

    # --- state

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The child's ``Popen`` (for its pipes); raises before ``start()``."""
        if self._popen is None:
            raise ProcessSupervisorError(f"{self!r} was not started")
        return self._popen

    @property
    def pid(self) -> int:
        """The child's pid, which is also the process group id."""
        return self.process.pid

    @property
    def started(self) -> bool:
        return self._popen is not None

    @property
    def running(self) -> bool:
        """The child has not exited (its own children are not considered)."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def exit(self) -> ProcessExit | None:
        """How it ended, once ``stop()`` or ``wait()`` has reaped it; else ``None``."""
        return self._exit

    def __repr__(self) -> str:
        command = " ".join(shlex.join(self._args).split())  # one line, even for scripts
        if len(command) > 60:
            command = command[:57] + "..."
        if self._popen is None:
            state = "not started"
        elif self._exit is not None:
            state = f"pid={self._popen.pid} ended"
        else:
            state = f"pid={self._popen.pid} running"
        return f"<ProcessSupervisor {state}: {command}>"

    # --- lifecycle

    def start(self) -> ProcessSupervisor:
        """Start the child in a new process group and return ``self``."""
        with self._lock:
            if self._popen is not None:
                raise ProcessSupervisorError(f"{self!r} was already started")
            self._started_at = time.monotonic()
            self._popen = subprocess.Popen(self._args, process_group=0, **self._popen_options)
        return self

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to every process in the group (nothing once it has been reaped)."""
        popen = self.process
        with self._lock:
            if self._exit is None:
                _signal_group(popen.pid, sig)

    def stop(self, timeout: float | None = None) -> ProcessExit:
        """Stop the group: ``term_signal``, up to ``timeout`` seconds (default
        ``stop_timeout``), ``kill_signal``, up to ``kill_timeout`` seconds; reap and report.

        Raises ``ProcessStopError`` if a member outlives ``kill_signal``.
        """
        return _run(self._stop_steps(timeout))

    async def astop(self, timeout: float | None = None) -> ProcessExit:
        """``stop()`` without blocking the event loop."""
        return await _arun(self._stop_steps(timeout))

    def wait(self, timeout: float | None = None) -> ProcessExit:
        """Wait up to ``timeout`` seconds (``None``: forever) for the child to exit by itself,
        then stop what is left of its group and reap it. Raises ``TimeoutError`` if it is
        still running; it is left running."""
        return _run(self._wait_steps(timeout))

    async def await_exit(self, timeout: float | None = None) -> ProcessExit:
        """``wait()`` without blocking the event loop."""
        return await _arun(self._wait_steps(timeout))

    def __enter__(self) -> ProcessSupervisor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ProcessSupervisor:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        popen = self._popen
        if popen is None or self._exit is not None or popen.poll() is not None:
            return
        _warn(
            f"{self!r} was garbage-collected while its process still runs; "
            "the group was sent SIGKILL",
            ResourceWarning,
            source=self,
        )
        _signal_group(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(_FINALIZER_REAP_TIMEOUT)
        _close_pipes(popen)

    # --- the stop and wait procedures, as steps that yield how long to sleep, so that one
    # procedure serves both the blocking and the asyncio callers

    def _stop_steps(self, timeout: float | None) -> Generator[float, None, ProcessExit]:
        popen = self.process
        with self._lock:
            if self._exit is not None:
                return self._exit
            deadline = time.monotonic() + (self.stop_timeout if timeout is None else timeout)
            if self._term_deadline is None:
                self._stopped = popen.poll() is None
                _signal_group(popen.pid, self.term_signal)
                self._term_deadline = deadline
            else:  # a later caller in a hurry may shorten the wait, never lengthen it
                self._term_deadline = min(self._term_deadline, deadline)
        if not (yield from _poll(self._group_gone, lambda: self._term_deadline)):
            with self._lock:
                if self._kill_deadline is None and not self._group_gone():
                    self._escalated = True
                    self._kill_deadline = time.monotonic() + self.kill_timeout
                    _signal_group(popen.pid, self.kill_signal)
            yield from _poll(self._group_gone, lambda: self._kill_deadline)
        return self._finish(popen)

    def _wait_steps(self, timeout: float | None) -> Generator[float, None, ProcessExit]:
        popen = self.process
        deadline = None if timeout is None else time.monotonic() + timeout
        if not (yield from _poll(lambda: popen.poll() is not None, lambda: deadline)):
            raise TimeoutError(f"{self!r} still runs after {timeout} s")
        return (yield from self._stop_steps(None))

    def _group_gone(self) -> bool:
        popen = self._popen
        assert popen is not None
        if popen.poll() is None:
            return False
        # The child is reaped; its group id cannot be reused while any member exists.
        try:
            os.killpg(popen.pid, 0)
        except ProcessLookupError:
            return True
        return not _live_members(popen.pid)

    def _finish(self, popen: subprocess.Popen[bytes]) -> ProcessExit:
        with self._lock:
            if self._exit is not None:
                return self._exit
            if not self._group_gone():
                self._kill_deadline = None  # the next stop() escalates again
                raise ProcessStopError(
                    f"{self!r}: process group {popen.pid} still has live members "
                    f"{self.kill_timeout} s after {self.kill_signal.name}"
                )
            _close_pipes(popen)
            code = popen.returncode
            self._exit = ProcessExit(
                pid=popen.pid,
                exit_code=code if code >= 0 else None,
                signal=signal.Signals(-code) if code < 0 else None,
                stopped=self._stopped,
                escalated=self._escalated,
                duration=time.monotonic() - self._started_at,
            )
            return self._exit


def _poll(
    done: Callable[[], bool], deadline: Callable[[], float | None]
) -> Generator[float, None, bool]:
    """Yield sleeps until ``done()`` or the (re-read, so shortenable) deadline; say which."""
    delay = _FIRST_POLL
    while not done():
        until = deadline()
        remaining = math.inf if until is None else until - time.monotonic()
        if remaining <= 0:
            return False
        yield min(delay, remaining)
        delay = min(delay * 2, _MAX_POLL)
    return True


def _run(steps: Generator[float, None, R]) -> R:
    while True:
        try:
            delay = next(steps)
        except StopIteration as end:
            return end.value  # type: ignore[no-any-return]
        time.sleep(delay)


async def _arun(steps: Generator[float, None, R]) -> R:
    while True:
        try:
            delay = next(steps)
        except StopIteration as end:
            return end.value  # type: ignore[no-any-return]
        await asyncio.sleep(delay)


def _signal_group(pgid: int, sig: int) -> None:
    # Only called while the child is unreaped or the group has members, so `pgid` is ours.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _live_members(pgid: int) -> bool:
    """Whether a member of the group is alive; zombies do not count, since adopted orphans
    are reaped by whoever adopted them (and some container inits never do)."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except FileNotFoundError:  # no /proc: a member that answers killpg counts as alive
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:  # ended meanwhile
            continue
        # After the command name: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _close_pipes(popen: subprocess.Popen[bytes]) -> None:
    for stream in (popen.stdin, popen.stdout, popen.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):  # stdin's flush to a dead reader
                stream.close()
