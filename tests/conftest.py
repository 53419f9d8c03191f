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


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Inner sessions keep their file order: pytest-randomly (in the test extra for the plugin
    matrix) would shuffle them, and an inner suite's order is part of what a test states.
    Set after pytester clears PYTEST_ADDOPTS; the randomly matrix test takes it off again."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester
