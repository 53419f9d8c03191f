"""Test styles other than plain pytest functions: unittest classes, doctests, anyio's plugin.
Each runs a leaking and a clean test, and the verdicts stay each test's own."""

from __future__ import annotations

import pytest
from pytester_run import Run, assert_lines, verdicts

LEAKS = {"PASSED", "ERROR"}  # strict mode: the body passed, the teardown errors with the leak


def test_unittest_testcase_methods_are_judged_one_by_one(run: Run) -> None:
    result = run(
        """
import os, threading, unittest
STOP = threading.Event()

class TestThings(unittest.TestCase):
    def setUp(self):
        self.scratch = []  # instance state: no leak

    def test_thread_leak(self):
        threading.Thread(target=STOP.wait, name="unittest-leak", daemon=True).start()

    def test_env_leak(self):
        os.environ["UNITTEST_LEAK"] = "1"

    def test_clean(self):
        self.addCleanup(os.environ.pop, "CLEANED_UP")
        os.environ["CLEANED_UP"] = "1"
""",
        "--resource-strict",
        "-rA",
    )
    assert verdicts(result) == {
        "test_it.py::TestThings::test_thread_leak": LEAKS,
        "test_it.py::TestThings::test_env_leak": LEAKS,
        "test_it.py::TestThings::test_clean": {"PASSED"},
    }
    assert_lines(
        result,
        "threads: thread 'unittest-leak'",
        "env: os.environ['UNITTEST_LEAK'] added: '1'",
        "2 test(s) leaked resources (strict: these tests error",
    )


def test_isolated_asyncio_testcase_methods_are_judged_one_by_one(run: Run) -> None:
    # Each method runs on its own asyncio.Runner, made and closed inside the test.
    result = run(
        """
import asyncio, os, socket, unittest
KEEP = []

class TestAsync(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.queue = asyncio.Queue()

    async def test_socket_leak(self):
        KEEP.append(socket.create_server(("127.0.0.1", 0)))

    async def test_env_leak(self):
        os.environ["ISOLATED_LEAK"] = "1"

    async def test_clean(self):
        await asyncio.sleep(0)
        reader, writer = await asyncio.open_connection(*self.server_address())
        writer.close()
        await writer.wait_closed()

    def server_address(self):
        server = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(server.close)
        return server.getsockname()
""",
        "--resource-strict",
        "-rA",
    )
    assert verdicts(result) == {
        "test_it.py::TestAsync::test_socket_leak": LEAKS,
        "test_it.py::TestAsync::test_env_leak": LEAKS,
        "test_it.py::TestAsync::test_clean": {"PASSED"},
    }
    assert_lines(
        result,
        "fds: fd ",
        "fds: fd ",
        " (socket 127.0.0.1:",
        "env: os.environ['ISOLATED_LEAK'] added: '1'",
        "2 test(s) leaked resources (strict: these tests error",
    )


def test_doctests_in_modules_and_text_files_are_judged_one_by_one(run: Run) -> None:
    run.pytester.makefile(
        ".txt",
        guide="""
A clean example:

>>> sorted({3, 1, 2})
[1, 2, 3]
""",
        leaky_guide="""
>>> import os
>>> os.environ["TEXT_DOCTEST_LEAK"] = "1"
""",
    )
    result = run(
        '''
def leaks():
    """
    >>> import os
    >>> os.environ["DOCTEST_LEAK"] = "1"
    """

def clean():
    """
    >>> clean() is None
    True
    """
''',
        "--doctest-modules",
        "--doctest-glob=*.txt",
        "--resource-strict",
        "-rA",
    )
    assert verdicts(result) == {
        "test_it.py::test_it.leaks": LEAKS,
        "test_it.py::test_it.clean": {"PASSED"},
        "leaky_guide.txt::leaky_guide.txt": LEAKS,
        "guide.txt::guide.txt": {"PASSED"},
    }
    assert_lines(
        result,
        "env: os.environ['DOCTEST_LEAK'] added: '1'",
        "env: os.environ['TEXT_DOCTEST_LEAK'] added: '1'",
    )


ANYIO_SUITE = """
import asyncio, os, socket, threading
import anyio
import pytest
STOP = threading.Event()
KEEP = []

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_thread_leak():
    threading.Thread(target=STOP.wait, name="anyio-leak", daemon=True).start()

@pytest.mark.anyio
async def test_socket_leak():
    KEEP.append(socket.create_server(("127.0.0.1", 0)))

@pytest.mark.anyio
async def test_env_leak(anyio_backend):
    os.environ[f"ANYIO_LEAK_{anyio_backend.upper()}"] = "1"

@pytest.mark.anyio
async def test_clean():
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    await listener.aclose()
    assert await anyio.to_thread.run_sync(sum, [1, 2]) == 3  # trio: an idle cached worker
"""

# The tasks kind sees asyncio's loops only: on the trio backend no asyncio task can be left.
ASYNCIO_TASK_LEAK = """
@pytest.mark.anyio
async def test_task_leak(anyio_backend):
    KEEP.append(asyncio.get_running_loop().create_task(anyio.sleep_forever(), name="anyio-task"))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_plugin_tests_are_judged_one_by_one(run: Run, backend: str) -> None:
    task = backend == "asyncio"
    suite = ANYIO_SUITE + (ASYNCIO_TASK_LEAK if task else "")
    result = run(suite, "--resource-strict", "-rA", "-k", backend, "-p", "no:asyncio")
    expected = {
        f"test_it.py::test_thread_leak[{backend}]": LEAKS,
        f"test_it.py::test_socket_leak[{backend}]": LEAKS,
        f"test_it.py::test_env_leak[{backend}]": LEAKS,
        f"test_it.py::test_clean[{backend}]": {"PASSED"},
    }
    if task:
        expected[f"test_it.py::test_task_leak[{backend}]"] = LEAKS
    assert verdicts(result) == expected
    assert_lines(
        result,
        "threads: thread 'anyio-leak'",
        "fds: fd ",
        " (socket 127.0.0.1:",
        f"env: os.environ['ANYIO_LEAK_{backend.upper()}'] added: '1'",
        f"{len(expected) - 1} test(s) leaked resources (strict: these tests error",
    )
    if task:
        assert_lines(result, "tasks: task 'anyio-task' running sleep_forever()")
