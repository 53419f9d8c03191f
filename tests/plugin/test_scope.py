from __future__ import annotations

from pytester_run import Run, assert_lines


def test_session_fixture_that_owns_a_socket_is_not_blamed_on_its_first_user(run: Run) -> None:
    result = run(
        """
import socket, threading
import pytest

@pytest.fixture(scope="session")
def server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="server-loop")
    worker.start()
    yield sock
    stop.set()
    worker.join()
    sock.close()

def test_first(server):
    assert server.getsockname()

def test_second(server):
    assert server.getsockname()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2)


def test_scoped_fixture_that_does_not_clean_up_is_reported_when_its_scope_ends(run: Run) -> None:
    result = run(
        """
import socket
import pytest

@pytest.fixture(scope="module")
def server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock  # never closed

def test_first(server):
    pass

def test_second(server):
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_second*"])
    assert_lines(result, "(owned by module-scoped fixture 'server')")


def test_class_fixture_and_function_fixture_mix(run: Run) -> None:
    result = run(
        """
import os
import pytest

@pytest.fixture(scope="class")
def env_for_class():
    os.environ["CLASS_SETTING"] = "1"
    yield
    del os.environ["CLASS_SETTING"]

class TestGroup:
    def test_a(self, env_for_class):
        assert os.environ["CLASS_SETTING"] == "1"

    def test_b(self, env_for_class):
        assert os.environ["CLASS_SETTING"] == "1"

def test_outside():
    assert "CLASS_SETTING" not in os.environ
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3)
