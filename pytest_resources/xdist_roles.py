"""Which part a process plays under pytest-xdist, asked the same way everywhere."""

from __future__ import annotations

from typing import Any

import pytest


def is_worker(config: pytest.Config) -> bool:
    """Whether this process runs tests an xdist controller handed it."""
    return hasattr(config, "workerinput")


def is_xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests to xdist workers and gets their reports: xdist's
    condition for starting its DSession, readable before xdist's own configure hook ran."""
    option = config.option
    dist: str = getattr(option, "dist", "no")
    return dist != "no" and not getattr(option, "collectonly", False) and not is_worker(config)


def worker_id(config: pytest.Config) -> str:
    """The xdist worker's id (``gw0``...), or "" outside a worker."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    return str(workerinput.get("workerid", ""))
