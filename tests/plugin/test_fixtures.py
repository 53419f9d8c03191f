from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from pytest_resources import ResourceLeakError
from pytest_resources.fixtures.snapshot import ResourceSnapshot


def test_resource_snapshot_diffs_inside_a_test(
    resource_snapshot: ResourceSnapshot, tmp_path: Path
) -> None:
    before = resource_snapshot.take("fds")
    f = open(tmp_path / "held.txt", "w")  # noqa: SIM115
    try:
        leaks = resource_snapshot.leaks(before, grace=0)
        assert [leak.kind for leak in leaks] == ["fds"]
        assert leaks[0].identity.endswith("held.txt)")
    finally:
        f.close()
    assert resource_snapshot.leaks(resource_snapshot.take("fds"), grace=0) == []


def test_resource_guard_raises_listing_what_the_block_leaked(
    resource_guard: Callable[..., AbstractContextManager[None]],
) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="guarded-worker")
    try:
        with pytest.raises(ResourceLeakError) as info, resource_guard(checks="threads", grace=0):
            worker.start()
        assert "threads: thread 'guarded-worker'" in str(info.value)
        assert len(info.value.leaks) == 1
    finally:
        stop.set()
        worker.join()


def test_resource_guard_passes_a_clean_block(
    resource_guard: Callable[..., AbstractContextManager[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with resource_guard():
        os.environ["TEMPORARY"] = "1"
        del os.environ["TEMPORARY"]


def test_resource_guard_rejects_bad_arguments(
    resource_guard: Callable[..., AbstractContextManager[None]],
) -> None:
    with pytest.raises(ValueError, match="unknown kind 'thread'"), resource_guard(checks="thread"):
        pass
    with pytest.raises(ValueError, match="grace: expected seconds >= 0"), resource_guard(grace=-1):
        pass
