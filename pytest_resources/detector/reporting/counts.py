"""Per-test figures for the reports: how many threads, tasks, fds and child processes existed
at each edge of a test's window, and the process's RSS. Taken only when a report is asked for.

The figures ride on the teardown report (attribute ``resource_counts``), so they cross from
xdist workers to the controller with it.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

import pytest

from ..probes.base import Probe
from ..probes.memory import current_rss

COUNTS_ATTR = "resource_counts"
# ru_maxrss is in KiB on Linux (bytes on macOS, where this reads a little high).
MAXRSS_UNIT = 1024


def rss() -> int | None:
    """Resident set size in bytes (None where it cannot be read)."""
    try:
        return current_rss()
    except Exception:  # psutil's own errors off Linux
        return None


def peak_rss() -> int:
    """The process's highest RSS so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_UNIT


def counts(probes: Mapping[str, Probe], snapshots: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, snap in snapshots.items():
        probe = probes.get(kind)
        number = probe.count(snap) if probe is not None and snap is not None else None
        if number is not None:
            out[kind] = number
    return out


class Recorder:
    """Takes the figures at each window edge and hands them to the teardown report."""

    def __init__(self) -> None:
        self._rss_before: int | None = None
        self._pending: dict[str, dict[str, Any]] = {}

    def open(self) -> None:
        self._rss_before = rss()

    def close(
        self,
        nodeid: str,
        probes: Mapping[str, Probe],
        before: Mapping[str, Any],
        after: Mapping[str, Any],
    ) -> None:
        rss_after = rss()
        self._pending[nodeid] = {
            "before": counts(probes, before),
            "after": counts(probes, {kind: after.get(kind) for kind in before}),
            "rss_before": self._rss_before,
            "rss_after": rss_after,
            # The kernel updates its high-water mark lazily; never report a peak below a reading.
            "rss_peak": max(peak_rss(), rss_after or 0, self._rss_before or 0),
        }

    def attach(self, report: pytest.TestReport) -> None:
        found = self._pending.pop(report.nodeid, None)
        if found is not None:
            setattr(report, COUNTS_ATTR, found)
