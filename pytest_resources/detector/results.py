"""How a test's verdict travels: it lives on ``item.stash`` from the moment it is decided, and
one carrier puts it on the test's teardown report, where junitxml, users' hooks and xdist's
serialisation find it. The xdist controller, which runs no test, reads it back from the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .probes.base import Leak
from .report import POLLUTION_SECTION, View, finding_lines, name_leaks, pollution_text
from .verdict import Judgement, Pollution

if TYPE_CHECKING:
    from .report import Summary
    from .reporting.session import Reporting

T = TypeVar("T")

#: The verdict of a test that had something to tell (leaks, allowances, memory figures).
JUDGEMENT_KEY = pytest.StashKey[Judgement]()
#: Per-kind counts and RSS at the window's edges, for report files.
COUNTS_KEY = pytest.StashKey[dict[str, Any]]()
#: The one line naming a strict test's leaks, for its error's short summary (``name_leaks``).
HEADLINE_KEY = pytest.StashKey[str]()
#: Set when the test's setup or call did not pass: it may not have reached its leak.
INCOMPLETE_KEY = pytest.StashKey[bool]()

#: Attributes of the teardown report (public: documented in docs/reference.md).
REPORT_ATTR = "resource_leaks"
MEMORY_ATTR = "resource_memory"
COUNTS_ATTR = "resource_counts"


def records(judgement: Judgement) -> list[dict[str, Any]]:
    """JSON-ready leak records, in the order the terminal lists them."""
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


def from_records(found: Iterable[Mapping[str, Any]]) -> Judgement:
    """The inverse of ``records``, for reports that crossed from an xdist worker."""
    failing: list[Leak] = []
    tolerated: list[Leak] = []
    stale: list[str] = []
    known: list[Leak] = []
    fixed: list[tuple[str, str, int]] = []
    for record in found:
        if record.get("stale"):
            stale.append(str(record["kind"]))
        elif record.get("fixed"):
            fixed.append((str(record["kind"]), str(record["signature"]), record.get("count", 1)))
        elif record.get("baselined"):
            known.append(Leak.from_dict(record))
        elif record.get("allowed"):
            tolerated.append(Leak.from_dict(record))
        else:
            failing.append(Leak.from_dict(record))
    return Judgement(tuple(failing), tuple(tolerated), tuple(stale), tuple(known), tuple(fixed))


def memory_record(judgement: Judgement) -> dict[str, Any] | None:
    """The JSON-ready memory figures of one test (None when it measured none)."""
    if judgement.figures is None and judgement.growth is None:
        return None
    record: dict[str, Any] = judgement.figures.to_dict() if judgement.figures else {}
    if judgement.growth is not None:
        record["growth"] = judgement.growth.to_dict()
    return record


class ReportCarrier:
    """Puts each test's results from ``item.stash`` on its teardown report and hands them to
    the summary; feeds report files every phase report.

    A tryfirst ``pytest_runtest_logreport`` hook, so junitxml, xdist's serialisation and the
    users' own logreport hooks find the results on the report. Registered on demand: even a
    plain hook costs three calls per test (~15 k instructions; the makereport wrapper it
    replaced cost ~26 k, ``benchmarks/overhead.py --instructions``), so a run pays for it
    from its first test that has something to carry, or from the start when report files
    need every report. Registered during a test's teardown hook, it still sees that test's
    teardown report. A report logged late (pytest-rerunfailures logs a test's reports after
    its last phase) still finds its test: ``expect`` names it by nodeid until then.
    """

    def __init__(self, summary: Summary, reporting: Reporting | None) -> None:
        self.summary = summary
        self.reporting = reporting
        #: Tests whose results wait on their stash for the teardown report, by nodeid.
        self._expected: dict[str, pytest.Item] = {}

    def expect(self, item: pytest.Item) -> None:
        self._expected[item.nodeid] = item

    @pytest.hookimpl(tryfirst=True)  # before junitxml, xdist and the terminal read the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            item = self._expected.pop(report.nodeid, None)
            if item is not None:
                self._attach(item, report)
            else:
                self.summary.add(report.nodeid, None, report.failed)
        if self.reporting is not None:
            self.reporting.add(report)

    def _attach(self, item: pytest.Item, report: pytest.TestReport) -> None:
        stash = item.stash
        # Taken, not read: a rerun of the same item (pytest-rerunfailures, pytest-repeat)
        # must not carry an earlier attempt's results.
        counts = _take(stash, COUNTS_KEY)
        if counts is not None:
            setattr(report, COUNTS_ATTR, counts)
        judgement = _take(stash, JUDGEMENT_KEY)
        headline = _take(stash, HEADLINE_KEY)
        # Each attempt's teardown reaches the summary, clean or not: it keeps a test's last
        # attempt (pytest-rerunfailures), so a rerun tells its own leaks, not the sum.
        self.summary.add(report.nodeid, judgement, report.failed)
        if judgement is None:
            return
        if (memory := memory_record(judgement)) is not None:
            setattr(report, MEMORY_ATTR, memory)
        if not judgement.clean:
            setattr(report, REPORT_ATTR, records(judgement))
            if report.failed and headline is not None:
                name_leaks(report, headline)
            # On this report, not the item, which a rerun keeps: junitxml reads them here.
            report.user_properties.extend(
                ("resource_leak", line) for line in finding_lines(judgement, allowed=False)
            )


class IncompleteTracker:
    """With a baseline: marks a test whose setup or call raised (failed, skipped, xfailed),
    which may not have reached its leak, so its silence is not a fix. A makereport hook, not
    the carrier's logreport one: that can come after the verdict (pytest-rerunfailures)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> None:
        if call.excinfo is not None and call.when != "teardown":
            item.stash[INCOMPLETE_KEY] = True


def _take(stash: pytest.Stash, key: pytest.StashKey[T]) -> T | None:
    # ``in`` first: Stash.get raises and catches a KeyError for a missing key, which costs
    # four times as much, and most keys are missing from most tests.
    if key not in stash:
        return None
    value = stash[key]
    del stash[key]
    return value


class ControllerFeed:
    """On the xdist controller: the workers' tests reach it only as reports."""

    def __init__(self, summary: Summary, reporting: Reporting | None) -> None:
        self.summary = summary
        self.reporting = reporting

    @pytest.hookimpl(tryfirst=True)  # before junitxml and the terminal read the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            found = vars(report).get(REPORT_ATTR)  # a getattr() that misses raises inside
            self.summary.add(report.nodeid, from_records(found) if found else None, report.failed)
        if self.reporting is not None:
            self.reporting.add(report)


class PollutionNotes:
    """Adds to a failed test's call report the state earlier tests left that is still in
    effect (see verdict.Pollution). Registered once a test leaves some: until then no test
    pays for a ``pytest_runtest_makereport`` wrapper."""

    def __init__(self, pollution: Pollution) -> None:
        self.pollution = pollution

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" and report.failed and self.pollution:
            polluters = self.pollution.in_effect()
            if polluters:
                text = pollution_text(polluters, View.of(item.config))
                report.sections.append((POLLUTION_SECTION, text))
        return report
