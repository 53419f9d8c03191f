"""The last Redis link: a fakeredis TCP server, only in mode ``auto``."""

from __future__ import annotations

import importlib.util
import sys

from .base import Launch, Unavailable


def launch(port: int) -> Launch:
    if importlib.util.find_spec("fakeredis") is None:
        raise Unavailable("fakeredis not installed")
    return Launch((sys.executable, "-m", "pytest_resources.brokers.fake_server", str(port)))
