"""StateMonitor under 8 threads x 100k operations: exact totals, every eviction accounted for."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator

import pytest

from pytest_resources.components.state import ResourceLimits, StateMonitor

THREADS = 8
OPS = 100_000
KEYS_PER_THREAD = 500
SHARED_KEYS = 64

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond instead of every 5 ms, so races get a chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_threads(work: Callable[[int], None]) -> None:
    """Start all threads together; re-raise the first failure after joining every thread."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def body(t: int) -> None:
        try:
            start.wait()
            work(t)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(t,), name=f"stress-{t}") for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def size_of(t: int, i: int) -> int:
    return (t * 31 + i * 17) % 997 + 1


def test_private_and_shared_keys_keep_exact_totals_without_eviction() -> None:
    monitor = StateMonitor(ResourceLimits(max_cache_entries=THREADS * KEYS_PER_THREAD * 2))
    expected: list[dict[Hashable, int]] = [{} for _ in range(THREADS)]
    deallocated = [0] * THREADS

    def work(t: int) -> None:
        mine = expected[t]
        for i in range(OPS):
            op = i % 8
            if op == 7:
                # Every thread writes the same size for a shared key: the end state is known.
                k = (i // 8) % SHARED_KEYS
                assert monitor.record_allocation(("shared", k), k + 1)
            elif op == 6:
                key = (t, (i * 7) % KEYS_PER_THREAD)
                freed = monitor.record_deallocation(key)
                assert freed == mine.pop(key, 0)
                deallocated[t] += freed > 0
            elif op == 5:
                monitor.record_access((t, i % KEYS_PER_THREAD))
                monitor.record_access(("shared", i % SHARED_KEYS))
            else:
                key = (t, i % KEYS_PER_THREAD)
                size = size_of(t, i)
                assert monitor.record_allocation(key, size)
                mine[key] = size

    run_threads(work)

    want: dict[Hashable, int] = {("shared", k): k + 1 for k in range(SHARED_KEYS)}
    for mine in expected:
        want.update(mine)
    assert monitor.get_allocations() == want
    assert monitor.current_size == sum(want.values())
    assert monitor.value_count == len(want)
    stats = monitor.get_stats()
    assert stats.allocations == THREADS * (OPS // 8) * 6  # ops 0-4 and 7 of every 8 allocate
    assert stats.deallocations == sum(deallocated)
    assert (stats.evictions, stats.refusals, stats.callback_failures) == (0, 0, 0)


def test_auto_eviction_under_contention_accounts_for_every_byte() -> None:
    limits = ResourceLimits(max_state_size=256 * 1024, max_value_size=4096, max_cache_entries=2000)
    evicted: list[tuple[Hashable, int]] = []
    evicted_lock = threading.Lock()

    def on_evict(key: Hashable, size: int, /) -> None:
        with evicted_lock:
            evicted.append((key, size))

    monitor = StateMonitor(limits, on_evict=on_evict)
    allocated = [0] * THREADS
    freed = [0] * THREADS
    freed_keys: list[list[Hashable]] = [[] for _ in range(THREADS)]

    def work(t: int) -> None:
        for i in range(OPS):
            op = i % 4
            if op == 3:
                key = (t, i - 3)  # a key of this thread, unless a cleanup got to it first
                size = monitor.record_deallocation(key)
                if size:
                    freed[t] += size
                    freed_keys[t].append(key)
            elif op == 2:
                monitor.record_access((t, i - 2))
            else:
                size = size_of(t, i) * 4
                assert monitor.record_allocation((t, i), size)  # auto cleanup makes room
                allocated[t] += size
                assert monitor.current_size <= limits.max_state_size  # no transient overshoot

    run_threads(work)

    stats = monitor.get_stats()
    remaining = monitor.get_allocations()
    assert monitor.current_size == sum(remaining.values())
    assert monitor.current_size <= limits.max_state_size
    assert monitor.value_count <= limits.max_cache_entries
    assert sum(allocated) - sum(freed) - stats.bytes_evicted == monitor.current_size
    assert stats.evictions == len(evicted) > 0
    assert stats.bytes_evicted == sum(size for _, size in evicted)
    # Each key left exactly one way: still held, deallocated, or evicted (and reported once).
    gone = [key for key, _ in evicted] + [key for keys in freed_keys for key in keys]
    assert len(gone) == len(set(gone))
    assert set(gone).isdisjoint(remaining)
    assert len(gone) + len(remaining) == THREADS * (OPS // 2)
    assert stats.allocations == THREADS * (OPS // 2)
    assert stats.peak_size <= limits.max_state_size


def test_fast_mode_keeps_exact_totals_with_refusals() -> None:
    limits = ResourceLimits(
        max_state_size=64 * 1024, max_value_size=2048, max_cache_entries=200, auto_cleanup=False
    )
    monitor = StateMonitor.fast(limits)
    net_bytes = [0] * THREADS
    net_count = [0] * THREADS
    refused = [0] * THREADS

    def work(t: int) -> None:
        held: list[int] = []
        for i in range(OPS):
            if i % 3 == 2 and held:
                size = held.pop()
                assert monitor.record_deallocation((t, i), size) == size
                net_bytes[t] -= size
                net_count[t] -= 1
            else:
                size = size_of(t, i) * 2
                if monitor.record_allocation((t, i), size):
                    held.append(size)
                    net_bytes[t] += size
                    net_count[t] += 1
                else:
                    refused[t] += 1

    run_threads(work)

    stats = monitor.get_stats()
    assert monitor.current_size == sum(net_bytes)
    assert monitor.value_count == sum(net_count)
    assert stats.refusals == sum(refused) > 0
    assert stats.peak_size <= limits.max_state_size
