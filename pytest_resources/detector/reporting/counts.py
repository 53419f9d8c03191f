"""Per-test figures for the reports: how many threads, tasks, fds and child processes existed
at each edge of a test's window, and the process's RSS. Taken only when a report is asked for.

The figures ride on the teardown report (attribute ``resource_counts``, see ``results``), so
they cross from xdist workers to the controller with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..probes.base import Probe
from ..probes.memory import current_rss, max_rss


def rss() -> int | None:
    """Resident set size in bytes (None where it cannot be read)."""
    try:
        return current_rss()
    except Exception:  # psutil's own errors off Linux
        return None


def counts(probes: Mapping[str, Probe], snapshots: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, snap in snapshots.items():
        probe = probes.get(kind)
        number = probe.count(snap) if probe is not None and snap is not None else None
        if number is not None:
            out[kind] = number
    return out


class Recorder:
    """Takes the figures at each window edge."""

    def __init__(self) -> None:
        self._rss_before: int | None = None

    def open(self) -> None:
        self._rss_before = rss()

    def close(
        self, probes: Mapping[str, Probe], before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> dict[str, Any]:
        rss_after = rss()
        return {
            "before": counts(probes, before),
            "after": counts(probes, {kind: after.get(kind) for kind in before}),
            "rss_before": self._rss_before,
            "rss_after": rss_after,
            # The kernel updates its high-water mark lazily; never report a peak below a reading.
            "rss_peak": max(max_rss(), rss_after or 0, self._rss_before or 0),
        }
