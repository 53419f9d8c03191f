"""The JSON report: built on the controller from what travels in test reports, so a run with
xdist writes one file. Its shape is versioned and described by ``report-schema.json``."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ..probes.base import Leak
from ..results import COUNTS_ATTR, MEMORY_ATTR, REPORT_ATTR
from ..settings import Settings

SCHEMA_NAME = "pytest-resource-guard/report"
#: Bumped when a field changes meaning or goes away; new optional fields keep the version.
SCHEMA_VERSION = 1
SCHEMA_FILE = "report-schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every report validates against."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@dataclass
class TestEntry:
    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    worker: str | None = None
    #: Read when the document is built: the plugin attaches records after this sees it.
    teardown: pytest.TestReport | None = None


class ReportBuilder:
    """Collects every phase report of every test (local or from xdist workers)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.started = time.time()
        self.tests: dict[str, TestEntry] = {}

    def add(self, report: pytest.TestReport) -> None:
        entry = self.tests.get(report.nodeid)
        if entry is None:
            entry = self.tests[report.nodeid] = TestEntry(report.nodeid)
        entry.duration += report.duration
        entry.worker = getattr(report, "worker_id", None) or entry.worker
        category = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[0]
        entry.outcome = _outcome(entry.outcome, report.when, category)
        if report.when == "teardown":
            entry.teardown = report

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Leak records of every test that reached teardown, by nodeid."""
        return {
            nodeid: list(getattr(entry.teardown, REPORT_ATTR, None) or ())
            for nodeid, entry in self.tests.items()
            if entry.teardown is not None
        }

    def document(
        self, exit_status: int, outside: Iterable[Leak], problems: Iterable[str]
    ) -> dict[str, Any]:
        tests = [_test(entry) for entry in self.tests.values()]
        leaks = [leak for test in tests for leak in test["leaks"]]
        counted = [leak for leak in leaks if leak["status"] == "leak"]
        s = self.settings
        return {
            "schema": SCHEMA_NAME,
            "version": SCHEMA_VERSION,
            "session": {
                "plugin_version": _plugin_version(),
                "pytest_version": pytest.__version__,
                "python_version": platform.python_version(),
                "platform": platform.platform(),
                "started": datetime.fromtimestamp(self.started, UTC).isoformat(),
                "duration": round(time.time() - self.started, 6),
                "exit_status": int(exit_status),
                "args": [str(arg) for arg in self.config.invocation_params.args],
                "checks": list(s.checks) if s.enabled else [],
                "strict": s.strict,
                "grace": s.grace,
                "trace": s.trace,
                "workers": len({t["worker"] for t in tests if t["worker"]}),
                "baseline": str(s.baseline) if s.baseline else None,
            },
            "summary": {
                "tests": len(tests),
                "outcomes": dict(Counter(test["outcome"] for test in tests)),
                "leaking_tests": sum(
                    1
                    for t in tests
                    if t["stale_allow_leaks"]
                    or t["fixed_baseline"]
                    or any(leak["status"] == "leak" for leak in t["leaks"])
                ),
                "leaks": len(counted),
                "leaks_by_kind": dict(Counter(leak["kind"] for leak in counted)),
                "allowed": sum(1 for leak in leaks if leak["status"] == "allowed"),
                "baselined": sum(1 for leak in leaks if leak["status"] == "baselined"),
            },
            "tests": tests,
            "outside": [_leak(leak.to_dict()) for leak in outside],
            "problems": list(problems),
        }


def write(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as JSON, atomically (a reader never sees half a report)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _plugin_version() -> str:
    module = sys.modules.get("pytest_resources")
    return str(getattr(module, "__version__", "unknown"))


# Categories pytest_report_teststatus gives; a passing setup or teardown gives "".
def _outcome(current: str, when: str, category: str) -> str:
    if when == "setup":
        return category or "passed"
    if when == "call":
        return category if current == "passed" and category else current
    if category in ("error", "failed") and current in ("passed", "skipped", "xfailed"):
        return "error"
    return current


def _test(entry: TestEntry) -> dict[str, Any]:
    counts: dict[str, Any] = getattr(entry.teardown, COUNTS_ATTR, None) or {}
    records: list[dict[str, Any]] = getattr(entry.teardown, REPORT_ATTR, None) or []
    return {
        "nodeid": entry.nodeid,
        "outcome": entry.outcome,
        "duration": round(entry.duration, 6),
        "worker": entry.worker,
        "counts": {"before": counts["before"], "after": counts["after"]} if counts else None,
        "memory": _memory(counts, getattr(entry.teardown, MEMORY_ATTR, None)),
        "leaks": [_leak(r) for r in records if not (r.get("stale") or r.get("fixed"))],
        "stale_allow_leaks": [r["kind"] for r in records if r.get("stale")],
        "fixed_baseline": [
            {"kind": r["kind"], "signature": r["signature"], "count": r.get("count", 1)}
            for r in records
            if r.get("fixed")
        ],
    }


def _memory(counts: Mapping[str, Any], measured: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """RSS at the window's edges, plus the memory kind's per-test peak and repeat growth
    when the test measured them."""
    if not counts and not measured:
        return None
    memory = {k: counts.get(k) for k in ("rss_before", "rss_after", "rss_peak")}
    if measured:
        memory.update(measured)
        memory["rss_peak"] = measured.get("peak", memory["rss_peak"])
    return memory


def _leak(record: Mapping[str, Any]) -> dict[str, Any]:
    if record.get("baselined"):
        status = "baselined"
    elif record.get("allowed"):
        status = "allowed"
    else:
        status = "leak"
    return {
        "kind": record["kind"],
        "identity": record["identity"],
        "details": record.get("details", ""),
        "signature": record.get("signature") or record["identity"],
        "owner": record.get("owner", ""),
        "status": status,
        "created": [
            {"file": file, "line": line, "function": func}
            for file, line, func in record.get("created", ())
        ],
    }
