"""Which markers a test carries, without walking its parents for every question.

A test's own marks are read each time (a hook may add one before it runs); those of its
module, class and package are gathered once per node, as they do not change after collection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest.nodes import Node

_INHERITED = pytest.StashKey[frozenset[str]]()


def marker_names(item: pytest.Item) -> frozenset[str]:
    """The names of every mark on ``item`` and its parents."""
    inherited = _inherited(item.parent)
    own = item.own_markers
    return inherited.union(mark.name for mark in own) if own else inherited


def _inherited(node: Node | None) -> frozenset[str]:
    if node is None:
        return frozenset()
    names: frozenset[str] | None = node.stash.get(_INHERITED, None)
    if names is None:
        names = _inherited(node.parent).union(mark.name for mark in node.own_markers)
        node.stash[_INHERITED] = names
    return names
