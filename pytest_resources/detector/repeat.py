"""Repeat-run growth detection: the test body runs again under tracemalloc."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .markers import marker_names
from .settings import Settings, settings_of

if TYPE_CHECKING:  # the memory module is imported only by runs that measure memory
    from .probes.memory import Growth, MemoryFigures

GROWTH_KEY = pytest.StashKey["Growth"]()


def wants_repeat(settings: Settings, items: list[pytest.Item]) -> bool:
    if settings.repeat:
        return True
    return any(
        "repeat" in marker.kwargs
        for item in items
        if "resources" in marker_names(item)
        for marker in item.iter_markers("resources")
    )


class RepeatPlugin:
    """After a passing call (the warm-up), runs the body N more times and records growth."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        test = settings_of(item)
        if test is not None and test.repeat:
            from .probes.memory import measure_growth

            item.stash[GROWTH_KEY] = measure_growth(item.runtest, test.repeat, self.threshold)
        return result


def memory_record(figures: MemoryFigures | None, growth: Growth | None) -> dict[str, Any]:
    """The JSON-ready memory figures of one test."""
    record: dict[str, Any] = figures.to_dict() if figures is not None else {}
    if growth is not None:
        record["growth"] = growth.to_dict()
    return record
