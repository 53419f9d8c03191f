"""Telling: leak messages, report records that travel with xdist, and the terminal section."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from ..errors import ResourceLeakWarning
from .probes.base import Leak
from .verdict import Judgement

REPORT_ATTR = "resource_leaks"
MEMORY_ATTR = "resource_memory"
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


def _count(leaks: list[Leak]) -> str:
    return f"{len(leaks)} resource{'s' if len(leaks) != 1 else ''}"


def records(judgement: Judgement) -> list[dict[str, Any]]:
    """JSON-ready records; they ride on the teardown report (and so cross xdist)."""
    out = [dict(leak.to_dict(), allowed=False) for leak in judgement.failing]
    out += [dict(leak.to_dict(), allowed=True) for leak in judgement.tolerated]
    out += [
        {"kind": kind, "identity": "allow_leaks marker is stale", "stale": True, "allowed": False}
        for kind in judgement.stale
    ]
    out += [dict(leak.to_dict(), allowed=True, baselined=True) for leak in judgement.known]
    out += [
        {
            "kind": kind,
            "identity": "baseline entry no longer leaks",
            "signature": sig,
            "count": count,
            "fixed": True,
            "allowed": False,
        }
        for kind, sig, count in judgement.fixed
    ]
    return out


def record_text(record: Mapping[str, Any]) -> str:
    if record.get("stale"):
        return f"allow_leaks({record['kind']!r}) is stale: the test no longer leaks it"
    if record.get("fixed"):
        return fixed_text([(record["kind"], record["signature"], record.get("count", 1))])
    leak = Leak.from_dict(record)
    text = leak.text()
    if record.get("baselined"):
        return f"{text} (in baseline)"
    return f"{text} (allowed)" if record.get("allowed") else text


class Summary:
    """Collects leak records from teardown reports (local or from xdist workers)."""

    def __init__(self) -> None:
        self.tests: dict[str, list[dict[str, Any]]] = {}
        self.outside: list[Leak] = []
        self.problems: list[str] = []

    def add(self, report: pytest.TestReport) -> None:
        # From the report's own attributes: a getattr() that misses (most tests) raises.
        found = vars(report).get(REPORT_ATTR)
        if found:
            self.tests.setdefault(report.nodeid, []).extend(found)

    def write(self, terminal: Any, strict: bool) -> None:
        if not (self.tests or self.outside or self.problems):
            return
        terminal.write_sep("=", SECTION, yellow=not strict, red=strict)
        for problem in self.problems:
            terminal.write_line(f"plugin problem: {problem}", yellow=True)
        for nodeid, found in self.tests.items():
            terminal.write_line(f"{nodeid}:")
            for record in found:
                terminal.write_line("  " + record_text(record).replace("\n", "\n  "))
        if self.outside:
            terminal.write_line("outside any test (session teardown):")
            terminal.write_line(leak_lines(self.outside))
        leaking = sum(
            1 for found in self.tests.values() if any(not r.get("allowed") for r in found)
        )
        allowed = len(self.tests) - leaking
        mode = "strict: these tests error" if strict else "warn mode: outcomes unchanged"
        line = f"{leaking} test(s) leaked resources ({mode})"
        if allowed:
            line += f"; {allowed} test(s) leaked only what allow_leaks or the baseline expects"
        terminal.write_line(line, bold=True)
