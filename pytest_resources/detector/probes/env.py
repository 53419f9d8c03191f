"""Process-wide state: os.environ, cwd, sys.path, signal handlers, root logger handlers,
named loggers' levels and handlers (loggers.py), warnings filters, the interpreter-wide
settings of interpreter.py and active ``unittest.mock`` patches. Any change a test does not
undo is a leak: added, changed or removed; a change back to what the session started with
is a repair, not a leak."""

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

from . import interpreter, loggers, singletons
from .base import INFRA_MODULES, Items, Leak, Probe

# pytest rewrites this one in every phase of every test.
ALWAYS_IGNORED_ENV = ("PYTEST_CURRENT_TEST",)
# The standard signals only: reading a handler is ~270 instructions (callgrind), and the 31
# real-time ones, which Python code next to never handles, cost half of this kind's snapshot.
_SIGNALS = tuple(
    s
    for s in signal.valid_signals()
    if s not in (signal.SIGKILL, getattr(signal, "SIGSTOP", 0))
    and s < getattr(signal, "SIGRTMIN", 1 << 16)
)


# Bound once: a test's mock.patch("os.getcwd") must not change what we read.
_getcwd = os.getcwd


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
    #: interpreter.NAMES' values.
    interpreter: tuple[object, ...]
    #: ``unittest.mock`` patches started and not stopped.
    patches: tuple[Any, ...]
    #: Named loggers' levels and handlers (loggers.LoggerWatch.state).
    loggers: tuple[loggers.Entry, ...]


def _environ_data() -> dict[Any, Any]:
    # The raw mapping is ~100x cheaper to copy than dict(os.environ), which decodes.
    data: dict[Any, Any] = getattr(os.environ, "_data", None) or dict(os.environ)
    return data.copy()


class EnvProbe(Probe):
    kind = "env"

    def __init__(self, ignore_env: Iterable[str] = (), warnings_reset: bool = False) -> None:
        """``warnings_reset``: pytest's warnings plugin is on, and puts the warnings filters
        and ``showwarning`` back after every test, so no change to them outlives a test."""
        self._ignore_env = ALWAYS_IGNORED_ENV + tuple(ignore_env)
        self._encoded_ignores = [os.environ.encodekey(k) for k in ALWAYS_IGNORED_ENV]
        self._warnings_reset = warnings_reset
        self._interpreter = interpreter.Interpreter()
        interpreter.EXIT_HOOKS.install()
        loggers.WATCH.install()
        self._previous: EnvState | None = None
        #: The first snapshot: what a change back to is a repair (see changed).
        self._start: EnvState | None = None

    def snapshot(self) -> EnvState:
        environ = _environ_data()
        for key in self._encoded_ignores:
            environ.pop(key, None)
        try:
            cwd = _getcwd()
        except OSError:  # the directory was removed under us
            cwd = "<deleted>"
        state = (
            environ,
            cwd,
            tuple(sys.path),
            tuple(map(_signal.getsignal, _SIGNALS)),
            tuple(logging.root.handlers),
            () if self._warnings_reset else tuple(warnings.filters),
            self._interpreter.read(),
            _active_patches(),
            loggers.WATCH.state(),
        )
        # Unchanged (most tests): the same object again, so comparing it is an identity check.
        previous = self._previous
        if previous is None or not operator.eq(previous, state):  # eq(): no type narrowing
            self._previous = previous = EnvState._make(state)
            if self._start is None:
                self._start = previous
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
        for name, value in zip(interpreter.NAMES, state.interpreter, strict=True):
            out[("interpreter", name)] = value
        for patcher in state.patches:
            out[("mock.patch", id(patcher))] = patcher
        for name, level, handlers in state.loggers:
            out[("logger", name)] = (name, level, handlers)
        return out

    def refresh(self, snap: Any) -> Any:
        # pytest applies each test's filterwarnings marks between tests; nothing else here
        # changes between two windows (pytest-timeout's SIGALRM is ignored in the diff).
        state: EnvState = snap
        if self._warnings_reset:
            return state
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
        if old.interpreter != new.interpreter:
            for name, was_setting, setting in zip(
                interpreter.NAMES, old.interpreter, new.interpreter, strict=True
            ):
                # A lazily made default is a one-time set-up, not a test's change: left out
                # here (not in ignored()), so no fixture owns it either.
                if (
                    was_setting != setting
                    and not (self._warnings_reset and name in interpreter.WARNINGS_STATE)
                    and not interpreter.lazy(name, was_setting, setting)
                ):
                    out[("interpreter", name)] = (was_setting, setting)
        if old.patches != new.patches:
            out.update(_added(old.patches, new.patches))
        if old.loggers != new.loggers:
            seen = {logger[0]: logger for logger in old.loggers}
            for logger in new.loggers:
                # A logger first touched in this window: as it was just before.
                prev = seen.get(logger[0]) or loggers.WATCH.first.get(logger[0])
                if prev != logger:
                    out[("logger", logger[0])] = (prev, logger)
        return self._without_repairs(out)

    def _without_repairs(
        self, diff: dict[Hashable, tuple[object, object]]
    ) -> dict[Hashable, tuple[object, object]]:
        """Drop the changes that bring a value back to what it was at session start: a test
        that undoes an earlier test's leak did not leak anything."""
        if not diff or self._start is None:
            return diff
        start = self.items(self._start)
        return {key: pair for key, pair in diff.items() if start.get(key) != pair[1]}

    def _environ_items(self, environ: dict[Any, Any]) -> dict[str, str]:
        decoded = {os.environ.decodekey(k): os.environ.decodevalue(v) for k, v in environ.items()}
        return {
            k: v
            for k, v in decoded.items()
            if not any(fnmatch.fnmatchcase(k, pat) for pat in self._ignore_env)
        }

    def can_end(self, keys: list[Hashable]) -> bool:
        # State changes back only when code changes it back, and waiting runs none.
        return False

    def close(self) -> None:
        interpreter.EXIT_HOOKS.uninstall()
        loggers.WATCH.uninstall()

    def unowned(
        self, key: Hashable, change: tuple[object, object], owned: object
    ) -> tuple[object, object] | None:
        # atexit's handlers are a count: a wider fixture owns the ones it registered.
        if key == interpreter.ATEXIT:
            return interpreter.unowned_exit_hooks(*change, owned)
        return None

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        if isinstance(key, tuple) and key[0] == "logger":
            return singletons.is_push_response_logger(key[1], old, new)
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
        if what == "logger":
            return Leak(
                self.kind,
                f"logger {key[1]!r} changed",
                _logger_diff(old, new),
                signature=f"env:logger:{key[1]}",
            )
        if what == "interpreter":
            name = key[1]
            if name in interpreter.SEQUENCES:
                return Leak(
                    self.kind, f"{name} changed", _seq_diff(old, new), signature=f"env:{name}"
                )
            change = f"{interpreter.show(name, old)} → {interpreter.show(name, new)}"
            details = interpreter.registered_text(old, new) if key == interpreter.ATEXIT else ""
            return Leak(self.kind, f"{name}: {change}", details, signature=f"env:{name}")
        if what == "mock.patch":
            target = _patch_target(new)
            return Leak(
                self.kind,
                f"unittest.mock patch of {target} still active",
                "started and never stopped: later tests see the mock "
                "(stop it, or use `with patch(...)`, mocker or monkeypatch)",
                signature=f"env:mock.patch:{target}",
            )
        return Leak(self.kind, f"cwd {old!r} → {new!r}", signature="env:cwd")

    def cleanup(self, keys: list[Hashable], before: Any) -> None:
        state: EnvState = before
        for key in keys:
            assert isinstance(key, tuple)
            with contextlib.suppress(Exception):
                if key[0] == "interpreter":
                    index = interpreter.NAMES.index(key[1])
                    self._interpreter.restore(key[1], state.interpreter[index])
                elif key[0] == "logger":
                    was = next((e for e in state.loggers if e[0] == key[1]), None)
                    loggers.WATCH.restore(key[1], was or loggers.WATCH.first[key[1]])
                else:
                    _restore(key, state)
        # Stopped last started first, as patch.stopall does.
        for key in reversed(keys):
            if isinstance(key, tuple) and key[0] == "mock.patch":
                with contextlib.suppress(Exception):
                    _patch_of(key[1]).stop()


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


def _logger_diff(old: object, new: object) -> str:
    if not (isinstance(old, tuple) and isinstance(new, tuple)):
        return ""
    lines = []
    if old[1] != new[1]:
        lines.append(f"level: {logging.getLevelName(old[1])} → {logging.getLevelName(new[1])}")
    if old[2] != new[2]:
        lines.append(_seq_diff(old[2], new[2]))
    return "\n".join(lines)


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


def _active_patches() -> tuple[Any, ...]:
    # A private list (unittest.mock._patch._active_patches, 3.8+; what patch.stopall stops):
    # every started patch, patch.object, patch.dict and patch.multiple, until stopped.
    mock = sys.modules.get("unittest.mock")
    return () if mock is None else tuple(mock._patch._active_patches)


def _added(old: tuple[Any, ...], new: tuple[Any, ...]) -> dict[Hashable, tuple[object, object]]:
    was = {id(p) for p in old}
    return {("mock.patch", id(p)): (None, p) for p in new if id(p) not in was}


def _patch_of(ident: int) -> Any:
    return next(p for p in _active_patches() if id(p) == ident)


def _patch_target(patcher: Any) -> str:
    """What a patch replaces: ``pkg.mod.fn``, ``Class.attr``, or the patched dict."""
    if hasattr(patcher, "in_dict"):  # patch.dict
        in_dict = patcher.in_dict
        return f"dict {in_dict if isinstance(in_dict, str) else _object_name(in_dict)}"
    try:
        owner = _object_name(patcher.getter())
    except Exception:  # the target went away: name what we can
        owner = "?"
    attributes = [patcher.attribute] + [p.attribute for p in patcher.additional_patchers]
    return ", ".join(f"{owner}.{attribute}" for attribute in attributes)


def _object_name(obj: object) -> str:
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    name = getattr(obj, "__name__", None)
    return name if isinstance(name, str) else repr(obj)
