"""The HTML report: one self-contained file (inline styles and SVG, no script, no network)
with a summary, a timeline of resource counts across the session and the leaking tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from ..probes.base import created_text

#: (series id, title, where the value comes from)
SERIES = (
    ("threads", "threads", "counts"),
    ("tasks", "asyncio tasks", "counts"),
    ("fds", "file descriptors", "counts"),
    ("processes", "child processes", "counts"),
    ("rss", "RSS (MiB)", "memory"),
)
WIDTH, HEIGHT, PAD = 960, 120, 36
#: Beyond this many tests the points lose their hover titles (the file stays small).
MAX_POINTS = 3000
MIB = 1024 * 1024

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px}
.summary{display:flex;gap:24px;flex-wrap:wrap}
.summary div{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.summary b{display:block;font-size:22px}
.bad b{color:#b3261e}
svg{display:block;margin:6px 0 14px;background:#fafafa;border:1px solid #eee}
svg text{font-size:11px;fill:#555}
table{border-collapse:collapse;width:100%}
td,th{border-top:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
pre{margin:4px 0;white-space:pre-wrap;font-size:12px}
.status-leak{color:#b3261e} .status-allowed,.status-baselined{color:#6b6b6b}
"""
COLOURS = ("#1f6feb", "#e36209", "#2da44e", "#8250df", "#bf3989", "#57606a")


def render(document: Mapping[str, Any]) -> str:
    tests: list[Mapping[str, Any]] = document["tests"]
    data = json.dumps(document, ensure_ascii=False).replace("</", "<\\/")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>resource leaks report</title>",
            f"<style>{STYLE}</style></head><body>",
            "<h1>Resource leaks</h1>",
            _summary(document),
            "<h2>Timeline</h2>",
            "<p>Count at the end of each test, in the order tests finished; "
            "red ticks mark tests that leaked.</p>",
            *(_chart(tests, *series) for series in SERIES),
            "<h2>Leaking tests</h2>",
            _table(tests, document.get("outside", [])),
            f'<script type="application/json" id="report-data">{data}</script>',
            "</body></html>",
        ]
    )


def write(path: Path, document: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(document), encoding="utf-8")
    os.replace(tmp, path)


def _summary(document: Mapping[str, Any]) -> str:
    session, summary = document["session"], document["summary"]
    by_kind = ", ".join(f"{kind} {n}" for kind, n in summary["leaks_by_kind"].items()) or "none"
    cells = [
        ("tests", "tests run", summary["tests"], False),
        ("leaking-tests", "tests that leaked", summary["leaking_tests"], True),
        ("leaks", "leaks", summary["leaks"], True),
        ("expected", "allowed / in baseline", summary["allowed"] + summary["baselined"], False),
    ]
    boxes = "".join(
        f'<div class="{"bad" if bad and value else ""}"><b id="{key}">{value}</b>{label}</div>'
        for key, label, value, bad in cells
    )
    mode = "strict" if session["strict"] else "warn"
    checks = ", ".join(session["checks"]) or "off"
    return (
        f'<div class="summary">{boxes}</div>'
        f"<p>Leaks by kind: {escape(by_kind)}. Checked: {escape(checks)}; mode: {mode}; "
        f"pytest {escape(session['pytest_version'])}, Python {escape(session['python_version'])}"
        f", plugin {escape(session['plugin_version'])}; started {escape(session['started'])}.</p>"
    )


def _value(test: Mapping[str, Any], series: str, source: str) -> float | None:
    if source == "memory":
        rss = (test.get("memory") or {}).get("rss_after")
        return None if rss is None else rss / MIB
    value = ((test.get("counts") or {}).get("after") or {}).get(series)
    return None if value is None else float(value)


def _leaked(test: Mapping[str, Any]) -> bool:
    return bool(
        test["stale_allow_leaks"]
        or test["fixed_baseline"]
        or any(leak["status"] == "leak" for leak in test["leaks"])
    )


def _chart(tests: list[Mapping[str, Any]], series: str, title: str, source: str) -> str:
    values = [_value(test, series, source) for test in tests]
    known = [v for v in values if v is not None]
    if not known:
        return ""
    # From the lowest to the highest value: growth of a few MiB on a 40 MiB base shows.
    low, high = min(known), max(known)
    scale = (high - low) or 1.0
    span = max(len(tests) - 1, 1)

    def x(index: int) -> float:
        return PAD + index * (WIDTH - 2 * PAD) / span

    def y(value: float) -> float:
        return HEIGHT - PAD / 2 - (value - low) * (HEIGHT - PAD) / scale

    lines: dict[str, list[str]] = {}
    points = []
    for index, (test, value) in enumerate(zip(tests, values, strict=True)):
        if value is None:
            continue
        lines.setdefault(test.get("worker") or "", []).append(f"{x(index):.1f},{y(value):.1f}")
        if len(tests) <= MAX_POINTS:
            label = escape(f"{test['nodeid']}: {value:.1f}" if source == "memory" else
                           f"{test['nodeid']}: {value:.0f}")  # fmt: skip
            points.append(
                f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="2" '
                f'fill="{COLOURS[0]}"><title>{label}</title></circle>'
            )
    polylines = "".join(
        f'<polyline class="series" data-worker="{escape(worker)}" fill="none" '
        f'stroke="{COLOURS[n % len(COLOURS)]}" stroke-width="1.5" points="{" ".join(pts)}"/>'
        for n, (worker, pts) in enumerate(sorted(lines.items()))
    )
    ticks = "".join(
        f'<line class="leak-tick" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{HEIGHT - 8}" '
        f'y2="{HEIGHT}" stroke="#b3261e" stroke-width="2"><title>{escape(t["nodeid"])}</title>'
        "</line>"
        for i, t in enumerate(tests)
        if _leaked(t)
    )
    digits = 1 if source == "memory" else 0
    scale_text = f"{low:.{digits}f}" if low == high else f"{low:.{digits}f} to {high:.{digits}f}"
    return (
        f'<svg id="chart-{series}" class="chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f'<text x="{PAD}" y="12">{escape(title)}: {scale_text}</text>'
        f"{polylines}{''.join(points)}{ticks}</svg>"
    )


def _table(tests: Iterable[Mapping[str, Any]], outside: list[Mapping[str, Any]]) -> str:
    rows = []
    for test in tests:
        items = [_leak_cell(leak) for leak in test["leaks"]]
        items += [
            f'<div class="status-leak">allow_leaks({escape(kind)}) is stale: the test no longer '
            "leaks it</div>"
            for kind in test["stale_allow_leaks"]
        ]
        items += [
            f'<div class="status-leak">no longer leaks {escape(e["kind"])} '
            f"{escape(repr(e['signature']))} listed in the baseline</div>"
            for e in test["fixed_baseline"]
        ]
        if items:
            rows.append(
                f'<tr class="leaking-test"><td>{escape(test["nodeid"])}</td>'
                f"<td>{escape(test['outcome'])}</td><td>{''.join(items)}</td></tr>"
            )
    if outside:
        cells = "".join(_leak_cell(leak) for leak in outside)
        rows.append(f"<tr><td>outside any test</td><td></td><td>{cells}</td></tr>")
    if not rows:
        return '<p id="no-leaks">No test leaked.</p>'
    head = "<tr><th>test</th><th>outcome</th><th>leaks</th></tr>"
    return f'<table id="leaking-tests-table">{head}{"".join(rows)}</table>'


def _leak_cell(leak: Mapping[str, Any]) -> str:
    details = leak["details"]
    if leak["created"]:
        frames = tuple((f["file"], f["line"], f["function"]) for f in leak["created"])
        details = "\n".join(filter(None, (details, created_text(frames))))
    body = f"<pre>{escape(details)}</pre>" if details else ""
    status = leak["status"]
    return (
        f'<div class="leak status-{status}"><b>{escape(leak["kind"])}</b>: '
        f"{escape(leak['identity'])} <i>({status})</i>{body}</div>"
    )
