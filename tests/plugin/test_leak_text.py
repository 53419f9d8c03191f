"""How leaks read: once where people look, named in one line, without raw noise unless -v."""

from __future__ import annotations

import re

import pytest
from pytester_run import Run, assert_lines

LEAKS = """
import asyncio, socket, threading
import pytest
STOP = threading.Event()
KEPT = []

def park():
    STOP.wait()  # PARK

def test_thread_and_socket():
    threading.Thread(target=park, name="forgotten-worker", daemon=True).start()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    KEPT.append(server)

async def poll():
    while True:
        await asyncio.sleep(1)  # POLL

@pytest.mark.asyncio
async def test_task():
    KEPT.append(asyncio.get_running_loop().create_task(poll()))
"""
SOCKET = re.compile(r"fd \d+ \(socket 127\.0\.0\.1:\d+ LISTEN\)")


def line_of(marker: str) -> int:
    lines = LEAKS.strip("\n").splitlines()  # as pytester writes it
    return next(n for n, line in enumerate(lines, 1) if line.endswith(f"# {marker}"))


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal wide enough that pytest does not cut the short test summary's lines."""
    monkeypatch.setenv("COLUMNS", "300")


@pytest.mark.usefixtures("wide")
def test_strict_error_names_the_leaks_in_one_line_and_lists_them_once(run: Run) -> None:
    result = run(LEAKS, "--resource-strict", "--junitxml=junit.xml", "-k", "thread")
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    [summary] = [line for line in result.outlines if line.startswith("ERROR test_it.py")]
    assert re.fullmatch(
        r"ERROR test_it\.py::test_thread_and_socket - leaked thread 'forgotten-worker', "
        + SOCKET.pattern,
        summary,
    ), summary
    # The error lists each leak; the section at the end only points at it.
    assert out.count("threads: thread 'forgotten-worker'") == 1
    assert len(re.findall("fds: " + SOCKET.pattern, out)) == 1
    assert_lines(result, "1 test(s) leaked resources (strict: these tests error; their leaks")
    junit = (run.pytester.path / "junit.xml").read_text()
    assert "message=\"failed on teardown with &quot;leaked thread 'forgotten-worker', fd" in junit


def test_warn_mode_lists_the_leaks_once_and_the_warning_names_them(run: Run) -> None:
    result = run(LEAKS, "-k", "thread")
    result.assert_outcomes(passed=1, warnings=1)
    out = result.stdout.str()
    [warning] = [line for line in result.outlines if "ResourceLeakWarning" in line]
    assert warning.endswith(" (details under 'resource leaks' below)")
    assert "ResourceLeakWarning: leaked thread 'forgotten-worker', fd " in warning
    assert out.count("threads: thread 'forgotten-worker'") == 1
    section = out.split("= resource leaks =")[1]
    assert "threads: thread 'forgotten-worker'" in section
    assert SOCKET.search(section)


def test_raw_details_and_library_frames_only_with_verbose(run: Run) -> None:
    result = run(LEAKS)
    result.assert_outcomes(passed=2, warnings=2)
    out = result.stdout.str()
    assert "ident:" not in out
    assert "socket:[" not in out
    assert "AF_INET" not in out
    assert "asyncio/tasks.py" not in out
    # The user's frames, relative to the rootdir.
    assert_lines(
        result,
        "    target: test_it.park, daemon: True",
        f"    test_it.py:{line_of('PARK')} in park",
        f"    test_it.py:{line_of('POLL')} in poll",
    )
    assert str(run.pytester.path) not in out.split("= resource leaks =")[1]

    verbose = run(LEAKS, "-v")
    out = verbose.stdout.str()
    assert re.search(r"target: test_it\.park, daemon: True, ident: \d+", out)
    assert re.search(r"AF_INET SOCK_STREAM, socket:\[\d+\]", out)
    assert "asyncio/tasks.py" in out
    assert_lines(verbose, f"    test_it.py:{line_of('POLL')} in poll")


def test_without_tracing_one_line_says_how_to_see_where_leaks_were_created(run: Run) -> None:
    untraced = run(LEAKS, "--resource-strict", "-k", "thread")
    assert_lines(untraced, "created at: not recorded; run again with --resource-trace")
    traced = run(LEAKS, "--resource-strict", "-k", "thread", "--resource-trace")
    assert "created at: not recorded" not in traced.stdout.str()
    assert_lines(traced, "created at test_it.py:")
