"""A leak owned by a module-scoped fixture: reported when the module ends, never blamed on the
first test that used the fixture."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture(scope="module")
def metrics_pusher() -> threading.Thread:
    stop = threading.Event()
    pusher = threading.Thread(target=stop.wait, name="metrics-pusher", daemon=True)
    pusher.start()
    return pusher  # nothing ever stops it


def test_first_user(metrics_pusher: threading.Thread) -> None:
    assert metrics_pusher.is_alive()


def test_second_user(metrics_pusher: threading.Thread) -> None:
    assert metrics_pusher.is_alive()
