"""Running an inner pytest session for plugin tests (imported as ``pytester_run``: tests/
has no __init__.py, and a module named ``conftest`` would be shadowed by the other
conftest files)."""

from __future__ import annotations

import re

import pytest


class Run:
    """A pytester run in a subprocess, so the inner session's leaks stay out of ours."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester

    def __call__(
        self, source: str, *args: str, ini: str = "", cache: bool = False
    ) -> pytest.RunResult:
        """``cache``: keep pytest's cache on, for what it remembers between runs."""
        self.pytester.makepyfile(test_it=source)
        self.pytester.makeini(
            "[pytest]\n"
            "asyncio_default_fixture_loop_scope = function\n"
            "asyncio_default_test_loop_scope = function\n" + ini
        )
        off = () if cache else ("-p", "no:cacheprovider")
        return self.pytester.runpytest_subprocess(*off, *args)


def assert_lines(result: pytest.RunResult, *expected: str) -> None:
    """Each expected text appears within some output line (no glob: leak texts hold [ ])."""
    lines = result.outlines
    for text in expected:
        assert any(text in line for line in lines), f"{text!r} not in output:\n{result.stdout}"


def strict(run: Run, source: str) -> pytest.RunResult:
    """A strict run of ``source`` in file order."""
    return run(source, "--resource-strict", "-p", "no:randomly")


def assert_errors_on(result: pytest.RunResult, test: str, *expected: str, passed: int = 2) -> None:
    """The run's one error is ``test``'s teardown, with the ``expected`` texts in the output;
    ``passed`` tests pass."""
    result.assert_outcomes(passed=passed, errors=1)
    result.stdout.fnmatch_lines([f"*ERROR at teardown of {test}*"])
    assert_lines(result, *expected)


def verdicts(result: pytest.RunResult) -> dict[str, set[str]]:
    """Each test's outcomes from the ``-rA`` short summary, by nodeid: a test whose teardown
    errored after it passed has {"PASSED", "ERROR"}. (pytest before 9 shows xdist's
    ``--dist loadgroup`` ids with their ``@group`` suffix: dropped.)"""
    out: dict[str, set[str]] = {}
    words = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS", "RERUN")
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in words and "::" in rest:
            nodeid = rest.split(" - ")[0].strip()
            out.setdefault(re.sub(r"@\w+$", "", nodeid), set()).add(word)
    return out
