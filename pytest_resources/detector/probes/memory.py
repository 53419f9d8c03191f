"""Memory: cheap RSS and peak figures per test, and tracemalloc growth across repeated runs.

RSS figures are report-only: a first import alone moves RSS by megabytes. What can fail a test
is a peak above an explicit limit, or growth confirmed by every one of several repeated runs.
"""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from ..sizes import format_size

if TYPE_CHECKING:
    import tracemalloc

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TOP_SITES = 5
# ru_maxrss is in KiB on Linux, the only place the peak can be reset.
MAXRSS_UNIT = 1024
#: How far ru_maxrss may read above the RSS just after a reset (pages touched meanwhile).
RESET_SLACK = 1 << 20


# No dataclasses here: generating one's methods costs ~1 ms at import, and a frozen one costs
# several times more to create than a NamedTuple (one MemoryFigures is made per test).


class MemoryFigures(NamedTuple):
    """One test's RSS at the start and end of its window and its peak RSS, in bytes."""

    rss_before: int
    rss_after: int
    peak: int

    @property
    def peak_growth(self) -> int:
        """How far the test raised the process's RSS above where it started."""
        return max(0, self.peak - self.rss_before)

    def to_dict(self) -> dict[str, int]:
        return {
            "rss_before": self.rss_before,
            "rss_after": self.rss_after,
            "peak": self.peak,
            "peak_growth": self.peak_growth,
        }


class MemoryMeter:
    """Reads RSS and the peak RSS; on Linux the peak is reset at the start of every test
    (``/proc/self/clear_refs``), elsewhere the peak is the larger of the two readings.

    The two ``/proc`` files it uses every test stay open (``close()`` closes them): one system
    call each to reset the peak and to read RSS, instead of an open, a read and a close."""

    def __init__(self) -> None:
        self._statm = _open_proc("/proc/self/statm", os.O_RDONLY)
        self._clear_refs = _open_proc("/proc/self/clear_refs", os.O_WRONLY)
        self._rss_before = 0
        self._resettable = self._reset_peak()
        self._maxrss_follows = False

    def close(self) -> None:
        for fd in (self._statm, self._clear_refs):
            if fd is not None:
                os.close(fd)
        self._statm = self._clear_refs = None

    def _reset_peak(self) -> bool:
        """Reset the kernel's RSS high-water mark to the current RSS (Linux >= 4.0)."""
        if self._clear_refs is None:
            return False
        try:
            os.write(self._clear_refs, b"5")
        except OSError:
            return False
        return True

    def _rss(self) -> int:
        if self._statm is None:
            return current_rss()
        # "size resident shared ...": split off the second field only.
        return int(os.pread(self._statm, 256, 0).split(None, 2)[1]) * PAGE

    def begin(self) -> None:
        if self._resettable:
            self._resettable = self._reset_peak()
        self._rss_before = self._rss()
        # getrusage's ru_maxrss is the reset high-water mark too, ten times cheaper than
        # /proc/self/status -- unless the kernel kept an older peak beside it (from an exited
        # thread, on some kernels): then it reads above the RSS we just reset to.
        self._maxrss_follows = self._resettable and max_rss() <= self._rss_before + RESET_SLACK

    def end(self) -> MemoryFigures:
        after = self._rss()
        return MemoryFigures(self._rss_before, after, max(self._peak(), after, self._rss_before))

    def _peak(self) -> int:
        if self._maxrss_follows:
            return max_rss()
        return kernel_peak_rss() if self._resettable else 0


def _open_proc(path: str, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError:  # not Linux, or /proc not mounted
        return None


def max_rss() -> int:
    """The process's highest RSS since it started (or since the last reset), in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_UNIT


def _proc(path: str) -> bytes:
    # os-level calls: open() costs several times more for these tiny files.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 8192)
    finally:
        os.close(fd)


def current_rss() -> int:
    try:
        return int(_proc("/proc/self/statm").split()[1]) * PAGE
    except OSError:
        import psutil  # lazily: only off Linux

        return int(psutil.Process().memory_info().rss)


def kernel_peak_rss() -> int:
    """The kernel's RSS high-water mark (VmHWM), which ``/proc/self/clear_refs`` resets."""
    try:
        status = _proc("/proc/self/status")
    except OSError:
        return 0
    start = status.find(b"VmHWM:")
    return int(status[start + 6 : status.index(b"kB", start)]) * 1024 if start >= 0 else 0


class Site:
    """An allocation site that grew: file, line, bytes and blocks of growth."""

    __slots__ = ("count", "file", "line", "size")

    def __init__(self, file: str, line: int, size: int, count: int) -> None:
        self.file = file
        self.line = line
        self.size = size
        self.count = count

    def __repr__(self) -> str:
        return f"Site({self.text()!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "size": self.size, "count": self.count}

    def text(self) -> str:
        return f"{self.file}:{self.line}: +{format_size(self.size)} in {self.count} block(s)"


class Growth(NamedTuple):
    """Traced memory growth per repeated run."""

    deltas: list[int]
    #: What the runs kept in all once every generation was collected.
    retained: int
    sites: tuple[Site, ...] = ()

    def leaks(self, threshold: int) -> bool:
        """CPython's -R rule: growth in every run, each at least ``threshold`` bytes (and
        still there after a full collection)."""
        return (
            bool(self.deltas)
            and all(delta >= threshold for delta in self.deltas)
            and self.retained >= threshold * len(self.deltas)
        )

    @property
    def per_run(self) -> int:
        return sum(self.deltas) // len(self.deltas) if self.deltas else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "deltas": list(self.deltas),
            "per_run": self.per_run,
            "retained": self.retained,
            "sites": [site.to_dict() for site in self.sites],
        }


def measure_growth(
    run: Callable[[], object], runs: int, threshold: int, grace: float = 0.0
) -> Growth:
    """Call ``run`` ``runs`` times under tracemalloc; the traced bytes retained after each.

    Threads a run started get up to ``grace`` seconds to finish before it is measured (the
    grace the threads kind gives them): a thread still ending holds its frames and state.

    Between runs only the young generations are collected: what a run allocates is young,
    and a full collection of a test process's heap costs milliseconds. Only when every run
    grew does a full collection confirm it and the allocation sites get compared.
    """
    import tracemalloc  # on use: it pulls in pickle, a cost every run would pay

    started = not tracemalloc.is_tracing()
    if started:  # traces only what the runs allocate, which keeps snapshots small
        tracemalloc.start()
    try:
        gc.collect(1)
        first = tracemalloc.take_snapshot()
        base = previous = tracemalloc.get_traced_memory()[0]
        deltas = []
        for _ in range(runs):
            threads = set(threading.enumerate())
            run()
            _join_new(threads, grace)
            gc.collect(1)
            current = tracemalloc.get_traced_memory()[0]
            deltas.append(current - previous)
            previous = current
        growth = Growth(deltas, previous - base)
        if all(delta >= threshold for delta in deltas):
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - base
            growth = Growth(deltas, retained, top_sites(first, tracemalloc.take_snapshot()))
    finally:
        if started:
            tracemalloc.stop()
    return growth


def _join_new(before: set[threading.Thread], grace: float) -> None:
    new = [t for t in threading.enumerate() if t not in before]
    if new:
        deadline = time.monotonic() + grace
        for thread in new:
            thread.join(max(0.0, deadline - time.monotonic()))


def top_sites(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> tuple[Site, ...]:
    import tracemalloc

    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    stats = last.filter_traces(ignore).compare_to(first.filter_traces(ignore), "lineno")
    grown = [s for s in stats if s.size_diff > 0]
    grown.sort(key=lambda s: s.size_diff, reverse=True)
    return tuple(
        Site(s.traceback[0].filename, s.traceback[0].lineno, s.size_diff, s.count_diff)
        for s in grown[:TOP_SITES]
    )


class BlockMemory:
    """What a measured block did to traced memory; filled in when the block exits."""

    def __init__(self) -> None:
        self.retained = 0
        self.peak = 0
        self.sites: tuple[Site, ...] = ()

    def __repr__(self) -> str:
        return f"BlockMemory(retained={self.retained}, peak={self.peak}, sites={self.sites})"


@contextmanager
def track_block() -> Iterator[BlockMemory]:
    """Measure a block with tracemalloc: bytes it retained, its peak, where it allocated."""
    import tracemalloc

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    result = BlockMemory()
    try:
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        first = tracemalloc.take_snapshot()
        yield result
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        result.retained = current - base
        result.peak = max(0, peak - base)
        result.sites = top_sites(first, tracemalloc.take_snapshot())
    finally:
        if started:
            tracemalloc.stop()
