"""Brokers run as detached local processes, so they can outlive the worker that started them.

The server runs in a new session and process group led by a short-lived shell that we reap at
once: it is nobody's child in the test process (no process leak is blamed on a test) and one
``killpg`` stops it with every helper it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Launch

if TYPE_CHECKING:
    import psutil

# Runs the server in the background with its output in a log file, prints its pid, exits.
DETACH = 'log=$1; shift; "$@" >"$log" 2>&1 </dev/null & echo $!'
LOG_TAIL = 600
#: Seconds between the shell starting and the broker (and its epmd) starting.
STARTED_SLACK = 2.0


@dataclass(frozen=True)
class Spawned:
    """A detached broker: its pid, its process group and when it started."""

    pid: int
    pgid: int
    started: float
    log: str


def spawn(launch: Launch, data_dir: Path) -> Spawned:
    import psutil  # on use: importing it costs every pytest start-up ~7 ms

    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "broker.log"
    shell = subprocess.Popen(
        ["/bin/sh", "-c", DETACH, "sh", str(log), *launch.argv],
        env={**os.environ, **launch.env},
        cwd=data_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    out, _ = shell.communicate(timeout=30)
    pid = int(out)
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        started = time.time()
    return Spawned(pid=pid, pgid=shell.pid, started=started, log=str(log))


def log_tail(spawned: Spawned) -> str:
    try:
        text = Path(spawned.log).read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL:].strip()


def _running(pid: int) -> bool:
    import psutil  # on use: importing it costs every pytest start-up ~7 ms

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def exit_reason(spawned: Spawned) -> str | None:
    """None while the broker runs; otherwise why it is gone, with the end of its log."""
    if _running(spawned.pid):
        return None
    return f"the server exited; its log ends with: {log_tail(spawned) or '(empty)'}"


def _is_broker(spawned: Spawned) -> bool:
    import psutil  # on use: importing it costs every pytest start-up ~7 ms

    try:
        proc = psutil.Process(spawned.pid)
        return (
            abs(proc.create_time() - spawned.started) < STARTED_SLACK
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return False


def _members(spawned: Spawned) -> list[psutil.Process]:
    import psutil  # on use: importing it costs every pytest start-up ~7 ms

    # While the broker runs, its group id cannot be handed out again, so every member is
    # ours. Once it is gone, a process in a group of that id is ours only if it started with
    # the broker (its epmd): later ones belong to a group whose id was recycled.
    broker_runs = _is_broker(spawned)
    out = []
    for proc in psutil.process_iter(["create_time", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) != spawned.pgid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            created = proc.info["create_time"]
            if (broker_runs and created >= spawned.started - STARTED_SLACK) or abs(
                created - spawned.started
            ) < STARTED_SLACK:
                out.append(proc)
    return out


def stop(spawned: Spawned, timeout: float = 15.0) -> None:
    """SIGTERM the whole group, SIGKILL what is left after ``timeout``; wait until gone."""
    import psutil  # on use: importing it costs every pytest start-up ~7 ms

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        members = _members(spawned)
        if not members:
            return
        for proc in members:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        deadline = time.monotonic() + wait
        # Not our children, so no wait(): poll until each is gone or a zombie.
        while any(_running(p.pid) for p in members) and time.monotonic() < deadline:
            time.sleep(0.05)
