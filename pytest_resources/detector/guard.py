"""The session's leak checking: probes, the open window, scope ownership and event loops.
Closing a window gives the test's whole verdict (``verdict.decide``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .probes.base import Leak, Probe
from .probes.env import EnvProbe
from .probes.events import EventCapture
from .probes.fds import FdProbe
from .probes.processes import ProcessProbe
from .probes.tasks import LoopRegistry, TaskProbe, pending_before_close
from .probes.threads import ThreadProbe
from .settings import Settings, TestSettings
from .verdict import CLEAN, Checker, Judgement, KnownLeaks, Window, decide

if TYPE_CHECKING:
    from .probes.memory import Growth, MemoryMeter
    from .trace import Tracer


def build_probes(settings: Settings, loops: LoopRegistry) -> dict[str, Probe]:
    return {
        "threads": ThreadProbe(settings.ignore_threads, loops.executor_threads),
        "tasks": TaskProbe(loops),
        "fds": FdProbe(settings.ignore_fds),
        "processes": ProcessProbe(settings.ignore_processes),
        "env": EnvProbe(settings.ignore_env),
    }


class Guard:
    """One per session. Opens a window per test and closes it into a list of leaks."""

    def __init__(self, settings: Settings, known: KnownLeaks | None = None) -> None:
        self.settings = settings
        self.loops = LoopRegistry()
        #: Creation sites (``--resource-trace``); imported only by runs that trace.
        self.tracer: Tracer | None = None
        if settings.trace:
            from .trace import Tracer

            self.tracer = Tracer()
        annotate = self.tracer.annotate if self.tracer is not None else None
        self.checker = Checker(build_probes(settings, self.loops), annotate)
        #: The baseline file's known leaks (``--resource-baseline``).
        self.known = known
        self.capture = EventCapture(self._event)
        self.window: Window | None = None
        self._meter: MemoryMeter | None = None  # made on first use: memory is opt-in
        self._measuring = False
        self._probed: dict[tuple[str, ...], tuple[str, ...]] = {}
        #: Self-announced leaks seen while no window was open; the next window gets them.
        self.between: list[Leak] = []

    def start(self) -> None:
        self.capture.start()
        if self.tracer is not None:
            self.tracer.start()
        if self.settings.per_test.measures_memory:
            # Made before the first test: the files it keeps open belong to the session.
            self._memory_meter()

    def stop(self) -> None:
        self.capture.stop()
        if self.tracer is not None:
            self.tracer.stop()
        self.checker.close()
        if self._meter is not None:
            self._meter.close()

    def _event(self, leak: Leak) -> None:
        if self.window is not None and leak.kind in self.window.kinds:
            self.window.events.append(leak)
        elif self.window is None and leak.kind in self.settings.checks:
            self.between.append(leak)

    def open(self, kinds: tuple[str, ...], memory: bool = False) -> None:
        self.capture.open_window()
        if memory and self._meter is None:
            # A marker asked for memory: the meter's files are open before the window is,
            # and a fresh first snapshot sees them.
            self._memory_meter()
            self.checker.forget()
        self.window = self.checker.begin(self._probe_kinds(kinds))
        if self.between:
            self.window.events.extend(leak for leak in self.between if leak.kind in kinds)
            self.between.clear()
        self._measuring = memory
        if memory:
            self._memory_meter().begin()

    def _probe_kinds(self, kinds: tuple[str, ...]) -> tuple[str, ...]:
        """``kinds`` without memory, which the meter measures, not a probe (memoized: the
        checker reuses the last window's snapshots when it gets the same tuple)."""
        probed = self._probed.get(kinds)
        if probed is None:
            probed = self._probed[kinds] = tuple(k for k in kinds if k != "memory")
        return probed

    def close(
        self,
        test: TestSettings,
        nodeid: str,
        growth: Growth | None = None,
        complete: bool = True,
    ) -> Judgement:
        """Close the window and judge it: ``growth`` from repeated runs of the body, and
        ``complete`` false for a test that failed or was skipped before its end."""
        window = self.window
        if window is None:
            return CLEAN
        # Read before our own verdict work (gc, snapshots) can move RSS.
        figures = self._meter.end() if self._measuring and self._meter else None
        try:
            # The window stays open while finishing: the gc pass can set off ResourceWarnings.
            leaks, diffs = self.checker.finish(window, test.grace)
            if test.strict and leaks:
                self.checker.cleanup(window, diffs)
        finally:
            self.window = None
            self.capture.close_window()
        # Positional: this call is on every test's path.
        return decide(
            leaks,
            test,
            figures,
            growth,
            self.settings.repeat_threshold,
            self.known,
            nodeid,
            complete,
        )

    def _memory_meter(self) -> MemoryMeter:
        if self._meter is None:
            from .probes.memory import MemoryMeter

            self._meter = MemoryMeter()
        return self._meter

    @contextmanager
    def scoped_fixture(self, owner: str) -> Iterator[None]:
        """Attribute what a module/class/session fixture's setup creates to that fixture."""
        before = self.checker.snapshot_all()
        yield
        self.checker.own(owner, before, self.checker.snapshot_all())

    def release(self, owner: str) -> None:
        for leak in self.checker.release(owner, self.settings.grace):
            self._event(leak)

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loops.add(loop)

    def before_loop_close(self, loop: asyncio.AbstractEventLoop, owner: str) -> None:
        """Report tasks a runner is about to cancel silently (pytest-asyncio issue 1044)."""
        if "tasks" in self.settings.checks and "tasks" not in self.checker.disabled:
            found = pending_before_close(
                loop, self.loops, self.settings.grace, owner, self.checker.annotate
            )
            for leak in found:
                self._event(leak)
        self.loops.discard(loop)  # closed next: later snapshots need not look at it

    @property
    def disabled(self) -> dict[str, str]:
        return self.checker.disabled
