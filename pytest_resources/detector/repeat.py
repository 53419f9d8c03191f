"""Memory traced per test: growth over repeated runs of the body, and what the test kept."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .markers import marker_names
from .settings import Settings, settings_of

if TYPE_CHECKING:  # the memory module is imported only by runs that measure memory
    from .guard import Guard
    from .probes.memory import Growth, KeptMeter

GROWTH_KEY: pytest.StashKey[Growth] = pytest.StashKey()
_METER_KEY: pytest.StashKey[KeptMeter] = pytest.StashKey()


def wants_repeat(settings: Settings, items: list[pytest.Item]) -> bool:
    if settings.repeat:
        return True
    return any(
        "repeat" in marker.kwargs or "retained" in marker.kwargs
        for item in items
        if "resources" in marker_names(item)
        for marker in item.iter_markers("resources")
    )


#: Fixtures whose captured output the first run consumes: a repeated run, outside pytest's
#: capture of the call phase, would read nothing and fail.
CAPTURE_FIXTURES = ("capsys", "capsysbinary", "capfd", "capfdbinary", "capteesys")


class RepeatPlugin:
    """After a passing call (the warm-up), runs the body N more times and records growth.
    The repeats judge memory only (see Guard.repeating). A repeated test, or one with
    ``resources(retained=...)``, is traced from its setup to its teardown for what it kept."""

    def __init__(self, threshold: int, guard: Guard, retained: int) -> None:
        self.threshold = threshold
        self.guard = guard
        #: Memory a traced test may keep, unless its marker says otherwise.
        self.retained = retained
        #: Tests not repeated, each with why.
        self.not_repeated: list[str] = []
        #: The open test's meter, while wider-scoped fixtures may be set up in its window.
        self._meter: KeptMeter | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        test = settings_of(item)
        if test is not None and (test.repeat or test.retained is not None):
            from .probes.memory import KeptMeter

            limit = test.retained if test.retained is not None else self.retained
            self._meter = item.stash[_METER_KEY] = KeptMeter(limit)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, object, object]:
        if self._meter is None or fixturedef.scope == "function":
            return (yield)
        with self._meter.fixture():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            meter = item.stash.get(_METER_KEY, None)
            if meter is not None:
                del item.stash[_METER_KEY]
                self._meter = None
                from .probes.memory import Growth

                growth = item.stash.get(GROWTH_KEY, None) or Growth([], 0)
                item.stash[GROWTH_KEY] = growth._replace(kept=meter.finish())

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
