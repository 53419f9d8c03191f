from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pytester_run import Run

from pytest_resources.detector.probes import processes


def test_running_child_is_reported_with_cmdline_and_killed_in_strict_mode(run: Run) -> None:
    result = run(
        """
import os, subprocess, sys
import pytest
KEPT = []

def test_leaks():
    KEPT.append(subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE))

def test_cleaned_up():
    # Strict mode killed and reaped the leaked child after reporting it: the pid is gone.
    proc = KEPT[0]
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    proc.stdin.close()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*processes: pid * (python* -c 'import sys; sys.stdin.read()')"])


def test_zombie_is_a_leak_until_reaped(run: Run) -> None:
    result = run(
        """
import os, subprocess
KEPT = []

def test_never_waits():
    proc = subprocess.Popen(["true"])
    # Block until the child has exited, without reaping it.
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    KEPT.append(proc)
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*processes: pid *", "*status: zombie: exited but never waited for*"]
    )


def test_waited_children_are_clean(run: Run) -> None:
    result = run(
        """
import subprocess, sys, multiprocessing

def test_run():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

def test_popen_waited():
    with subprocess.Popen(["true"]) as proc:
        proc.wait()

def square(x):
    return x * x

def test_pool():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.map(square, [3]) == [9]
    pool.join()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3)


def test_ignore_processes_ini(run: Run) -> None:
    result = run(
        """
import subprocess
KEPT = []

def test_leaks():
    KEPT.append(subprocess.Popen(["sleep", "30"]))

def test_stop():
    KEPT[0].kill()
    KEPT[0].wait()
""",
        "--resource-strict",
        ini="resource_ignore_processes = sleep *\n",
    )
    result.assert_outcomes(passed=2)


def test_child_reaped_during_the_grace_is_clean_while_the_session_holds_children(
    run: Run,
) -> None:
    # No new pid appears while the grace runs, so only noticing that a listed child is gone
    # (reaped) clears the leak; the session's own child keeps the listing in use.
    result = run(
        """
import subprocess, threading
import pytest

@pytest.fixture(scope="session", autouse=True)
def worker():
    proc = subprocess.Popen(["sleep", "600"])
    yield
    proc.kill()
    proc.wait()

@pytest.mark.resources(grace=30)
def test_reaped_by_a_thread():
    proc = subprocess.Popen(["sleep", "0.2"])
    threading.Thread(target=proc.wait).start()

def test_next():
    pass
""",
        "--resource-strict",
        "--durations=0",
        "--durations-min=0",
    )
    result.assert_outcomes(passed=2)
    # Done once the child is reaped, long before the 30 s grace ends.
    teardown = [line for line in result.outlines if "teardown" in line and "test_reaped" in line]
    assert teardown, result.stdout
    assert float(teardown[0].split("s")[0]) < 20, result.stdout


def test_listing_stands_only_while_no_pid_is_new_and_every_child_still_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel's last pid moves whenever anything on the machine starts; a file standing
    # in for it makes "nothing new started" hold for as long as this test needs.
    counter = tmp_path / "ns_last_pid"
    counter.write_text("100\n")
    monkeypatch.setattr(processes, "LAST_PID", str(counter))
    probe = processes.ProcessProbe()
    kept = subprocess.Popen(["sleep", "600"])
    reaped = subprocess.Popen(["sleep", "600"])
    try:
        first = probe.snapshot()
        assert {kept.pid, reaped.pid} <= first.keys()
        assert probe.snapshot() is first  # nothing new, nothing gone: the listing stands
        reaped.kill()
        reaped.wait()
        after_reap = probe.snapshot()
        assert kept.pid in after_reap
        assert reaped.pid not in after_reap
        counter.write_text("200\n")  # a new pid, anywhere: list again
        assert probe.snapshot() is not after_reap
    finally:
        kept.kill()
        kept.wait()
        probe.close()
