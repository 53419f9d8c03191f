"""What the verdict's own gc pass sets off belongs to the test being judged."""

from __future__ import annotations

from pytester_run import Run, assert_lines

ERRORS = "filterwarnings = error\n"
# A socket (so the verdict collects) in a cycle with an object whose finaliser raises.
BROKEN_CYCLE = """
import socket

class Broken:
    def __del__(self):
        raise ValueError("broken finaliser")

def test_drops_cycle():
    sock = socket.socket()
    holder = {"sock": sock, "broken": Broken()}
    holder["self"] = holder

def test_innocent():
    pass
"""


def test_socket_in_a_cycle_is_the_dropping_tests_leak_not_the_next_tests_error(
    run: Run,
) -> None:
    result = run(
        """
import socket

def test_drops_socket_in_cycle():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    holder = {"sock": sock}
    holder["self"] = holder  # only a collection closes it

def test_innocent():
    pass
""",
        "--resource-strict",
        "-p",
        "no:randomly",
        ini=ERRORS,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_drops_socket_in_cycle*"])
    assert_lines(result, "fds: unclosed <socket.socket")
    assert "PytestUnraisableExceptionWarning" not in result.stdout.str()


def test_unraisable_exception_the_gc_pass_sets_off_fails_the_judged_test(run: Run) -> None:
    result = run(
        BROKEN_CYCLE,
        "-p",
        "no:randomly",
        "--resource-checks=threads,fds",
        ini=ERRORS + "    ignore::pytest_resources.ResourceLeakWarning\n",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_drops_cycle*",
            "*ValueError: broken finaliser*",
        ]
    )


def test_unraisable_exception_is_a_warning_on_the_judged_test_without_error_filters(
    run: Run,
) -> None:
    result = run(
        BROKEN_CYCLE,
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*warnings summary*", "test_it.py::test_drops_cycle"])
    warnings = result.stdout.str().split("warnings summary")[1]
    assert "PytestUnraisableExceptionWarning" in warnings
    assert "test_innocent" not in warnings
