"""Memory: cheap RSS and peak figures per test, and tracemalloc growth across repeated runs.

RSS figures are report-only: a first import alone moves RSS by megabytes. What can fail a test
is a peak above an explicit limit, or growth confirmed by every one of several repeated runs.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
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


class Kept(NamedTuple):
    """What a test still held once it had ended (see KeptMeter), and the most it may keep."""

    size: int
    limit: int
    sites: tuple[Site, ...] = ()

    @property
    def leaks(self) -> bool:
        return self.size > self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "limit": self.limit,
            "sites": [site.to_dict() for site in self.sites],
        }


class Growth(NamedTuple):
    """Traced memory growth per repeated run, and what the whole test kept."""

    deltas: list[int]
    #: What the runs kept in all once every generation was collected.
    retained: int
    sites: tuple[Site, ...] = ()
    kept: Kept | None = None

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
        record = {
            "deltas": list(self.deltas),
            "per_run": self.per_run,
            "retained": self.retained,
            "sites": [site.to_dict() for site in self.sites],
        }
        if self.kept is not None:
            record["kept"] = self.kept.to_dict()
        return record


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


#: Where a first import allocates: the import system itself (code objects, module dicts).
IMPORT_FILES = frozenset(
    ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
)
#: What pytest keeps for a test (its reports, captured output) is not the test's.
PYTEST_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (sys.modules.get("_pytest"), sys.modules.get("pluggy"))
    if module is not None and module.__file__
)
Key = tuple[str, int]


class KeptMeter:
    """What a test keeps after it ended: memory allocated in its window (traced from the start
    of its setup) and still alive after its teardown and a full collection.

    Not the test's: what a first import allocates (in the import system or in the files of the
    modules it imported), what pytest keeps for the test, and what a wider-scoped fixture set
    up in the window allocated (``fixture``). And tracemalloc cannot see a test free what was
    allocated before the window (a warmed bounded cache evicting its old entries for new
    ones), so only as many new blocks count as the interpreter's live blocks grew by, the
    smallest first: what replaced something freed is not kept.
    """

    def __init__(self, limit: int) -> None:
        import tracemalloc

        self.limit = limit
        self._modules = set(sys.modules)
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        gc.collect()
        self._first = tracemalloc.take_snapshot()
        #: Growth by site that wider-scoped fixtures set up in the window own.
        self._owned: dict[Key, tuple[int, int]] = {}
        self._blocks = sys.getallocatedblocks()

    @contextmanager
    def fixture(self) -> Iterator[None]:
        """Around a wider-scoped fixture's setup: what it allocates is the fixture's."""
        import tracemalloc

        before = tracemalloc.take_snapshot()
        try:
            yield
        finally:
            for stat in tracemalloc.take_snapshot().compare_to(before, "lineno"):
                if stat.size_diff > 0 and stat.count_diff > 0:
                    frame = stat.traceback[0]
                    size, count = self._owned.get((frame.filename, frame.lineno), (0, 0))
                    self._owned[frame.filename, frame.lineno] = (
                        size + stat.size_diff,
                        count + stat.count_diff,
                    )

    def finish(self) -> Kept:
        import tracemalloc

        gc.collect()
        blocks = sys.getallocatedblocks() - self._blocks
        try:
            last = tracemalloc.take_snapshot()
        finally:
            if self._started:
                tracemalloc.stop()
        imported = IMPORT_FILES.union(
            getattr(module, "__file__", None) or ""
            for name, module in list(sys.modules.items())
            if name not in self._modules
        )
        own = (tracemalloc.__file__, __file__)
        grown: list[tuple[int, int, Key]] = []
        for stat in last.compare_to(self._first, "lineno"):
            key = (stat.traceback[0].filename, stat.traceback[0].lineno)
            owned_size, owned_count = self._owned.get(key, (0, 0))
            size, count = stat.size_diff - owned_size, stat.count_diff - owned_count
            blocks -= min(owned_count, max(0, stat.count_diff))
            if size <= 0 or count <= 0 or key[0] in own:
                continue
            if key[0] in imported or key[0].startswith(PYTEST_DIRS):
                blocks -= count
                continue
            grown.append((size, count, key))
        grown.sort(key=lambda g: g[0] / g[1])  # the smallest blocks first
        sites = []
        for size, count, (file, line) in grown:
            if blocks <= 0:
                break
            taken = min(count, blocks)
            sites.append(Site(file, line, size * taken // count, taken))
            blocks -= taken
        sites.sort(key=lambda site: site.size, reverse=True)
        return Kept(sum(site.size for site in sites), self.limit, tuple(sites[:TOP_SITES]))
