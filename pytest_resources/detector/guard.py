"""The session's leak checking: probes, the open window, scope ownership and event loops.
Closing a window gives the test's whole verdict (``verdict.decide``)."""

from __future__ import annotations

import _thread
import asyncio
import gc
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import ownership
from .probes import threads
from .probes.base import Leak, Probe
from .probes.env import EnvProbe
from .probes.events import EventCapture
from .probes.fds import FdProbe
from .probes.files import SHM_DIR, FilesProbe
from .probes.loops import RunnerHooks, unclosed_loops
from .probes.processes import ProcessProbe
from .probes.tasks import LoopRegistry, TaskProbe, pending_before_close
from .probes.threads import ThreadProbe
from .settings import Settings, TestSettings
from .verdict import CLEAN, Checker, Judgement, KnownLeaks, Pollution, Window, decide

if TYPE_CHECKING:
    from .probes.memory import Growth, MemoryMeter
    from .trace import Tracer


def build_probes(settings: Settings, loops: LoopRegistry, files: bool = True) -> dict[str, Probe]:
    """A probe per kind; ``files`` false leaves out the opt-in files kind (see Guard.open)."""
    probes: dict[str, Probe] = {
        "threads": ThreadProbe(settings.ignore_threads, loops.executor_threads),
        "tasks": TaskProbe(loops),
        "fds": FdProbe(settings.ignore_fds, unclosed_loops),
        "processes": ProcessProbe(settings.ignore_processes),
        "env": EnvProbe(settings.ignore_env, settings.warnings_reset),
    }
    if files:
        probes["files"] = files_probe(settings)
    return probes


def files_probe(settings: Settings) -> FilesProbe:
    return FilesProbe(
        (tempfile.gettempdir(), os.getcwd(), settings.rootdir or os.curdir, SHM_DIR),
        settings.ignore_files,
        (settings.basetemp,) if settings.basetemp else (),
    )


class Guard:
    """One per session. Opens a window per test and closes it into a list of leaks."""

    def __init__(
        self, settings: Settings, known: KnownLeaks | None = None, trace_some: bool = False
    ) -> None:
        self.settings = settings
        self.loops = LoopRegistry()
        #: Creation sites (``--resource-trace``, or ``trace_some``: only the windows that
        #: ``trace_window`` asks for); imported only by runs that trace.
        self.tracer: Tracer | None = None
        #: Is the tracer on for the open window only?
        self._window_traced = False
        if settings.trace or trace_some:
            from .trace import Tracer

            self.tracer = Tracer()
        annotate = self.tracer.annotate if self.tracer is not None else None
        self.owners = ownership.Owners()
        self.checker = Checker(
            # The files probe only when the session checks files: compiling its patterns
            # costs ~2 M instructions at start-up, and every wider fixture's setup would
            # list its directories. A marker that asks for files makes it (see open).
            build_probes(settings, self.loops, files="files" in settings.checks),
            annotate,
            claimer=self.owners.claim,
            collect=self._collect,
        )
        #: State tests left in effect, named in a later test's failure.
        self.pollution = Pollution(self.checker)
        #: The baseline file's known leaks (``--resource-baseline``).
        self.known = known
        self.capture = EventCapture(self._event)
        self.runners = RunnerHooks(self._loop_started, self._loop_closing)
        self.window: Window | None = None
        #: The wider-scoped fixtures being set up now, innermost last.
        self._fixtures: list[str] = []
        self._meter: MemoryMeter | None = None  # made on first use: memory is opt-in
        self._measuring = False
        self._probed: dict[tuple[str, ...], tuple[str, ...]] = {}
        #: Threads found leaked, and the test that leaked each: named again if one is still
        #: running when the session ends (see lingering.py).
        self.leaked_threads: weakref.WeakKeyDictionary[threading.Thread, str] = (
            weakref.WeakKeyDictionary()
        )
        #: Self-announced leaks seen while no window was open; the next window gets them.
        self.between: list[Leak] = []
        #: Unraisable exceptions the plugin's own gc passes set off that are not recorded
        #: leaks: the current test's, reported on it (see take_surfaced).
        self.surfaced: list[str] = []

    def start(self) -> None:
        self.capture.start()
        self.runners.install()
        if self.tracer is not None and self.settings.trace:
            self.tracer.start()
        if self.settings.per_test.measures_memory:
            # Made before the first test: the files it keeps open belong to the session.
            self._memory_meter()
        if "files" in self.settings.checks:
            # Its inotify descriptor too.
            files = self.checker.probes["files"]
            assert isinstance(files, FilesProbe)
            files.watch()

    def stop(self) -> None:
        self.runners.uninstall()
        self.capture.stop()
        if self.tracer is not None and self.tracer.active:
            self.tracer.stop()
        self.checker.close()
        if self._meter is not None:
            self._meter.close()

    def _event(self, leak: Leak) -> bool:
        if self.window is not None and leak.kind in self.window.kinds:
            self.window.events.append(leak)
            return True
        if self.window is None and leak.kind in self.settings.checks:
            self.between.append(leak)
            return True
        return False

    def open(self, kinds: tuple[str, ...], memory: bool = False, nodeid: str = "") -> None:
        """Open the window of test ``nodeid``, checking ``kinds``."""
        self.capture.open_window()
        if "files" in kinds and "files" not in self.checker.probes:
            # A marker asked for files: from this window on (without inotify, which needs
            # its descriptor open before the first test; it stats the directories instead).
            self.checker.add("files", files_probe(self.settings))
        if memory and self._meter is None:
            # A marker asked for memory: the meter's files are open before the window is,
            # and a fresh first snapshot sees them.
            self._memory_meter()
            self.checker.forget()
        self.window = self.checker.begin(self._probe_kinds(kinds), nodeid)
        if self.between:
            self.window.events.extend(leak for leak in self.between if leak.kind in kinds)
            self.between.clear()
        self._measuring = memory
        if memory:
            self._memory_meter().begin()

    def trace_window(self) -> None:
        """Trace the next window (from before its ``open`` to the end of its ``close``)."""
        assert self.tracer is not None
        if not self.tracer.active:
            self.tracer.start()
            self._window_traced = True

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
        item: Any = None,
    ) -> Judgement:
        """Close the window and judge it: ``growth`` from repeated runs of the body, and
        ``complete`` false for a test that failed or was skipped before its end. ``item`` (the
        test) lets live wider fixtures claim what they still reach (see ownership.py), and
        strict cleanup undo only the rest."""
        window = self.window
        if window is None:
            return CLEAN
        # Read before our own verdict work (gc, snapshots) can move RSS.
        figures = self._meter.end() if self._measuring and self._meter else None
        try:
            # The window stays open while finishing: the gc pass can set off ResourceWarnings.
            leaks, diffs = self.checker.finish(window, test.grace, item)
            if leaks:
                if test.strict:
                    self.checker.cleanup(window, diffs)
                self.pollution.record(nodeid, self.checker.left)
            if "threads" in diffs:  # the leak path only
                self.leaked_threads.update(
                    (key, nodeid) for key in diffs["threads"] if isinstance(key, threading.Thread)
                )
        finally:
            self.window = None
            self.capture.close_window()
            if self._window_traced and self.tracer is not None:
                self._window_traced = False
                self.tracer.stop()
            if self.capture.surfaced is not None:  # only after a gc pass of ours
                self.surfaced += self.capture.kept()
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

    def _collect(self) -> None:
        """The verdict's gc pass: what it sets off (ResourceWarnings raised as errors under
        ``filterwarnings = error``, other unraisable exceptions) is the judged test's, never
        left for pytest's hook to report on the next test."""
        self.capture.keep()
        gc.collect()

    def _memory_meter(self) -> MemoryMeter:
        if self._meter is None:
            from .probes.memory import MemoryMeter

            self._meter = MemoryMeter()
        return self._meter

    @contextmanager
    def repeating(self) -> Iterator[None]:
        """A test's repeated runs judge memory only: every other kind is judged as the first
        run left it, and what the repeats announce (ResourceWarnings) is dropped."""
        window = self.window
        if window is None:
            yield
            return
        events = len(window.events)
        before = self.checker.snapshots(window.kinds)
        try:
            yield
        finally:
            self.checker.set_aside(before)
            del window.events[events:]

    @contextmanager
    def scoped_fixture(self, fixturedef: Any) -> Iterator[None]:
        """Around a module/class/session fixture's setup: what the setup creates, and what
        its value can still reach later (see ownership.py), belong to that fixture."""
        if self.window is None:
            yield
        else:
            owner = ownership.fixture_owner(fixturedef)
            native, count = threads.native_count(), _thread._count()
            before = self.checker.snapshot_all()
            self._fixtures.append(owner)  # a loop made meanwhile is the fixture's
            try:
                yield
            finally:
                self._fixtures.pop()
            threads.wait_counted(native, count)
            self.checker.own(owner, before, self.checker.snapshot_all())
        self.owners.started(fixturedef)

    def fixture_ended(self, fixturedef: Any) -> None:
        """A fixture wider than a test is torn down: what it still owns has leaked."""
        self.owners.ended(fixturedef)
        self.release(ownership.fixture_owner(fixturedef))

    def release(self, owner: str) -> None:
        for leak in self.checker.release(owner, self.settings.grace):
            self._event(leak)
        if self.capture.surfaced is not None:
            self.surfaced += self.capture.kept()

    def take_surfaced(self) -> list[str]:
        """Unraisable exceptions the plugin's gc passes set off since the last call."""
        surfaced, self.surfaced = self.surfaced, []
        return surfaced

    def _loop_started(self, loop: asyncio.AbstractEventLoop) -> None:
        # A loop made while a wider-scoped fixture is set up lives as long as that fixture.
        self.loops.add(loop, self._fixtures[-1] if self._fixtures else "")

    def _loop_closing(self, loop: asyncio.AbstractEventLoop) -> None:
        """Report the tasks a runner is about to cancel silently (pytest-asyncio issue 1044),
        as leaks of the test whose window is open or of the fixture that made the loop."""
        kinds = self.settings.checks if self.window is None else self.window.kinds
        if "tasks" in kinds:
            owner = self.loops.owner(loop)
            leaks = self.checker._guarded(
                "tasks",
                pending_before_close,
                loop,
                self.loops,
                self.settings.grace,
                owner,
                self.checker.annotate,
            )
            for leak in leaks or ():
                self._event(leak)
        self.loops.discard(loop)  # closed next: later snapshots need not look at it

    @property
    def disabled(self) -> dict[str, str]:
        return self.checker.disabled
