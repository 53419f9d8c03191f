from __future__ import annotations

import contextlib
import warnings

import pytest
from pytester_run import Run

# The docker SDK (and requests, http.cookiejar under it) is imported here, before any test:
# a module first imported during a test that uses pytester is dropped from sys.modules when
# that test ends, and importing it again later can leave requests with two CookieJar classes
# ("You can only merge into CookieJar" from a later docker call).
with warnings.catch_warnings(), contextlib.suppress(ImportError):  # filters stay as they were
    import docker  # type: ignore[import-untyped]  # noqa: F401


@pytest.fixture
def run(pytester: pytest.Pytester) -> Run:
    return Run(pytester)
