"""Telling: leak messages, the strict failure or warning, and the terminal section.

Each leak is written out once, where people look: in strict mode in the test's error, in warn
mode in the "resource leaks" section at the end of the run; the other place gets one line
naming it. (A strict test that failed before also carries its leaks as context.)
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple

import pytest

from ..errors import ResourceLeakWarning
from .probes.base import Leak
from .verdict import Judgement, Polluter
from .warn import warn

SECTION = "resource leaks"
#: The section of a failed test's report that names the state earlier tests left.
POLLUTION_SECTION = "state left by earlier tests"
#: Leaks named in a one-line headline before "and N more".
HEADLINE_LEAKS = 3
#: Leaks whose creation site --resource-trace can find (by their signatures' prefixes).
_TRACEABLE = (
    "threads:",
    "tasks:",
    "fds:socket",
    "fds:file:",
    "processes:",
    "files:tmp:",
    "files:project:",
)


class View(NamedTuple):
    """How leaks are written for people: ``-v`` shows their raw details (thread idents,
    socket inodes, library frames); paths under the rootdir are relative to it."""

    verbose: bool = False
    root: str = ""

    @classmethod
    def of(cls, config: pytest.Config) -> View:
        return cls(config.option.verbose > 0, str(config.rootpath))

    def leak(self, leak: Leak) -> str:
        return leak.text(self.verbose, self.root)


#: Brief details, paths as they are: where no session says otherwise (resource_guard).
PLAIN = View()


def leak_lines(leaks: Iterable[Leak], view: View = PLAIN) -> str:
    return "\n".join("  " + view.leak(leak).replace("\n", "\n  ") for leak in leaks)


def headline(judgement: Judgement, reason: str = "") -> str:
    """One line naming what is wrong: the short test summary's and the warning's text."""
    parts = []
    if judgement.failing:
        names = [_name(leak) for leak in judgement.failing]
        more = len(names) - HEADLINE_LEAKS
        parts.append(
            "leaked "
            + ", ".join(names[:HEADLINE_LEAKS])
            + (f" and {more} more" if more > 0 else "")
        )
    if judgement.stale:
        why = f" ({reason})" if reason else ""
        parts.append(f"allow_leaks{why} is stale: no longer leaks {', '.join(judgement.stale)}")
    if judgement.fixed:
        n = len(judgement.fixed)
        parts.append(f"{n} baseline entr{'y' if n == 1 else 'ies'} no longer leak{'s' * (n == 1)}")
    return "; ".join(parts)


def _name(leak: Leak) -> str:
    name = f"memory ({leak.identity})" if leak.kind == "memory" else leak.identity
    return f"{name} (owned by {leak.owner})" if leak.owner else name


def traceable(leak: Leak) -> bool:
    """Can tracing tell where ``leak`` was created?"""
    return leak.signature.startswith(_TRACEABLE)


def untraced(leaks: Iterable[Leak]) -> bool:
    """Would tracing have told where one of ``leaks`` was created?"""
    return any(traceable(leak) and not leak.created for leak in leaks)


#: Said once where leaks are listed that tracing would have placed: how to see where.
TRACE_HINT = "created at: not recorded; run again with --resource-trace to see where"
NEXT_RUN_HINT = (
    "created at: not recorded; the next run traces the tests that leaked and shows where "
    "(resource_trace_leakers)"
)


def message(judgement: Judgement, reason: str = "", view: View = PLAIN, hint: str = "") -> str:
    """The full text of a strict failure (or of a strict test's report section)."""
    parts = []
    if judgement.failing:
        parts.append(f"leaked {_count(judgement.failing)}:\n{leak_lines(judgement.failing, view)}")
        if hint:
            parts.append(hint)
    if judgement.stale:
        kinds = ", ".join(judgement.stale)
        why = f" ({reason})" if reason else ""
        parts.append(
            f"marked allow_leaks{why} but no longer leaks {kinds}: "
            "remove the marker (or the kinds that no longer leak)"
        )
    if judgement.fixed:
        parts.append(fixed_text(judgement.fixed))
    return "\n".join(parts)


def warning_text(judgement: Judgement, reason: str = "") -> str:
    """Warn mode's one line; the leaks themselves are listed in the section."""
    return f"{headline(judgement, reason)} (details under {SECTION!r} below)"


def fixed_text(fixed: Iterable[tuple[str, str, int]]) -> str:
    listed = ", ".join(
        f"{kind} {sig!r}" + (f" (x{count})" if count > 1 else "") for kind, sig, count in fixed
    )
    return (
        f"no longer leaks {listed} listed in the baseline: "
        "update it with --resource-baseline-update"
    )


def deliver(item: pytest.Item, text: str, strict: bool, already_failed: bool) -> None:
    """Strict: the test errors in teardown, unless it already failed (then the leaks are
    context in its report). Warn mode: a ResourceLeakWarning pointing at the test, which
    never raises (see warn.py)."""
    if strict and not already_failed:
        pytest.fail(text, pytrace=False)
    elif strict:
        item.add_report_section("teardown", SECTION, text)
    else:
        warn(ResourceLeakWarning(text), str(item.path), (item.location[1] or 0) + 1)


def pollution_text(polluters: Iterable[Polluter], view: View = PLAIN) -> str:
    """The leaks still in effect, under the test that left each, most recent first."""
    by_test: dict[str, list[Leak]] = {}
    for polluter in polluters:
        leaks = by_test.setdefault(polluter.nodeid, [])
        if polluter.leak not in leaks:  # one leak for several keys (a loop's descriptors)
            leaks.append(polluter.leak)
    return "\n".join(
        f"{nodeid} left, still in effect:\n{leak_lines(leaks, view)}"
        for nodeid, leaks in by_test.items()
    )


def surface(texts: Iterable[str]) -> None:
    """Unraisable exceptions the plugin's own gc pass set off, reported on the judged test the
    way pytest reports its own (an error under ``filterwarnings = error``)."""
    for text in texts:
        warnings.warn(pytest.PytestUnraisableExceptionWarning(text), stacklevel=1)


def name_leaks(report: pytest.TestReport, line: str) -> None:
    """Make the leak error's one-line message (short test summary, junitxml's ``message``)
    name the leaks rather than repeat the start of the full text ("Failed: ...")."""
    crash = getattr(report.longrepr, "reprcrash", None) if report.failed else None
    if crash is not None:
        crash.message = line


def _count(leaks: tuple[Leak, ...]) -> str:
    return f"{len(leaks)} resource{'s' if len(leaks) != 1 else ''}"


def finding_lines(
    judgement: Judgement, *, allowed: bool = True, view: View = PLAIN, failing: bool = True
) -> list[str]:
    """One text per finding, in the order of the report records; ``allowed=False`` leaves out
    what ``allow_leaks`` or the baseline expects, ``failing=False`` what the test failed on."""
    lines = [view.leak(leak) for leak in judgement.failing] if failing else []
    if allowed:
        lines += [f"{view.leak(leak)} (allowed)" for leak in judgement.tolerated]
    if failing:
        lines += [
            f"allow_leaks({kind!r}) is stale: the test no longer leaks it; "
            "remove the marker (or the kinds that no longer leak)"
            for kind in judgement.stale
        ]
    if allowed:
        lines += [f"{view.leak(leak)} (in baseline)" for leak in judgement.known]
    if failing:
        lines += [fixed_text([entry]) for entry in judgement.fixed]
    return lines


class Summary:
    """Collects the verdicts worth telling (local, or from xdist workers' reports)."""

    def __init__(self) -> None:
        #: Each test's last run: a rerun (pytest-rerunfailures) replaces the attempt before.
        self.tests: dict[str, Judgement] = {}
        #: Tests whose strict leak error (a failed teardown report) listed their leaks.
        self.in_error: set[str] = set()
        #: How to see where untraced leaks were created, and the tests traced in this run.
        self.hint = TRACE_HINT
        self.traced: Collection[str] = ()
        self.outside: list[Leak] = []
        self.problems: list[str] = []

    def add(self, nodeid: str, judgement: Judgement | None, failed: bool = False) -> None:
        """One run's verdict of a test; None or a clean one when it has nothing to tell.
        ``failed``: the teardown report failed, so its leaks are listed with its error. (A
        strict test that failed before carries them as context, which pytest shows only for
        a failed call, not a failed setup: the section lists those.)"""
        if judgement is None or judgement.clean:
            self.tests.pop(nodeid, None)
            self.in_error.discard(nodeid)
            return
        self.tests[nodeid] = judgement
        if failed:
            self.in_error.add(nodeid)
        else:
            self.in_error.discard(nodeid)

    def write(self, terminal: Any, strict: bool) -> None:
        if not (self.tests or self.outside or self.problems):
            return
        view = View.of(terminal.config)
        terminal.write_sep("=", SECTION, yellow=not strict, red=strict)
        for problem in self.problems:
            terminal.write_line(f"plugin problem: {problem}", yellow=True)
        hint = False
        for nodeid, judgement in self.tests.items():
            # Listed with its error above: only the notes the error leaves out go here.
            listed = nodeid not in self.in_error
            lines = finding_lines(judgement, view=view, failing=listed)
            if not lines:
                continue
            if listed and nodeid not in self.traced:
                hint = hint or untraced(judgement.failing)
            terminal.write_line(f"{nodeid}:")
            for line in lines:
                terminal.write_line("  " + line.replace("\n", "\n  "))
        if self.outside:
            terminal.write_line("outside any test (session teardown):")
            terminal.write_line(leak_lines(self.outside, view))
        if hint:
            terminal.write_line(self.hint)
        leaking_ids = [
            nodeid for nodeid, j in self.tests.items() if j.failing or j.stale or j.fixed
        ]
        leaking = len(leaking_ids)
        allowed = len(self.tests) - leaking
        errored = sum(1 for nodeid in leaking_ids if nodeid in self.in_error)
        mode = _outcomes(errored, leaking, strict)
        if self.in_error:
            mode += "; their leaks are listed with their errors above"
        line = f"{leaking} test(s) leaked resources ({mode})"
        if allowed:
            line += f"; {allowed} test(s) leaked only what allow_leaks or the baseline expects"
        terminal.write_line(line, bold=True)


def _outcomes(errored: int, leaking: int, strict: bool) -> str:
    """What the leaks did to the tests' outcomes: a test's own ``resources(strict=...)``
    can differ from the session's mode."""
    if errored == leaking and (errored or strict):
        return "strict: these tests error"
    if errored == 0:
        return "outcomes unchanged" if strict else "warn mode: outcomes unchanged"
    return f"{errored} errored in teardown (strict), {leaking - errored} kept their outcome"
