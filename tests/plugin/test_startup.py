"""What the plugin costs every run before its first test."""

from __future__ import annotations

import sys
import types

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

import pytest_resources


def test_the_package_takes_itself_off_the_assertion_rewriting_list(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pytest does for an installed plugin: before importing it, it marks the package of
    its distribution for assertion rewriting. The package takes itself off the list, so its
    other modules load the usual way (~110 M instructions of start-up otherwise); another
    plugin's mark stays."""
    hook = AssertionRewritingHook(pytester.parseconfig("--assert=plain"))
    hook.mark_rewrite("pytest_resources", "other_plugin")
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    state = types.SimpleNamespace(trace=lambda *args: None)
    assert hook._is_marked_for_rewrite("pytest_resources.detector.guard", state)  # type: ignore[arg-type]

    pytest_resources._skip_assertion_rewriting()

    assert not hook._is_marked_for_rewrite("pytest_resources.detector.guard", state)  # type: ignore[arg-type]
    assert hook._is_marked_for_rewrite("other_plugin.module", state)  # type: ignore[arg-type]
