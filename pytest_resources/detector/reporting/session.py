"""What the plugin calls for reports, the baseline and tracing; ``create`` gives ``None``
when none of them is asked for, so a default run pays nothing per test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from ..probes.base import Leak
from ..settings import Settings
from ..trace import Tracer
from ..verdict import Checker, Judgement, Window
from . import baseline, html_report, json_report
from .counts import Recorder


class Reporting:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.settings = settings
        self.rootpath = config.rootpath
        self.is_controller = not hasattr(config, "workerinput")
        wants_counts = settings.report is not None or settings.html is not None
        self.recorder = Recorder() if wants_counts else None
        self.builder = (
            json_report.ReportBuilder(config, settings)
            if wants_counts or settings.baseline_update
            else None
        )
        self.baseline: baseline.Baseline | None = None
        if settings.baseline is not None:
            known = baseline.load(settings.baseline) if settings.baseline.exists() else {}
            self.baseline = baseline.Baseline(known, settings.baseline_update)
        self.tracer = Tracer() if settings.trace else None
        if self.tracer is not None:
            self.tracer.start()
        #: Tests whose setup or call did not pass: they may not have reached their leak.
        self._incomplete: set[str] = set()
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

    def close(
        self, nodeid: str, judgement: Judgement, checker: Checker, window: Window | None
    ) -> Judgement:
        """The test's window closed: record its figures; the baseline may change the verdict."""
        if self.recorder is not None and window is not None:
            self.recorder.close(nodeid, checker.probes, window.before, checker.last)
        if self.baseline is not None and window is not None:
            complete = nodeid not in self._incomplete
            judgement = self.baseline.apply(nodeid, judgement, window.kinds, complete)
        return judgement

    # -- on every process, for every phase report ------------------------------------------

    def add(self, report: pytest.TestReport) -> None:
        """Every phase report, before anything reads it (the teardown one gets the figures)."""
        if report.when == "teardown":
            self._incomplete.discard(report.nodeid)
        elif not report.passed:
            self._incomplete.add(report.nodeid)
        if self.recorder is not None:
            self.recorder.attach(report)
        if self.builder is not None:
            self.builder.add(report)

    # -- on the controller -----------------------------------------------------------------

    def finish(self, exit_status: int, outside: Iterable[Leak], problems: Iterable[str]) -> None:
        if self.tracer is not None:
            self.tracer.stop()
        if not self.is_controller or self.builder is None:
            return
        s = self.settings
        if s.baseline is not None and self.baseline is not None and s.baseline_update:
            known = baseline.updated(self.baseline.known, self.builder.records(), self.rootpath)
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
