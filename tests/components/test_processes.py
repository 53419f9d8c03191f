from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import psutil
import pytest
from pytester_run import Run

from pytest_resources.components.processes import (
    ProcessExit,
    ProcessStopError,
    ProcessSupervisor,
    ProcessSupervisorError,
)

# Every child says "ready" on stdout once its signal handling is in place, so a test never
# signals a process that is still starting up.
PAUSE = "import signal; print('ready', flush=True); signal.pause()"
EXIT_7_ON_TERM = (
    "import signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
    "print('ready', flush=True)\n"
    "signal.pause()"
)
IGNORE_TERM = (
    "import signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGUSR2, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "while True: signal.pause()"
)
# The handler writes with os.write: a print() from a signal handler can land inside the
# main code's print() and die with "reentrant call inside BufferedWriter".
ECHO_USR1 = (
    "import os, signal\n"
    "signal.signal(signal.SIGUSR1, lambda *_: os.write(1, b'usr1\\n'))\n"
    "print('ready', flush=True)\n"
    "while True: signal.pause()"
)
# The child starts a grandchild (same process group) that ignores SIGTERM, prints its pid,
# then either waits for a signal or exits at once, leaving the grandchild behind.
WITH_GRANDCHILD = (
    "import subprocess, sys, signal\n"
    f"gc = subprocess.Popen([sys.executable, '-c', {IGNORE_TERM!r}], stdout=subprocess.PIPE)\n"
    "gc.stdout.readline()\n"
    "print('ready', gc.pid, sep='\\n', flush=True)\n"
    "if sys.argv[1] == 'stay': signal.pause()"
)
DEFAULT_BOUND = 60.0  # far above any real duration; only catches a hang


def python(
    script: str, *args: str, stop_timeout: float = 5.0, kill_timeout: float = 5.0
) -> ProcessSupervisor:
    """A started supervisor of ``python -c script``, once the script reported readiness."""
    sup = ProcessSupervisor(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stop_timeout=stop_timeout,
        kill_timeout=kill_timeout,
    ).start()
    assert read_line(sup) == "ready"
    return sup


def read_line(sup: ProcessSupervisor) -> str:
    stdout = sup.process.stdout
    assert stdout is not None
    return stdout.readline().decode().strip()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- stop


def test_stop_ends_the_child_with_sigterm_and_reports_it() -> None:
    sup = python(PAUSE)
    assert sup.running
    result = sup.stop()
    assert result == ProcessExit(
        pid=sup.pid,
        exit_code=None,
        signal=signal.SIGTERM,
        stopped=True,
        escalated=False,
        duration=result.duration,
    )
    assert result.returncode == -signal.SIGTERM
    assert 0 < result.duration < DEFAULT_BOUND
    assert sup.exit is result
    assert not sup.running
    assert sup.process.stdout is not None
    assert sup.process.stdout.closed
    with pytest.raises(ChildProcessError):
        os.waitpid(sup.pid, os.WNOHANG)  # already reaped


def test_a_child_that_handles_sigterm_reports_its_exit_code() -> None:
    result = python(EXIT_7_ON_TERM).stop()
    assert (result.exit_code, result.signal, result.returncode) == (7, None, 7)
    assert result.stopped
    assert not result.escalated


def test_a_child_ignoring_sigterm_is_killed_when_the_timeout_passes() -> None:
    sup = python(IGNORE_TERM)
    started = time.monotonic()
    result = sup.stop(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    assert result.signal is signal.SIGKILL
    assert result.escalated
    assert result.stopped


def test_grandchildren_in_the_group_are_stopped_too() -> None:
    sup = python(WITH_GRANDCHILD, "stay", stop_timeout=0.2)
    grandchild = int(read_line(sup))
    assert alive(grandchild)
    result = sup.stop()
    assert result.signal is signal.SIGTERM, "the child itself obeyed SIGTERM"
    assert result.escalated, "the grandchild ignored SIGTERM, so the group got SIGKILL"
    assert not alive(grandchild)


def test_stop_is_idempotent() -> None:
    sup = python(PAUSE)
    first = sup.stop()
    assert sup.stop() is first
    assert sup.stop(timeout=0) is first


def test_concurrent_stops_from_threads_share_one_end() -> None:
    sup = python(IGNORE_TERM, stop_timeout=0.2)
    barrier = threading.Barrier(4)
    results: list[ProcessExit] = []

    def stop() -> None:
        barrier.wait()
        results.append(sup.stop())

    threads = [threading.Thread(target=stop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(r is results[0] for r in results)
    assert results[0].escalated


def test_a_later_caller_may_shorten_the_deadline_but_not_lengthen_it() -> None:
    sup = python(IGNORE_TERM)
    slow = threading.Thread(target=sup.stop, kwargs={"timeout": 600})
    slow.start()
    started = time.monotonic()
    result = sup.stop(timeout=0)
    slow.join()
    assert result.escalated
    assert time.monotonic() - started < DEFAULT_BOUND


def test_stop_after_the_child_exited_by_itself() -> None:
    sup = ProcessSupervisor([sys.executable, "-c", "raise SystemExit(4)"]).start()
    sup.process.wait()
    result = sup.stop()
    assert (result.exit_code, result.stopped, result.escalated) == (4, False, False)


def test_kill_signal_that_is_ignored_raises_and_leaves_the_supervisor_stoppable() -> None:
    sup = python(IGNORE_TERM, stop_timeout=0, kill_timeout=0.1)
    sup.kill_signal = signal.SIGUSR2
    with pytest.raises(ProcessStopError, match=r"still has live members 0\.1 s after SIGUSR2"):
        sup.stop()
    assert sup.exit is None
    assert sup.running
    sup.kill_signal = signal.SIGKILL
    result = sup.stop()
    assert result.signal is signal.SIGKILL
    assert result.escalated


# --- wait


def test_wait_returns_when_the_child_exits_by_itself() -> None:
    sup = ProcessSupervisor([sys.executable, "-c", "raise SystemExit(3)"]).start()
    result = sup.wait()
    assert (result.exit_code, result.signal) == (3, None)
    assert not result.stopped
    assert not result.escalated
    assert sup.wait() is result


def test_wait_times_out_and_leaves_the_child_running() -> None:
    sup = python(PAUSE)
    with pytest.raises(TimeoutError, match=r"still runs after 0\.05 s"):
        sup.wait(timeout=0.05)
    assert sup.running
    assert sup.exit is None
    assert sup.stop().signal is signal.SIGTERM


def test_wait_stops_what_the_child_left_behind_in_its_group() -> None:
    sup = python(WITH_GRANDCHILD, "leave", stop_timeout=0.1)
    grandchild = int(read_line(sup))
    result = sup.wait()
    assert result.exit_code == 0
    assert not result.stopped
    assert result.escalated, "the grandchild ignored SIGTERM"
    assert not alive(grandchild)


# --- signals, state, misuse


def test_send_signal_reaches_the_group() -> None:
    sup = python(ECHO_USR1)
    sup.send_signal(signal.SIGUSR1)
    assert read_line(sup) == "usr1"
    sup.stop()
    sup.send_signal(signal.SIGUSR1)  # after the end: nothing to signal, no error


def test_misuse_raises_named_errors() -> None:
    sup = ProcessSupervisor(["true"])
    assert not sup.started
    assert repr(sup) == "<ProcessSupervisor not started: true>"
    with pytest.raises(ProcessSupervisorError, match="was not started"):
        sup.stop()
    with pytest.raises(ProcessSupervisorError, match="was not started"):
        _ = sup.pid
    sup.start()
    with pytest.raises(ProcessSupervisorError, match="was already started"):
        sup.start()
    assert sup.wait().exit_code == 0
    assert repr(sup) == f"<ProcessSupervisor pid={sup.pid} ended: true>"


@pytest.mark.parametrize(
    ("args", "stop_timeout", "kill_timeout", "message"),
    [
        ([], 1.0, 1.0, "args must name a program"),
        (["true"], -1.0, 1.0, "must not be negative"),
        (["true"], 1.0, -1.0, "must not be negative"),
    ],
)
def test_bad_arguments(
    args: list[str], stop_timeout: float, kill_timeout: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ProcessSupervisor(args, stop_timeout=stop_timeout, kill_timeout=kill_timeout)


def test_a_program_that_cannot_start_leaves_the_supervisor_unstarted() -> None:
    sup = ProcessSupervisor(["/nonexistent/program"])
    with pytest.raises(FileNotFoundError):
        sup.start()
    assert not sup.started


def test_the_child_leads_its_own_process_group() -> None:
    sup = python(PAUSE)
    assert os.getpgid(sup.pid) == sup.pid != os.getpgid(0)
    assert os.getsid(sup.pid) == os.getsid(0), "same session, so it can still be a test helper"
    sup.stop()


def test_the_exit_record_is_frozen() -> None:
    result = python(PAUSE).stop()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.escalated = True  # type: ignore[misc]


def test_repr_names_the_pid_and_command_on_one_line() -> None:
    sup = python(IGNORE_TERM)
    assert repr(sup).startswith(f"<ProcessSupervisor pid={sup.pid} running: ")
    assert repr(sup).endswith("...>"), "a long command is cut"
    assert "\n" not in repr(sup), "a script is shown on one line"
    sup.stop(timeout=0)


# --- context managers


def test_context_manager_starts_and_stops_even_when_the_body_fails() -> None:
    sup = ProcessSupervisor([sys.executable, "-c", PAUSE], stdout=subprocess.PIPE)

    def body() -> None:
        with sup:
            assert read_line(sup) == "ready"
            raise KeyError("body error")

    with pytest.raises(KeyError):
        body()
    assert sup.exit is not None
    assert sup.exit.signal is signal.SIGTERM


# --- asyncio


@pytest.mark.asyncio
async def test_astop_escalates_without_blocking_the_loop() -> None:
    sup = python(IGNORE_TERM)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    result = await sup.astop(timeout=0.1)
    ticker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticker
    assert result.escalated
    assert ticks > 1, "the loop kept running other tasks while astop waited"


@pytest.mark.asyncio
async def test_concurrent_astops_share_one_end() -> None:
    sup = python(IGNORE_TERM, stop_timeout=0.1)
    results = await asyncio.gather(*(sup.astop() for _ in range(5)), asyncio.to_thread(sup.stop))
    assert all(r is results[0] for r in results)


@pytest.mark.asyncio
async def test_a_cancelled_astop_can_be_finished_later() -> None:
    sup = python(IGNORE_TERM)
    task = asyncio.create_task(sup.astop(timeout=600))
    await asyncio.sleep(0)  # the first step sends SIGTERM and starts waiting
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sup.running
    result = await sup.astop(timeout=0)
    assert result.escalated


@pytest.mark.asyncio
async def test_await_exit() -> None:
    sup = ProcessSupervisor([sys.executable, "-c", "raise SystemExit(5)"]).start()
    assert (await sup.await_exit()).exit_code == 5
    running = python(PAUSE)
    with pytest.raises(TimeoutError):
        await running.await_exit(timeout=0.01)
    await running.astop()


@pytest.mark.asyncio
async def test_async_context_manager() -> None:
    async with ProcessSupervisor([sys.executable, "-c", PAUSE], stdout=subprocess.PIPE) as sup:
        assert read_line(sup) == "ready"
    assert sup.exit is not None
    assert sup.exit.signal is signal.SIGTERM


# --- garbage collection


def test_a_collected_running_supervisor_warns_naming_itself_and_kills_its_group() -> None:
    sup = python(PAUSE)
    pid = sup.pid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del sup
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(messages) == 1
    assert messages[0].startswith(f"<ProcessSupervisor pid={pid} running: ")
    assert "garbage-collected while its process still runs" in messages[0]
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped by the finalizer


def test_a_collected_finished_supervisor_is_silent() -> None:
    sup = python(PAUSE)
    sup.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del sup
        gc.collect()


# --- the process_supervisor fixture (in a pytester run of its own)

FIXTURE_TESTS = f"""
import signal, subprocess, sys
PAUSE = {PAUSE!r}
IGNORE_TERM = {IGNORE_TERM!r}

def started(process_supervisor, script, **options):
    sup = process_supervisor([sys.executable, "-c", script], stdout=subprocess.PIPE, **options)
    assert sup.process.stdout.readline() == b"ready\\n"
    return sup

def test_left_running(process_supervisor):
    sup = started(process_supervisor, PAUSE)
    assert sup.running
    print("pid", sup.pid)

def test_already_exited(process_supervisor):
    process_supervisor([sys.executable, "-c", "pass"]).process.wait()

def test_stopped_by_the_test(process_supervisor):
    assert started(process_supervisor, IGNORE_TERM).stop(timeout=0).escalated

def test_ignores_sigterm(process_supervisor):
    started(process_supervisor, IGNORE_TERM, stop_timeout=0.1)

def test_survives_the_kill_signal(process_supervisor):
    sup = started(
        process_supervisor, IGNORE_TERM, stop_timeout=0, kill_timeout=0.1,
        kill_signal=signal.SIGUSR2,
    )
    print("survivor", sup.pid)
"""


def test_fixture_stops_what_the_test_left_and_fails_when_it_had_to_kill(run: Run) -> None:
    result = run(FIXTURE_TESTS, "--resource-strict", "-s")
    survivor = int(result.stdout.str().split("survivor ")[1].split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(survivor, signal.SIGKILL)  # the inner run's plugin should have done it
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_ignores_sigterm*",
            "*process_supervisor had to kill at teardown:",
            "<ProcessSupervisor pid=* ended: *> outlived SIGTERM for 0.1 s and was sent SIGKILL",
            "*ERROR at teardown of test_survives_the_kill_signal*",
            "*process_supervisor had to kill at teardown:",
            "<ProcessSupervisor pid=* running: *>: process group * still has live members "
            "0.1 s after SIGUSR2",
        ]
    )
    result.stdout.no_fnmatch_line("*test_left_running leaked*")
