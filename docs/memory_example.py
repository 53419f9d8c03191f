"""Examples from docs/memory.md; collected and run as tests."""

from __future__ import annotations

import pytest

from pytest_resources.fixtures.memory import MemoryTracker


def build_index(size: int) -> dict[int, str]:
    return {n: str(n) for n in range(size)}


def test_index_memory(memory_tracker: MemoryTracker) -> None:
    with memory_tracker.measure() as block:
        index = build_index(50_000)
    assert len(index) == 50_000
    assert 1_000_000 < block.retained < 20_000_000, block.sites
    assert block.peak >= block.retained


@pytest.mark.resources(memory_limit="64MB", repeat=2)
def test_bounded_and_not_growing() -> None:
    index = build_index(10_000)
    assert index[9_999] == "9999"
