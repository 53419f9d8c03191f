from __future__ import annotations

import json

import pytest
from pytester_run import Run

SUITE = """
import asyncio, socket, subprocess, sys, threading
import pytest
STOP = threading.Event()
KEEP = []

def start_worker():
    threading.Thread(target=STOP.wait, name="traced", daemon=True).start()  # THREAD

def test_thread():
    start_worker()  # THREAD-CALLER

def test_socket():
    KEEP.append(socket.socket())  # SOCKET

def test_file(tmp_path):
    (tmp_path / "x").write_text("")
    open(tmp_path / "x").close()
    KEEP.append(open(tmp_path / "x"))  # FILE

def test_process():
    KEEP.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))  # PROCESS

async def forever():
    await asyncio.Event().wait()

@pytest.mark.asyncio
async def test_task():
    asyncio.get_running_loop().create_task(forever())  # TASK

def test_nothing_installed_when_off():
    assert threading.Thread.start.__module__ == "threading"
    assert sys.get_coroutine_origin_tracking_depth() == 0
"""


def line_of(marker: str) -> int:
    lines = SUITE.strip("\n").splitlines()  # as pytester writes it
    return next(n for n, line in enumerate(lines, 1) if line.endswith(f"# {marker}"))


def site(marker: str, function: str) -> str:
    return f"test_it.py:{line_of(marker)} in {function}"


def assert_sites(result: pytest.RunResult, prefix: str, *sites: str) -> None:
    """Each ``prefix`` + site ends an output line: paths are relative to the rootdir."""
    for expected in sites:
        assert any(line.endswith(prefix + expected) for line in result.outlines), (
            f"{prefix}{expected} not in output:\n{result.stdout}"
        )


def test_each_leak_names_the_line_that_created_it(run: Run) -> None:
    # Strict mode's cleanup kills and reaps the sleeping child.
    result = run(SUITE, "--resource-trace", "--resource-strict", "--resource-report=r.json",
                 "-k", "not nothing_installed")  # fmt: skip
    result.assert_outcomes(passed=5, errors=5)
    assert_sites(
        result,
        "created at ",
        site("THREAD", "start_worker"),
        site("SOCKET", "test_socket"),
        site("FILE", "test_file"),
        site("PROCESS", "test_process"),
        site("TASK", "test_task"),
    )
    assert_sites(result, "called from ", site("THREAD-CALLER", "test_thread"))
    tests = {
        t["nodeid"].split("::")[1]: t
        for t in json.loads((run.pytester.path / "r.json").read_text())["tests"]
    }
    [leak] = tests["test_thread"]["leaks"]
    assert [(f["file"].rsplit("/", 1)[1], f["line"], f["function"]) for f in leak["created"]] == [
        ("test_it.py", line_of("THREAD-CALLER"), "test_thread"),
        ("test_it.py", line_of("THREAD"), "start_worker"),
    ]
    assert json.loads((run.pytester.path / "r.json").read_text())["session"]["trace"] is True


def test_without_the_option_nothing_is_installed_and_no_site_is_shown(run: Run) -> None:
    result = run(SUITE, "-k", "thread or nothing_installed")
    result.assert_outcomes(passed=2, warnings=1)
    assert "created at " not in result.stdout.str()


def test_ini_turns_tracing_on(run: Run) -> None:
    result = run(SUITE, "-k", "test_thread", ini="resource_trace = true\n")
    assert_sites(result, "created at ", site("THREAD", "start_worker"))


def test_xdist_workers_trace_too(run: Run) -> None:
    result = run(SUITE, "--resource-trace", "-n", "2", "-k", "thread or socket")
    result.assert_outcomes(passed=2, warnings=2)
    assert_sites(
        result, "created at ", site("THREAD", "start_worker"), site("SOCKET", "test_socket")
    )
