"""What this machine can start, found without starting anything, and what a run went without.

After collection, a run that needs a broker says which brokers it could really start (a
container only with testcontainers installed, a local binary only when one is found); the
closing lines say, per broker a run lacked, how many tests were skipped or ran on fakeredis
and what provides it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import Kind, Unavailable
from .kinds import KIND_SPECS

if TYPE_CHECKING:
    from .settings import BrokerSettings

KINDS = tuple(KIND_SPECS.values())
#: The user property a test gets when fakeredis served the Redis it uses.
FAKE_PROPERTY = "resource_broker_fake"
#: How a broker-less skip reads (from NoBroker and the requires_broker marker).
SKIP_REASON = re.compile(r"\b(?:no (\w+) broker: |needs a real (\w+) broker; )")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _binary(kind: Kind) -> str | None:
    try:
        return kind.binary()
    except Unavailable:
        return None


def can_start(settings: BrokerSettings) -> str:
    """``resources: can start …; nothing for …``: only what can really start (read after
    collection, and only in a run that needs a broker: importing the kinds costs ~30 M
    instructions a pytest start-up would otherwise pay)."""
    containers = "container" in settings.providers and _installed("testcontainers")
    can, cannot = [], []
    for kind in KINDS:
        if kind.name in settings.urls:
            continue
        links = []
        if "process" in settings.providers and (found := _binary(kind)):
            links.append(os.path.basename(found))
        fake = kind.name == "redis" and settings.mode == "auto"
        if "fake" in settings.providers and fake and _installed("fakeredis"):
            links.append("fakeredis")
        if links:
            can.append(f"{kind.name} ({', '.join(links)})")
        elif not containers:
            cannot.append(kind.name)
    if containers:
        can.append("containers if Docker answers")
    parts = []
    if can:
        parts.append("can start " + ", ".join(can))
    if cannot:
        why = " (testcontainers is not installed)" if "container" in settings.providers else ""
        parts.append(f"nothing for {', '.join(cannot)}{why}")
    return "resources: " + "; ".join(parts or ["nothing to start"])


def went_without(reports: Iterable[Any], settings: BrokerSettings) -> list[str]:
    """One line per broker the run lacked: the tests it cost, and what provides it."""
    skipped: dict[str, set[str]] = {}
    faked: set[str] = set()
    for report in reports:
        if report.skipped:
            found = isinstance(report.longrepr, tuple) and SKIP_REASON.search(report.longrepr[2])
            if found:
                skipped.setdefault(found.group(1) or found.group(2), set()).add(report.nodeid)
        elif any(name == FAKE_PROPERTY for name, _ in getattr(report, "user_properties", ())):
            faked.add(report.nodeid)
    lines = []
    for kind in KINDS:
        tests = skipped.get(kind.name, set())
        fake = faked - tests
        if not tests and not (kind.name == "redis" and fake):
            continue
        cost = [f"{len(tests)} test(s) skipped"] if tests else []
        if kind.name == "redis" and fake:
            cost.append(f"{len(fake)} test(s) ran on fakeredis, not a real Redis")
        lines.append(f"resources: {kind.name}: {' and '.join(cost)}; {_provide(kind, settings)}")
    return lines


def _provide(kind: Kind, settings: BrokerSettings) -> str:
    env = f"set PYTEST_RESOURCES_{kind.name.upper()}_URL"
    if settings.mode == "off":
        return f"brokers are off: --resource-brokers=auto starts them, or {env}"
    if "process" in settings.providers and _binary(kind) is None:
        return f"{kind.provide}, or {env}"
    # The binary is there: the skip reasons (-rs) say why it did not serve.
    return f"see the skip reasons (-rs), or {env}"
