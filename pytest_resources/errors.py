"""Public warning and exception types."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


class ResourceLeakWarning(pytest.PytestWarning):
    """A test leaked resources (warn mode)."""


class ResourceGuardWarning(pytest.PytestWarning):
    """The plugin itself hit a problem (a probe was disabled) and carried on."""


class ResourceLeakError(AssertionError):
    """A block guarded by ``resource_guard`` leaked resources."""

    def __init__(self, message: str, leaks: Sequence[object]) -> None:
        super().__init__(message)
        self.leaks = list(leaks)
