"""Examples from docs/how-to/adopt.md; collected and run as tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import pytest

Guard = Callable[..., AbstractContextManager[None]]


def test_executor_block_leaves_nothing_behind(resource_guard: Guard) -> None:
    with resource_guard(checks="threads"), ThreadPoolExecutor(2) as pool:
        assert pool.submit(sum, [1, 2]).result() == 3


def test_monkeypatched_environment_is_not_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_MODE", "test")
    assert os.environ["APP_MODE"] == "test"


@pytest.mark.resources(grace=2.0)
def test_background_work_may_take_longer() -> None:
    done = threading.Event()
    threading.Thread(target=done.set).start()
    assert done.wait(timeout=5)


@pytest.mark.allow_leaks("env", reason="documents the marker; strict mode restores the value")
def test_known_leak_is_allowed() -> None:
    os.environ["ADOPT_EXAMPLE_FLAG"] = "1"
