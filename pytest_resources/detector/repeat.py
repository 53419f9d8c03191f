"""Repeat-run growth detection: the test body runs again under tracemalloc."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .markers import marker_names
from .settings import Settings, settings_of

if TYPE_CHECKING:  # the memory module is imported only by runs that measure memory
    from .guard import Guard
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


#: Fixtures whose captured output the first run consumes: a repeated run, outside pytest's
#: capture of the call phase, would read nothing and fail.
CAPTURE_FIXTURES = ("capsys", "capsysbinary", "capfd", "capfdbinary", "capteesys")


class RepeatPlugin:
    """After a passing call (the warm-up), runs the body N more times and records growth.
    The repeats judge memory only (see Guard.repeating)."""

    def __init__(self, threshold: int, guard: Guard) -> None:
        self.threshold = threshold
        self.guard = guard
        #: Tests not repeated, each with why.
        self.not_repeated: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        test = settings_of(item)
        if test is not None and test.repeat:
            names = getattr(item, "fixturenames", ())
            capture = next((name for name in CAPTURE_FIXTURES if name in names), None)
            if capture is not None:
                self.not_repeated.append(
                    f"{item.nodeid}: uses {capture}, whose output a repeated run cannot capture"
                )
                return result
            from .probes.memory import measure_growth

            with self.guard.repeating():
                growth = measure_growth(item.runtest, test.repeat, self.threshold, test.grace)
            item.stash[GROWTH_KEY] = growth
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.not_repeated:
            terminalreporter.write_line(f"resources: not repeated for memory growth: {line}")
