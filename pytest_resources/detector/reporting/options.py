"""The report, trace and baseline command-line options and ini keys (``resources`` group)."""

from __future__ import annotations

import pytest


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("resources")
    group.addoption(
        "--resource-report",
        metavar="PATH",
        default=None,
        help="write a JSON report of every test's leaks and resource counts (ini: resource_report)",
    )
    group.addoption(
        "--resource-html",
        metavar="PATH",
        default=None,
        help="write a self-contained HTML report with a session timeline (ini: resource_html)",
    )
    group.addoption(
        "--resource-trace",
        action="store_true",
        default=None,
        help="record where threads, tasks, files, sockets and processes are created and show "
        "it in leak reports; slows the run (ini: resource_trace)",
    )
    group.addoption(
        "--resource-baseline",
        metavar="PATH",
        default=None,
        help="known leaks: only leaks not in this file count, and listed leaks that are gone "
        "must be removed from it (ini: resource_baseline)",
    )
    group.addoption(
        "--resource-baseline-update",
        action="store_true",
        default=False,
        help="write this run's leaks into the --resource-baseline file instead of failing on them",
    )
    parser.addini("resource_report", "path of the JSON leak report", default="")
    parser.addini("resource_html", "path of the HTML leak report", default="")
    parser.addini("resource_trace", "record creation sites (true/false)", default="false")
    parser.addini(
        "resource_trace_leakers",
        "trace the tests that leaked in the last run, from pytest's cache (true/false)",
        default="true",
    )
    parser.addini("resource_baseline", "path of the known-leaks baseline file", default="")
