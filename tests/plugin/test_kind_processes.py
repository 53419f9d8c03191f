from __future__ import annotations

from pytester_run import Run


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
