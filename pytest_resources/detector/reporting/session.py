"""What the plugin calls for report files and the baseline file; made only for runs that ask
for one, so a default run pays nothing per test. Reading and writing only: the verdict,
baseline included, is decided in ``verdict.decide``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from ...xdist_roles import is_worker
from ..probes.base import Leak
from ..settings import Settings
from ..verdict import Checker, KnownLeaks, Window
from . import baseline, html_report, json_report
from .counts import Recorder


class Reporting:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.settings = settings
        self.rootpath = config.rootpath
        wants_counts = settings.report is not None or settings.html is not None
        self.recorder = Recorder() if wants_counts else None
        # Files are written by the process that sees every test: not an xdist worker.
        self.builder = (
            json_report.ReportBuilder(config, settings)
            if (wants_counts or settings.baseline_update) and not is_worker(config)
            else None
        )
        #: The baseline file's entries, for the verdict (``Guard``).
        self.known: KnownLeaks | None = None
        if settings.baseline is not None:
            known = baseline.load(settings.baseline) if settings.baseline.exists() else {}
            self.known = KnownLeaks(known, settings.baseline_update)
        self.written: list[str] = []

    @classmethod
    def create(cls, config: pytest.Config, settings: Settings) -> Reporting:
        """For a run that asked for a report (``settings.reports``); a bad setting is a
        one-line ``pytest.UsageError``."""
        try:
            return cls(config, settings)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    # -- on the process that runs the test -------------------------------------------------

    def open(self) -> None:
        if self.recorder is not None:
            self.recorder.open()

    @property
    def has_baseline(self) -> bool:
        return self.known is not None

    def counts(self, checker: Checker, window: Window) -> dict[str, Any] | None:
        """The test's window closed: its figures for the report files (None: none asked)."""
        if self.recorder is None:
            return None
        return self.recorder.close(checker.probes, window.before, checker.last)

    # -- where the reports of every test arrive --------------------------------------------

    def add(self, report: pytest.TestReport) -> None:
        """Every phase report, once the carrier put the test's results on it."""
        if self.builder is not None:
            self.builder.add(report)

    def finish(self, exit_status: int, outside: Iterable[Leak], problems: Iterable[str]) -> None:
        if self.builder is None:
            return
        s = self.settings
        if s.baseline is not None and self.known is not None and s.baseline_update:
            known = baseline.updated(self.known.known, self.builder.records(), self.rootpath)
            baseline.dump(s.baseline, known)
            total = sum(sum(c.values()) for c in known.values())
            self.written.append(
                f"baseline written to {s.baseline} ({total} known leak(s) in {len(known)} test(s))"
            )
        if s.report is None and s.html is None:
            return
        document = self.builder.document(exit_status, outside, problems)
        if s.report is not None:
            json_report.write(s.report, document)
            self.written.append(f"JSON report written to {s.report}")
        if s.html is not None:
            html_report.write(s.html, document)
            self.written.append(f"HTML report written to {s.html}")

    def summary(self, terminal: Any) -> None:
        for line in self.written:
            terminal.write_line(f"resources: {line}")
