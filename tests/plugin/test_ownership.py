"""Ownership by reachability: what a live wider fixture still reaches is that fixture's, and
strict cleanup touches only what is provably the test's."""

from __future__ import annotations

import pytest
from pytester_run import Run, assert_errors_on, strict

# A child process with pipes, as gateways and database servers are: an echo loop on stdin.
ECHO = """
import subprocess, sys

def start_echo():
    return subprocess.Popen(
        [sys.executable, "-c",
         "import sys\\nfor line in sys.stdin: sys.stdout.write(line); sys.stdout.flush()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )

def stop_echo(proc):
    proc.stdin.close()
    proc.wait()
    proc.stdout.close()

def ask(proc, text):
    proc.stdin.write(text + "\\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()
"""

LAZY_SESSION_CACHE = (
    ECHO
    + """
import threading
import pytest

@pytest.fixture(scope="session")
def registry():
    cache = {}
    yield cache
    for proc in cache.values():
        stop_echo(proc)

@pytest.fixture
def gateway(registry):
    # Started on first use, then shared by every later test.
    if "echo" not in registry:
        registry["echo"] = start_echo()
    return registry["echo"]

@pytest.mark.parametrize("n", range(5))
def test_echo(gateway, n):
    assert ask(gateway, str(n)) == str(n)
"""
)


def test_lazy_session_cache_keeps_every_later_test_green_under_strict(run: Run) -> None:
    result = strict(run, LAZY_SESSION_CACHE)
    result.assert_outcomes(passed=5)
    assert "leaked" not in result.stdout.str()


def test_lazy_session_cache_is_not_blamed_on_the_test_that_filled_it(run: Run) -> None:
    result = run(LAZY_SESSION_CACHE, "-p", "no:randomly", ini="filterwarnings = error\n")
    result.assert_outcomes(passed=5)
    assert "resource leaks" not in result.stdout.str()


def test_what_a_session_cache_never_releases_is_reported_when_the_fixture_ends(
    run: Run,
) -> None:
    result = strict(
        run,
        ECHO
        + """
import pytest

@pytest.fixture(scope="session")
def registry():
    yield {}  # never stops what it holds

@pytest.fixture
def gateway(registry):
    return registry.setdefault("echo", start_echo())

def test_first(gateway):
    assert ask(gateway, "a") == "a"

def test_second(gateway):
    assert ask(gateway, "b") == "b"
""",
    )
    assert_errors_on(
        result, "test_second", "(owned by session-scoped fixture 'registry')", "processes: pid "
    )


def test_module_global_cache_a_fixture_fills_is_not_a_test_leak(run: Run) -> None:
    result = strict(
        run,
        ECHO
        + """
import pytest

_GATEWAYS = {}

def _gateway(name):
    if name not in _GATEWAYS:
        _GATEWAYS[name] = start_echo()
    return _GATEWAYS[name]

@pytest.fixture
def gateway():
    return _gateway("echo")

@pytest.mark.parametrize("n", range(3))
def test_echo(gateway, n):
    assert ask(gateway, str(n)) == str(n)
""",
    )
    result.assert_outcomes(passed=3)


def test_thread_a_class_fixture_value_reaches_is_the_fixtures(run: Run) -> None:
    result = strict(
        run,
        """
import queue, threading
import pytest

class Pool:
    def __init__(self):
        self.jobs = queue.Queue()
        self.worker = None

    def submit(self, func):
        if self.worker is None:  # started lazily, by whichever test comes first
            self.worker = threading.Thread(target=self._run, name="pool-worker")
            self.worker.start()
        done = queue.Queue()
        self.jobs.put((func, done))
        return done.get()

    def _run(self):
        while (job := self.jobs.get()) is not None:
            func, done = job
            done.put(func())

    def close(self):
        if self.worker is not None:
            self.jobs.put(None)
            self.worker.join()

@pytest.fixture(scope="class")
def pool():
    pool = Pool()
    yield pool
    pool.close()

class TestPool:
    def test_a(self, pool):
        assert pool.submit(lambda: 1) == 1

    def test_b(self, pool):
        assert pool.submit(lambda: 2) == 2
""",
    )
    result.assert_outcomes(passed=2)


KILLED = """
def test_after():
    with pytest.raises(ProcessLookupError):
        os.kill(KEPT[0].pid, 0)
    KEPT[0].stdin.close()
    KEPT[0].stdout.close()
"""
LEFT_ALONE = """
def test_after():
    assert ask(KEPT[0], "still here") == "still here"
    stop_echo(KEPT[0])
"""


@pytest.mark.parametrize(
    ("setting", "after"),
    [
        pytest.param("", KILLED, id="provably-the-tests-killed"),
        # No walk can finish: nothing is provably the test's.
        pytest.param("ownership.BUDGET = 0", LEFT_ALONE, id="walk-incomplete-left-alone"),
    ],
)
def test_strict_cleanup_kills_only_what_is_provably_the_tests(
    run: Run, setting: str, after: str
) -> None:
    result = strict(
        run,
        ECHO
        + f"""
import os
import pytest
from pytest_resources.detector import ownership
{setting}

KEPT = []

@pytest.fixture(scope="session")
def registry():
    yield {{}}

def test_leaks(registry):
    KEPT.append(start_echo())  # not in the session's registry: the test's own
"""
        + after,
    )
    # Reported on the test that started it either way.
    assert_errors_on(result, "test_leaks")


def test_bare_thread_a_module_fixture_starts_is_the_fixtures(run: Run) -> None:
    result = strict(
        run,
        """
import _thread, sys, threading
import pytest

# A long switch interval: the new thread runs only once this one blocks, as on a busy machine.
sys.setswitchinterval(10)

@pytest.fixture(scope="module")
def worker():
    started, stop, done = threading.Event(), threading.Event(), threading.Event()

    def run():
        started.set()
        stop.wait()
        done.set()

    _thread.start_new_thread(run, ())
    yield started
    stop.set()
    done.wait()

def test_first(worker):
    assert worker.wait(10)  # the thread has run (and is counted) inside this test

def test_second(worker):
    pass
""",
    )
    result.assert_outcomes(passed=2)


def test_bare_thread_a_module_fixture_never_stops_is_reported_as_the_fixtures(
    run: Run,
) -> None:
    result = strict(
        run,
        """
import _thread, sys, threading
import pytest

sys.setswitchinterval(10)
STOP = threading.Event()

@pytest.fixture(scope="module")
def worker():
    started = threading.Event()

    def run():
        started.set()
        STOP.wait()

    _thread.start_new_thread(run, ())
    yield started

def test_first(worker):
    assert worker.wait(10)

def test_second(worker):
    pass
""",
    )
    assert_errors_on(
        result,
        "test_second",
        "started with _thread.start_new_thread (owned by module-scoped fixture",
    )


def test_a_bare_thread_a_later_test_starts_beside_a_fixtures_is_that_tests(run: Run) -> None:
    # The fixture owns the bare-thread count it made, not every later growth of it.
    result = strict(
        run,
        """
import _thread, sys, threading
import pytest

sys.setswitchinterval(10)
STOP = threading.Event()

@pytest.fixture(scope="module")
def worker():
    started, stop, done = threading.Event(), threading.Event(), threading.Event()

    def run():
        started.set()
        stop.wait()
        done.set()

    _thread.start_new_thread(run, ())
    assert started.wait(10)
    yield
    stop.set()
    done.wait()

def test_first(worker):
    pass

def test_second(worker):
    started = threading.Event()

    def forgotten():
        started.set()
        STOP.wait()

    _thread.start_new_thread(forgotten, ())
    assert started.wait(10)

def test_third(worker):
    pass
""",
    )
    # test_third: the fixture stops its own thread while test_second's still runs, so the
    # count it made is back, yet nothing of the fixture's is left.
    bare = "threads: 1 thread(s) started with _thread.start_new_thread"
    assert_errors_on(result, "test_second", bare, passed=3)


def test_bare_threads_of_a_lazily_cached_execnet_gateway_are_the_session_fixtures(
    run: Run,
) -> None:
    # execnet (pulled in by pytest-xdist) starts its receiver with _thread.start_new_thread:
    # no Thread object, only the interpreter's count of threads grows in the first test.
    result = strict(
        run,
        """
import _thread, threading
import execnet
import pytest

# A bare thread from before any test, that nothing reaches: not the gateway's.
RUNNING = threading.Event()
_thread.start_new_thread(lambda: (RUNNING.set(), threading.Event().wait()), ())
assert RUNNING.wait(10)  # counted once it runs

@pytest.fixture(scope="session")
def registry():
    cache = {}
    yield cache
    for gateway in cache.values():
        gateway.exit()
        gateway.join(timeout=10)
        gateway._io.wait()  # reaps the child, as execnet's Group.terminate does

@pytest.fixture
def gateway(registry):
    # Costly: made on first use, then shared by every later test.
    if "gw" not in registry:
        registry["gw"] = execnet.makegateway("popen")
    return registry["gw"]

@pytest.mark.parametrize("n", range(3))
def test_remote(gateway, n):
    channel = gateway.remote_exec("channel.send(channel.receive() * 2)")
    channel.send(n)
    assert channel.receive() == 2 * n
""",
    )
    result.assert_outcomes(passed=3)
    assert "leaked" not in result.stdout.str()


def test_a_bare_thread_no_fixture_reaches_is_still_the_tests(run: Run) -> None:
    # A session fixture's value reaches a bare thread; the one the test starts is unreachable.
    result = strict(
        run,
        """
import _thread, threading
import pytest

STOP = threading.Event()

class Pool:
    def __init__(self):
        self.started = threading.Event()
        _thread.start_new_thread(self.serve, ())

    def serve(self):
        self.started.set()
        STOP.wait()

POOL = Pool()
assert POOL.started.wait(10)  # counted once it runs

@pytest.fixture(scope="session")
def pool():
    yield POOL
    STOP.set()

def test_uses_pool(pool):
    pass

def test_leaks(pool):
    started = threading.Event()

    def forgotten():
        started.set()
        STOP.wait()

    _thread.start_new_thread(forgotten, ())
    assert started.wait(10)

def test_after(pool):
    pass
""",
    )
    bare = "threads: 1 thread(s) started with _thread.start_new_thread"
    assert_errors_on(result, "test_leaks", bare, passed=3)


def test_an_atexit_handler_a_lazily_cached_gateway_registers_is_the_session_fixtures(
    run: Run,
) -> None:
    # The gateway is made on first use by a function fixture and kept by a session fixture's
    # registry; it registers its close() with atexit, once. A later test's own handler is
    # still that test's.
    result = strict(
        run,
        """
import atexit
import pytest

class Gateway:
    def __init__(self):
        atexit.register(self.close)

    def close(self):
        pass

def forgotten():
    pass

@pytest.fixture(scope="session")
def registry():
    return {}

@pytest.fixture
def gateway(registry):
    if "gw" not in registry:
        registry["gw"] = Gateway()
    return registry["gw"]

def test_first(gateway):
    pass

def test_second(gateway):
    atexit.register(forgotten)
""",
    )
    assert_errors_on(result, "test_second", "registered: test_it.forgotten")
    assert "registered: test_it.Gateway.close" not in result.stdout.str()
