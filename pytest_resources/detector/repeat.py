"""Repeat-run growth detection: the test body runs again under tracemalloc."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from .markers import marker_names
from .settings import Settings, settings_of

if TYPE_CHECKING:  # the memory module is imported only by runs that measure memory
    from .probes.memory import Growth

GROWTH_KEY: pytest.StashKey[Growth] = pytest.StashKey()


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
