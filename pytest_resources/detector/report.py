"""Telling: leak messages, the strict failure or warning, and the terminal section."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import pytest

from ..errors import ResourceLeakWarning
from .probes.base import Leak
from .verdict import Judgement

SECTION = "resource leaks"


def leak_lines(leaks: Iterable[Leak]) -> str:
    return "\n".join("  " + leak.text().replace("\n", "\n  ") for leak in leaks)


def message(nodeid: str, judgement: Judgement, reason: str = "") -> str:
    """The text of a strict failure or a warning for one test."""
    parts = []
    if judgement.failing:
        parts.append(
            f"{nodeid} leaked {_count(judgement.failing)}:\n{leak_lines(judgement.failing)}"
        )
    if judgement.stale:
        kinds = ", ".join(judgement.stale)
        why = f" ({reason})" if reason else ""
        parts.append(
            f"{nodeid} is marked allow_leaks{why} but no longer leaks {kinds}: "
            "remove the marker (or the kinds that no longer leak)"
        )
    if judgement.fixed:
        parts.append(f"{nodeid} {fixed_text(judgement.fixed)}")
    return "\n".join(parts)


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
    context in its report). Warn mode: a ResourceLeakWarning pointing at the test."""
    if strict and not already_failed:
        pytest.fail(text, pytrace=False)
    elif strict:
        item.add_report_section("teardown", SECTION, text)
    else:
        warnings.warn_explicit(
            ResourceLeakWarning(text),
            ResourceLeakWarning,
            str(item.path),
            (item.location[1] or 0) + 1,
        )


def surface(texts: Iterable[str]) -> None:
    """Unraisable exceptions the plugin's own gc pass set off, reported on the judged test the
    way pytest reports its own (an error under ``filterwarnings = error``)."""
    for text in texts:
        warnings.warn(pytest.PytestUnraisableExceptionWarning(text), stacklevel=1)


def _count(leaks: tuple[Leak, ...]) -> str:
    return f"{len(leaks)} resource{'s' if len(leaks) != 1 else ''}"


def finding_lines(judgement: Judgement, *, allowed: bool = True) -> list[str]:
    """One text per finding, in the order of the report records; ``allowed=False`` leaves out
    what ``allow_leaks`` or the baseline expects."""
    lines = [leak.text() for leak in judgement.failing]
    if allowed:
        lines += [f"{leak.text()} (allowed)" for leak in judgement.tolerated]
    lines += [
        f"allow_leaks({kind!r}) is stale: the test no longer leaks it" for kind in judgement.stale
    ]
    if allowed:
        lines += [f"{leak.text()} (in baseline)" for leak in judgement.known]
    lines += [fixed_text([entry]) for entry in judgement.fixed]
    return lines


class Summary:
    """Collects the verdicts worth telling (local, or from xdist workers' reports)."""

    def __init__(self) -> None:
        self.tests: dict[str, list[Judgement]] = {}
        self.outside: list[Leak] = []
        self.problems: list[str] = []

    def add(self, nodeid: str, judgement: Judgement) -> None:
        self.tests.setdefault(nodeid, []).append(judgement)

    def write(self, terminal: Any, strict: bool) -> None:
        if not (self.tests or self.outside or self.problems):
            return
        terminal.write_sep("=", SECTION, yellow=not strict, red=strict)
        for problem in self.problems:
            terminal.write_line(f"plugin problem: {problem}", yellow=True)
        for nodeid, judgements in self.tests.items():
            terminal.write_line(f"{nodeid}:")
            for judgement in judgements:
                for line in finding_lines(judgement):
                    terminal.write_line("  " + line.replace("\n", "\n  "))
        if self.outside:
            terminal.write_line("outside any test (session teardown):")
            terminal.write_line(leak_lines(self.outside))
        leaking = sum(
            1
            for judgements in self.tests.values()
            if any(j.failing or j.stale or j.fixed for j in judgements)
        )
        allowed = len(self.tests) - leaking
        mode = "strict: these tests error" if strict else "warn mode: outcomes unchanged"
        line = f"{leaking} test(s) leaked resources ({mode})"
        if allowed:
            line += f"; {allowed} test(s) leaked only what allow_leaks or the baseline expects"
        terminal.write_line(line, bold=True)
