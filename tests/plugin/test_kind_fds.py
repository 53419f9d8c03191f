from __future__ import annotations

import os

import pytest
from pytester_run import Run


def test_open_file_is_reported_with_its_path(run: Run) -> None:
    result = run(
        """
KEPT = []

def test_leaks(tmp_path):
    KEPT.append(open(tmp_path / "kept.txt", "w"))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fds: fd * (*/kept.txt)"])


def test_socket_is_reported_with_family_and_addresses(run: Run) -> None:
    result = run(
        """
import socket
KEPT = []

def test_leaks():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    KEPT.extend([server, client])
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*fds: fd * (socket 127.0.0.1:* LISTEN)",
            "*fds: fd * (socket 127.0.0.1:* → 127.0.0.1:* ESTABLISHED)",
        ]
    )


def test_pipe_is_reported(run: Run) -> None:
    result = run(
        """
import os
KEPT = []

def test_leaks():
    KEPT.extend(os.pipe())
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    assert result.stdout.str().count(" (pipe)") >= 2


def test_closing_one_file_and_opening_another_is_a_leak(run: Run) -> None:
    # Identity, not counts: same number of fds before and after, one of them new.
    result = run(
        """
import pytest
KEPT = []

@pytest.fixture
def opened(tmp_path):
    f = open(tmp_path / "first.txt", "w")
    yield
    f.close()

def test_swaps(opened, tmp_path):
    KEPT.append(open(tmp_path / "second.txt", "w"))
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fds: fd * (*/second.txt)"])
    assert "first.txt" not in result.stdout.str()


def test_unclosed_file_warning_lands_on_the_test_that_dropped_it(run: Run) -> None:
    result = run(
        """
def test_drops(tmp_path):
    open(tmp_path / "dropped.txt", "w")

def test_next():
    pass

def test_after_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_drops*", "*unclosed file*dropped.txt*"]
    )


def test_unclosed_socket_in_a_cycle_is_found_by_the_gc_pass(run: Run) -> None:
    result = run(
        """
import socket

class Holder:
    def __init__(self):
        self.me = self
        self.sock = socket.socket()

def test_drops_cycle():
    Holder()

def test_next():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_drops_cycle*", "*unclosed <socket*"])


def test_clean_uses_of_files_and_capture_are_not_leaks(run: Run) -> None:
    result = run(
        """
import sys, socket, tempfile

def test_tmp_path(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with open(tmp_path / "a.txt") as f:
        assert f.read() == "x"

def test_capfd(capfd):
    print("out")
    assert capfd.readouterr().out == "out\\n"

def test_capsys(capsys):
    print("out", file=sys.stderr)
    assert capsys.readouterr().err == "out\\n"

def test_tempfile():
    with tempfile.TemporaryFile() as f:
        f.write(b"x")

def test_socket_closed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))

def test_first_import_of_stdlib_module():
    import sqlite3, json, decimal
    sqlite3.connect(":memory:").close()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=6)


def test_ignore_fds_ini_silences_matching_targets(run: Run) -> None:
    result = run(
        """
KEPT = []

def test_leaks(tmp_path):
    KEPT.append(open(tmp_path / "app.log", "w"))
""",
        "--resource-strict",
        ini="resource_ignore_fds = *.log\n",
    )
    result.assert_outcomes(passed=1)


def test_resource_warning_raised_as_error_in_del_is_still_a_leak_of_its_test(run: Run) -> None:
    # With -W error::ResourceWarning the warning becomes an exception inside __del__, which
    # Python hands to sys.unraisablehook instead of the warnings machinery.
    result = run(
        """
def test_drops(tmp_path):
    open(tmp_path / "dropped.txt", "w")

def test_next():
    pass
""",
        "--resource-strict",
        "-W",
        "error::ResourceWarning",
        "-W",
        "ignore::pytest.PytestUnraisableExceptionWarning",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_drops*", "*unclosed file*dropped.txt*"]
    )


def test_swap_is_seen_while_a_session_fixture_holds_many_descriptors(run: Run) -> None:
    # Same count, nothing closed: only the identity of the earlier leak shows the swap. The
    # session's pipes are tracked by number, which must not let the swap through.
    result = run(
        """
import os
import pytest
KEPT = []

@pytest.fixture(scope="session", autouse=True)
def pool():
    pipes = [os.pipe() for _ in range(50)]
    yield
    for r, w in pipes:
        os.close(r)
        os.close(w)

def test_leaks(tmp_path):
    KEPT.append(open(tmp_path / "first.txt", "w"))

def test_swaps(tmp_path):
    fd = KEPT[0].fileno()
    replacement = os.open(tmp_path / "second.txt", os.O_WRONLY | os.O_CREAT)
    os.dup2(replacement, fd)
    os.close(replacement)

def test_last():
    pass  # the session's pipes close in its teardown, not in test_swaps'
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "*fds: fd *first.txt*",
            "*ERROR at teardown of test_swaps*",
            "*fds: fd *second.txt*",
            "*replaced a descriptor that was open before the test",
        ]
    )
    assert "pipe:[" not in result.stdout.str()


ACCEPTING = """
import os
import socket
import threading
import pytest
KEPT = []

@pytest.fixture(scope="session", autouse=True)
def server():
    # A thread blocked in accept() holds a descriptor the kernel has reserved and counts,
    # but no listing of /proc/self/fd shows.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    thread = threading.Thread(target=lambda: listener.accept()[0].close(), name="acceptor")
    thread.start()
    yield
    socket.create_connection(listener.getsockname()).close()
    thread.join()
    listener.close()
"""


def test_leaks_and_swaps_are_seen_while_a_thread_waits_in_accept(run: Run) -> None:
    result = run(
        ACCEPTING
        + """
def test_clean(tmp_path):
    with open(tmp_path / "closed.txt", "w"):
        pass

def test_leaks(tmp_path):
    KEPT.append(open(tmp_path / "first.txt", "w"))

def test_swaps(tmp_path):
    fd = KEPT[0].fileno()
    replacement = os.open(tmp_path / "second.txt", os.O_WRONLY | os.O_CREAT)
    os.dup2(replacement, fd)
    os.close(replacement)

def test_last():
    pass
""",
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "*fds: fd *first.txt*",
            "*ERROR at teardown of test_swaps*",
            "*fds: fd *second.txt*",
        ]
    )


def test_a_thread_waiting_in_accept_does_not_make_every_snapshot_list_the_descriptors() -> None:
    # The unchanged-count shortcut compares with the count seen at the last listing, which
    # includes the descriptor accept() has reserved (Linux 6.2+ reports the count).
    import socket
    import threading
    import time

    from pytest_resources.detector.probes.fds import FdProbe

    if os.stat("/proc/self/fd").st_size == 0:
        pytest.skip("this kernel does not report the number of open descriptors (Linux < 6.2)")
    probe = FdProbe()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    thread = threading.Thread(target=lambda: listener.accept()[0].close())
    thread.start()
    try:
        first = probe.snapshot()
        deadline = time.monotonic() + 10
        while probe._count() == len(first):  # until the thread is inside accept()
            assert time.monotonic() < deadline, "accept() reserved no descriptor"
            first = probe.snapshot()
        assert probe.snapshot() is probe.snapshot()
    finally:
        socket.create_connection(listener.getsockname()).close()
        thread.join()
        listener.close()
        probe.close()
