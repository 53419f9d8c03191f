"""Memory that grows on every run of a test: found by ``--resource-repeat``, which runs each
test body again and names the allocation site that grew each time."""

from __future__ import annotations

#: A module-level cache nobody bounds, the way a forgotten memo grows.
SEEN: list[bytes] = []


def test_memory_leak() -> None:
    SEEN.append(bytes(64 * 1024))


def test_memory_freed() -> None:
    scratch = [bytes(64 * 1024) for _ in range(4)]
    assert len(scratch) == 4
