"""Tests that leaked what tracing can place, remembered in pytest's cache (as ``--lf``
remembers failures), so that the next run traces just them and says where each leak was
created (ini ``resource_trace_leakers = false`` turns it off).

A remembered test is forgotten once it runs without such a leak. Tracing is switched on only
around the windows of remembered tests: every other test costs what it costs without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from .report import Summary, traceable

CACHE_KEY = "resources/leakers"


class Leakers:
    """Reads the remembered tests at configure time, picks this run's among the collected
    items, and writes the new list at the end of the session (the xdist controller's, which
    sees every worker's collection and verdicts)."""

    def __init__(self, cache: pytest.Cache, summary: Summary, controller: bool) -> None:
        self.cache = cache
        self.summary = summary
        self.controller = controller
        remembered = cache.get(CACHE_KEY, [])
        self.remembered = frozenset(remembered if isinstance(remembered, list) else ())
        #: The remembered tests collected in this run: they are traced, and forgotten unless
        #: they leak again.
        self.collected: set[str] = set()
        #: This process's items to trace.
        self.items: set[pytest.Item] = set()

    def _collected(self, nodeids: Iterable[str]) -> None:
        self.collected.update(n for n in nodeids if n in self.remembered)

    @pytest.hookimpl(trylast=True)  # after -k, -m and other plugins deselected items
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if self.remembered:
            # Updated in place: the plugin holds this set for its per-test check.
            self.items.update(item for item in items if item.nodeid in self.remembered)
            self._collected(item.nodeid for item in self.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected(ids)

    def pytest_sessionfinish(self) -> None:
        if not self.controller:
            return
        # What a wider fixture leaked was created while the test that set it up ran.
        leaked = {
            leak.set_up_in or nodeid
            for nodeid, judgement in self.summary.tests.items()
            for leak in judgement.failing
            if traceable(leak)
        }
        kept = (self.remembered - self.collected) | leaked
        if kept != self.remembered:
            self.cache.set(CACHE_KEY, sorted(kept))
