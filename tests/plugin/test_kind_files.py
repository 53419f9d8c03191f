"""The ``files`` kind: files and directories a test left in the temp dir, the current
directory or the rootdir, and POSIX shared memory segments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytester_run import Run, assert_lines

from pytest_resources.detector.probes.files import FilesProbe

FILES = "--resource-checks=files"


@pytest.fixture
def temp_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The inner session's temp dir: its own, so what its tests leave is easy to find and
    goes away with pytester's directory."""
    path = pytester.path / "temp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    return path


def test_what_a_test_leaves_on_disk_is_reported(run: Run, temp_dir: Path) -> None:
    result = run(
        """
import os, tempfile
from multiprocessing import shared_memory

def test_mkstemp():
    fd, path = tempfile.mkstemp(prefix="leak-mkstemp-")
    os.write(fd, b"12345")
    os.close(fd)

def test_named_temporary_file():
    with tempfile.NamedTemporaryFile(prefix="leak-ntf-", delete=False) as f:
        f.write(b"x" * 2048)

def test_mkdtemp():
    path = tempfile.mkdtemp(prefix="leak-dir-")
    for name in "ab":
        with open(os.path.join(path, name), "w") as f:
            f.write("hi")

def test_file_in_cwd():
    with open("left-behind.txt", "w") as f:
        f.write("x")

def test_shared_memory():
    shm = shared_memory.SharedMemory(create=True, size=4096)
    shm.close()  # but never unlink()ed
""",
        FILES,
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=5, errors=5)
    assert_lines(
        result,
        f"files: file temp{os.sep}leak-mkstemp-",
        "(5 B)",
        f"files: file temp{os.sep}leak-ntf-",
        "(2.0 KiB)",
        f"files: directory temp{os.sep}leak-dir-",
        "(2 entries, 4 B)",
        "files: file left-behind.txt (1 B)",
        "files: shared memory segment /dev/shm/psm_",
        "(4.0 KiB)",
        "created in the temp dir and never removed: use tmp_path, or remove it",
        "never unlinked: unlink() it when done",
    )
    # Not removed in strict mode: nothing proves no other process uses them.
    assert len(list(temp_dir.iterdir())) == 3
    assert (result.stdout.str().count("ERROR at teardown")) == 5


def test_what_a_test_removes_or_puts_under_tmp_path_is_clean(run: Run, temp_dir: Path) -> None:
    result = run(
        """
import os, shutil, tempfile
from multiprocessing import shared_memory

def test_tmp_path(tmp_path, tmpdir):
    (tmp_path / "data.txt").write_text("kept by pytest")
    tmpdir.join("more.txt").write("kept too")

def test_removed():
    fd, path = tempfile.mkstemp()
    os.close(fd)
    os.unlink(path)
    shutil.rmtree(tempfile.mkdtemp())
    with tempfile.NamedTemporaryFile():
        pass
    with tempfile.TemporaryDirectory():
        pass
    with open("scratch.txt", "w"):
        pass
    os.remove("scratch.txt")

def test_shared_memory_unlinked():
    shm = shared_memory.SharedMemory(create=True, size=4096)
    shm.close()
    shm.unlink()

def test_replacing_a_file_that_was_there():
    with open("test_it.py", "a") as f:
        f.write("\\n")
""",
        FILES,
        "--resource-strict",
    )
    result.assert_outcomes(passed=4)
    assert list(temp_dir.iterdir()) == []


def test_a_session_fixtures_file_is_the_fixtures(run: Run, temp_dir: Path) -> None:
    result = run(
        """
import os, tempfile, pytest

@pytest.fixture(scope="session")
def cache_file():
    fd, path = tempfile.mkstemp(prefix="session-cache-")
    os.close(fd)
    yield path

def test_first(cache_file):
    pass

def test_second(cache_file):
    pass
""",
        FILES,
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    # Neither test made it: the fixture did, and never removed it, which its teardown (in
    # the last test's) reports as the fixture's.
    result.assert_outcomes(passed=2, errors=1)
    assert_lines(
        result,
        f"files: file temp{os.sep}session-cache-",
        "(owned by session-scoped fixture 'cache_file')",
    )
    assert "ERROR at teardown of test_first" not in result.stdout.str()


@pytest.mark.parametrize(
    ("header", "args"),
    [
        pytest.param("", (FILES,), id="inotify"),
        # Only a marker asks for files: the session opened no inotify descriptor, and the
        # probe watches the directories' mtimes.
        pytest.param(
            "import pytest\npytestmark = pytest.mark.resources(checks='files')\n", (), id="mtime"
        ),
    ],
)
def test_consecutive_tests_leaking_are_each_reported(
    run: Run, temp_dir: Path, header: str, args: tuple[str, ...]
) -> None:
    result = run(
        header
        + "\n".join(f"def test_{n}():\n    open('left-{n}.txt', 'w').close()\n" for n in range(6)),
        *args,
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=6)
    for n in range(6):
        assert_lines(result, f"test_it.py::test_{n}:", f"files: file left-{n}.txt (0 B)")


def test_trace_says_where_a_file_was_created(run: Run, temp_dir: Path) -> None:
    result = run(
        """
import tempfile

def make():
    return tempfile.mkdtemp()

def test_dir():
    make()
""",
        FILES,
        "--resource-trace",
    )
    assert_lines(result, "created at test_it.py:4 in make", "called from test_it.py:7 in test_dir")


def test_files_is_opt_in_and_ignores_what_it_is_told(run: Run, temp_dir: Path) -> None:
    source = """
def test_leaves():
    open("report.out", "w").close()
    open("keep.txt", "w").close()
"""
    default = run(source)
    assert "files:" not in default.stdout.str()
    os.remove("report.out")
    os.remove("keep.txt")
    result = run(source, "--resource-checks=all", ini="resource_ignore_files = *.out\n")
    assert_lines(result, "files: file keep.txt (0 B)")
    assert "report.out" not in result.stdout.str()


def test_a_failure_names_the_test_that_left_a_file(run: Run, temp_dir: Path) -> None:
    result = run(
        """
import os

def test_writes_lock():
    open("app.lock", "w").close()

def test_needs_no_lock():
    assert not os.path.exists("app.lock")
""",
        FILES,
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert_lines(
        result,
        "test_it.py::test_writes_lock left, still in effect:",
        "files: file app.lock (0 B)",
    )


def test_an_mtime_too_recent_to_trust_is_listed_again(tmp_path: Path) -> None:
    # A file made in the clock tick of the last listing leaves the directory's mtime as it
    # was: simulated by putting the mtime back.
    watched = tmp_path / "watched"
    watched.mkdir()
    probe = FilesProbe([str(watched)])
    probe.snapshot()
    mtime = watched.stat().st_mtime_ns
    (watched / "late").touch()
    os.utime(watched, ns=(mtime, mtime))
    assert str(watched / "late") in probe.items(probe.snapshot())


def test_an_unchanged_directory_is_not_listed_again(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    old = watched.stat().st_mtime_ns - 10**9
    os.utime(watched, ns=(old, old))
    probe = FilesProbe([str(watched)])
    first = probe.snapshot()
    assert probe.snapshot() is first  # a stat, no listing: the same snapshot object
    (watched / "new").touch()
    assert str(watched / "new") in probe.items(probe.snapshot())


def test_inotify_sees_what_the_clock_cannot(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    probe = FilesProbe([str(watched)])
    probe.watch()
    try:
        first = probe.snapshot()
        assert probe.snapshot() is first
        mtime = watched.stat().st_mtime_ns
        (watched / "late").touch()
        os.utime(watched, ns=(mtime, mtime))
        assert str(watched / "late") in probe.items(probe.snapshot())
    finally:
        probe.close()
