"""The promise, proven on a realistic suite: a test that passes without the plugin passes in
warn mode, and in strict mode only the planted leakers fail, each with its own leak report.

The suite has lazy caches on session fixtures (a child process with pipes, a server socket
with its accept thread, a thread pool), module globals a fixture fills, a module fixture with
a worker thread, capfd, a nested in-process pytester session, ``filterwarnings = error``, and
four tests that really leak a thread, a socket, a child process and an environment variable.
"""

from __future__ import annotations

import json
import re

import pytest

CONFTEST = """
import json, os, socket, subprocess, sys, threading
from concurrent.futures import ThreadPoolExecutor
import pytest

pytest_plugins = ["pytester"]

@pytest.fixture(scope="session")
def registry():
    cache = {}
    yield cache
    if "echo" in cache:
        proc = cache["echo"]
        proc.stdin.close()
        proc.wait()
        proc.stdout.close()
    if "server" in cache:
        sock, thread, handlers = cache["server"]
        sock.shutdown(socket.SHUT_RDWR)  # wakes the accept; close alone does not
        sock.close()
        thread.join()
        for client in _CLIENTS.values():
            client.close()
        for handler in handlers:
            handler.join()
    if "pool" in cache:
        cache["pool"].shutdown(wait=True)

@pytest.fixture
def echo(registry):
    if "echo" not in registry:  # a costly child, started on first use
        registry["echo"] = subprocess.Popen(
            [sys.executable, "-c",
             "import sys\\nfor line in sys.stdin: sys.stdout.write(line); sys.stdout.flush()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
    return registry["echo"]

def _handle(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)

def _serve(sock, handlers):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:  # closed by the registry's teardown
            return
        handler = threading.Thread(target=_handle, args=(conn,), daemon=True)
        handler.start()
        handlers.append(handler)  # the server's, as long as it lives

@pytest.fixture
def server(registry):
    if "server" not in registry:
        sock = socket.create_server(("127.0.0.1", 0))
        handlers = []
        thread = threading.Thread(
            target=_serve, args=(sock, handlers), name="echo-server", daemon=True
        )
        thread.start()
        registry["server"] = (sock, thread, handlers)
    return registry["server"][0].getsockname()

@pytest.fixture
def pool(registry):
    if "pool" not in registry:
        registry["pool"] = ThreadPoolExecutor(2, thread_name_prefix="app-pool")
    return registry["pool"]

_CLIENTS = {}

@pytest.fixture
def client(server):
    # A module global a fixture fills: one connection kept for the whole run.
    if server not in _CLIENTS:
        _CLIENTS[server] = socket.create_connection(server)
    return _CLIENTS[server]

@pytest.fixture(scope="module")
def ticker():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="ticker")
    thread.start()
    yield thread
    stop.set()
    thread.join()

OUTCOMES = {}

def pytest_runtest_logreport(report):
    ok = report.passed or (report.when == "call" and report.skipped)
    OUTCOMES[report.nodeid] = OUTCOMES.get(report.nodeid, True) and ok

def pytest_sessionfinish(session):
    path = os.environ.get("NEVER_BREAKS_OUT")
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "w") as out:
            json.dump(OUTCOMES, out)
"""

APP = """
import asyncio, os, socket, subprocess, sys, threading
import pytest

KEPT = []  # what the leaking tests keep

@pytest.mark.parametrize("n", range(4))
def test_echo(echo, n):
    echo.stdin.write(f"{n}\\n")
    echo.stdin.flush()
    assert echo.stdout.readline() == f"{n}\\n"

@pytest.mark.parametrize("n", range(3))
def test_server_roundtrip(server, n):
    with socket.create_connection(server) as conn:
        conn.sendall(b"x" * (n + 1))
        assert conn.recv(16) == b"x" * (n + 1)

@pytest.mark.parametrize("n", range(2))
def test_cached_client(client, n):
    client.sendall(b"ping")
    assert client.recv(16) == b"ping"

def test_pool(pool):
    assert list(pool.map(abs, [-1, -2])) == [1, 2]

def test_module_worker(ticker):
    assert ticker.is_alive()

def test_module_worker_again(ticker):
    assert ticker.is_alive()

def test_capfd(capfd):
    print("hello")
    os.write(1, b"fd\\n")
    assert capfd.readouterr().out == "hello\\nfd\\n"

def test_asyncio_client(server):
    async def main():
        reader, writer = await asyncio.open_connection(*server)
        writer.write(b"hi")
        data = await reader.read(2)
        writer.close()
        await writer.wait_closed()
        return data
    assert asyncio.run(main()) == b"hi"

def test_tmp_file(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("data")
    assert path.read_text() == "data"

def test_nested_pytester(pytester):
    pytester.makepyfile("def test_inner(): pass")
    # memray's plugin in a nested session removes the env var the outer one set (a real
    # change of global state), and rerunfailures starts a status server: off in there.
    args = ("-p", "no:cacheprovider", "-p", "no:rerunfailures", "-p", "no:memray")
    pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)

def test_warns_as_expected():
    with pytest.warns(UserWarning):
        import warnings
        warnings.warn("expected", UserWarning)

def test_leaks_thread():
    thread = threading.Thread(target=threading.Event().wait, name="forgotten-worker", daemon=True)
    thread.start()

def test_leaks_socket():
    KEPT.append(socket.create_server(("127.0.0.1", 0)))

def test_leaks_process():
    KEPT.append(subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE))

def test_leaks_env():
    os.environ["NEVER_BREAKS_LEAK"] = "1"

@pytest.mark.parametrize("n", range(2))
def test_after_the_leaks(echo, server, n):
    with socket.create_connection(server) as conn:
        conn.sendall(b"after")
        assert conn.recv(16) == b"after"
"""

#: Each planted leaker, and a text its own report must hold.
LEAKERS = {
    "test_app.py::test_leaks_thread": "thread 'forgotten-worker'",
    "test_app.py::test_leaks_socket": "LISTEN",
    "test_app.py::test_leaks_process": "pid ",
    "test_app.py::test_leaks_env": "NEVER_BREAKS_LEAK",
}


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, *args: str
) -> tuple[set[str], str]:
    """The tests that passed (setup, call and teardown) in one run, and its output."""
    out = pytester.path / f"{name}.json"
    monkeypatch.setenv("NEVER_BREAKS_OUT", str(out))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    outcomes = json.loads(out.read_text())
    assert len(outcomes) == 23, result.stdout.str()
    return {nodeid for nodeid, ok in outcomes.items() if ok}, result.stdout.str()


def _error_sections(output: str) -> dict[str, str]:
    """The text of each ``ERROR at teardown of ...`` section, by test name."""
    parts = re.split(r"^_+ ERROR at teardown of (\S+) _+$", output, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    # The last section runs on into the summary; cut it there.
    return {
        name: re.split(r"^=+ ", text, maxsplit=1, flags=re.M)[0] for name, text in sections.items()
    }


def test_a_realistic_suite_passes_the_same_and_strict_fails_only_its_leakers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_app=APP)
    pytester.makeini(
        # testpaths: the runs' basetemps (with the nested session's files) are in this directory.
        "[pytest]\nfilterwarnings = error\ntestpaths = test_app.py\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "asyncio_default_test_loop_scope = function\n"
    )
    plain, _ = _run(pytester, monkeypatch, "plain", "-p", "no:resources")
    assert len(plain) == 23  # everything passes without the plugin, the leakers too
    warn, warn_output = _run(pytester, monkeypatch, "warn")
    assert warn == plain
    assert all(f"{name.split('::')[1]}" in warn_output for name in LEAKERS)
    repeat, _ = _run(pytester, monkeypatch, "repeat", "--resource-repeat=1")
    assert repeat == plain

    passed, output = _run(pytester, monkeypatch, "strict", "--resource-strict")
    assert plain - passed == set(LEAKERS), output
    sections = _error_sections(output)
    assert set(sections) == {name.split("::")[1] for name in LEAKERS}, output
    for nodeid, text in LEAKERS.items():
        section = sections[nodeid.split("::")[1]]
        assert text in section, section
        # Its own leak only: no other leaker's text.
        others = [t for n, t in LEAKERS.items() if n != nodeid]
        assert not any(other in section for other in others), section
