"""Process-wide state: os.environ, cwd, sys.path, signal handlers, root logger handlers and
warnings filters. Any change a test does not undo is a leak: added, changed or removed."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import contextlib
import fnmatch
import functools
import logging
import operator
import os
import signal
import sys
import warnings
from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

from .base import INFRA_MODULES, Items, Leak, Probe

# pytest rewrites this one in every phase of every test.
ALWAYS_IGNORED_ENV = ("PYTEST_CURRENT_TEST",)
_SIGNALS = tuple(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, getattr(signal, "SIGSTOP", 0))
)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # real-time signals have no enum member
        return f"SIG{number}"


@functools.cache
def _signal_names() -> tuple[str, ...]:
    # On first use: the enum lookups cost every start-up, and only a changed handler needs them.
    return tuple(_signal_name(s) for s in _SIGNALS)


class EnvState(NamedTuple):
    environ: dict[Any, Any]
    cwd: str
    path: tuple[str, ...]
    signals: tuple[object, ...]
    handlers: tuple[logging.Handler, ...]
    filters: tuple[Any, ...]


def _environ_data() -> dict[Any, Any]:
    # The raw mapping is ~100x cheaper to copy than dict(os.environ), which decodes.
    data: dict[Any, Any] = getattr(os.environ, "_data", None) or dict(os.environ)
    return data.copy()


class EnvProbe(Probe):
    kind = "env"

    def __init__(self, ignore_env: Iterable[str] = ()) -> None:
        self._ignore_env = ALWAYS_IGNORED_ENV + tuple(ignore_env)
        self._encoded_ignores = [os.environ.encodekey(k) for k in ALWAYS_IGNORED_ENV]
        self._previous: EnvState | None = None

    def snapshot(self) -> EnvState:
        environ = _environ_data()
        for key in self._encoded_ignores:
            environ.pop(key, None)
        try:
            cwd = os.getcwd()
        except OSError:  # the directory was removed under us
            cwd = "<deleted>"
        state = (
            environ,
            cwd,
            tuple(sys.path),
            tuple(map(_signal.getsignal, _SIGNALS)),
            tuple(logging.root.handlers),
            tuple(warnings.filters),
        )
        # Unchanged (most tests): the same object again, so comparing it is an identity check.
        previous = self._previous
        if previous is None or not operator.eq(previous, state):  # eq(): no type narrowing
            self._previous = previous = EnvState._make(state)
        return previous

    def items(self, snap: Any) -> Items:
        state: EnvState = snap
        out: dict[Hashable, object] = {
            ("environ", key): value for key, value in self._environ_items(state.environ).items()
        }
        out[("cwd",)] = state.cwd
        out[("sys.path",)] = state.path
        for name, handler in zip(_signal_names(), state.signals, strict=True):
            out[("signal", name)] = handler
        out[("logging.root.handlers",)] = state.handlers
        out[("warnings.filters",)] = state.filters
        return out

    def refresh(self, snap: Any) -> Any:
        # pytest applies each test's filterwarnings marks between tests; nothing else here
        # changes between two windows (pytest-timeout's SIGALRM is ignored in the diff).
        state: EnvState = snap
        filters = tuple(warnings.filters)
        return state if filters == state.filters else state._replace(filters=filters)

    def changed(self, before: Any, after: Any) -> dict[Hashable, tuple[object, object]]:
        """Added, changed and removed entries, expanding only the fields that differ."""
        old: EnvState = before
        new: EnvState = after
        out: dict[Hashable, tuple[object, object]] = {}
        if old.environ != new.environ:
            was = self._environ_items(old.environ)
            now = self._environ_items(new.environ)
            for var in was.keys() | now.keys():
                if was.get(var) != now.get(var):
                    out[("environ", var)] = (was.get(var), now.get(var))
        if old.signals != new.signals:
            for name, was_handler, handler in zip(
                _signal_names(), old.signals, new.signals, strict=True
            ):
                if was_handler != handler:
                    out[("signal", name)] = (was_handler, handler)
        for key, was_value, value in (
            (("cwd",), old.cwd, new.cwd),
            (("sys.path",), old.path, new.path),
            (("logging.root.handlers",), old.handlers, new.handlers),
            (("warnings.filters",), old.filters, new.filters),
        ):
            if was_value != value:
                out[key] = (was_value, value)
        return out

    def _environ_items(self, environ: dict[Any, Any]) -> dict[str, str]:
        decoded = {os.environ.decodekey(k): os.environ.decodevalue(v) for k, v in environ.items()}
        return {
            k: v
            for k, v in decoded.items()
            if not any(fnmatch.fnmatchcase(k, pat) for pat in self._ignore_env)
        }

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        # pytest-timeout (and friends) set SIGALRM around each test, outside our window.
        if isinstance(key, tuple) and key[0] == "signal":
            return any(_module_root(h) in INFRA_MODULES for h in (old, new))
        return False

    def describe(self, key: Hashable, old: object, new: object) -> Leak:
        assert isinstance(key, tuple)
        what = key[0]
        if what == "environ":
            name = f"os.environ[{key[1]!r}]"
            if new is None:
                change = f"removed (was {old!r})"
            elif old is None:
                change = f"added: {new!r}"
            else:
                change = f"{old!r} → {new!r}"
            return Leak(self.kind, f"{name} {change}", signature=f"env:environ:{key[1]}")
        if what == "signal":
            return Leak(
                self.kind,
                f"signal handler for {key[1]}: {_handler(old)} → {_handler(new)}",
                signature=f"env:signal:{key[1]}",
            )
        if what == "sys.path":
            return Leak(
                self.kind, "sys.path changed", _seq_diff(old, new), signature="env:sys.path"
            )
        if what == "logging.root.handlers":
            return Leak(
                self.kind,
                "root logger handlers changed",
                _seq_diff(old, new),
                signature="env:logging",
            )
        if what == "warnings.filters":
            return Leak(
                self.kind, "warnings filters changed", _seq_diff(old, new), signature="env:warnings"
            )
        return Leak(self.kind, f"cwd {old!r} → {new!r}", signature="env:cwd")

    def cleanup(self, keys: list[Hashable], before: Any) -> None:
        state: EnvState = before
        for key in keys:
            assert isinstance(key, tuple)
            with contextlib.suppress(Exception):
                _restore(key, state)


def _restore(key: tuple[Any, ...], state: EnvState) -> None:
    what = key[0]
    if what == "environ":
        raw = state.environ.get(os.environ.encodekey(key[1]))
        if raw is None:
            os.environ.pop(key[1], None)
        else:
            os.environ[key[1]] = os.environ.decodevalue(raw)
    elif what == "cwd":
        os.chdir(state.cwd)
    elif what == "sys.path":
        sys.path[:] = state.path
    elif what == "signal":
        index = _signal_names().index(key[1])
        handler = state.signals[index]
        if handler is not None:
            signal.signal(_SIGNALS[index], handler)  # type: ignore[arg-type]
    elif what == "logging.root.handlers":
        logging.root.handlers[:] = state.handlers
    elif what == "warnings.filters":
        warnings.filters[:] = state.filters  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]


def _module_root(handler: object) -> str:
    return str(getattr(handler, "__module__", None) or "").split(".")[0]


def _handler(handler: object) -> str:
    if handler == signal.SIG_DFL:
        return "SIG_DFL"
    if handler == signal.SIG_IGN:
        return "SIG_IGN"
    if handler is None:
        return "None (set outside Python)"
    return getattr(handler, "__qualname__", repr(handler))


def _seq_diff(old: object, new: object) -> str:
    before = list(old) if isinstance(old, tuple) else []
    after = list(new) if isinstance(new, tuple) else []
    added = _minus(after, before)
    removed = _minus(before, after)
    lines = [f"+ {item!r}" for item in added] + [f"- {item!r}" for item in removed]
    if lines:
        return "\n".join(lines)
    moved = [f"  {i}: {item!r}" for i, item in enumerate(after) if before[i] != item]
    return "same entries in a new order; moved:\n" + "\n".join(moved[:5])


def _minus(items: list[object], other: list[object]) -> list[object]:
    """``items`` without one occurrence of each element of ``other`` (a multiset difference)."""
    rest = list(other)
    out = []
    for item in items:
        if item in rest:
            rest.remove(item)
        else:
            out.append(item)
    return out
