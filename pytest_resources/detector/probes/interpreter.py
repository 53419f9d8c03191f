"""Interpreter-wide settings for the env kind, beyond os.environ, cwd, sys.path, signals and
the root logger: the rest of CPython regrtest's ``save_env`` list and more (hooks, limits,
umask, locale, atexit). One tuple of identities and small values per snapshot, so a clean
test pays one tuple comparison; names and repairs are looked up only for what changed."""

from __future__ import annotations

import _locale  # type: ignore[import-not-found,unused-ignore]
import asyncio
import atexit
import builtins
import faulthandler
import logging
import os
import shutil
import socket
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

#: The names of the values ``Interpreter.read`` returns, in order.
NAMES = (
    "sys.argv",
    "sys.stdin",
    "sys.stdout",
    "sys.stderr",
    "sys.path_hooks",
    "sys.meta_path",
    "builtins.__import__",
    "sys.gettrace()",
    "sys.getprofile()",
    "threading.settrace()",
    "threading.setprofile()",
    "sys.warnoptions",
    "warnings.showwarning",
    "sys.excepthook",
    "threading.excepthook",
    "sys.unraisablehook",
    "sys.getrecursionlimit()",
    "socket.getdefaulttimeout()",
    "os.umask",
    "time.tzname",
    "faulthandler.is_enabled()",
    "atexit handlers",
    "logging.disable",
    "asyncio event loop policy",
    "asyncio child watcher",
    "shutil archive formats",
    "shutil unpack formats",
    "sysconfig config vars",
    "locale",
)
#: Values that are sequences: reported as what was added and removed.
SEQUENCES = frozenset(
    {
        "sys.argv",
        "sys.path_hooks",
        "sys.meta_path",
        "sys.warnoptions",
        "shutil archive formats",
        "shutil unpack formats",
    }
)
#: Reset by pytest's warnings plugin after every test (see EnvProbe).
WARNINGS_STATE = frozenset({"warnings.showwarning"})


#: The key of atexit's handlers among the env kind's identities.
ATEXIT = ("interpreter", "atexit handlers")


class ExitHooks:
    """The handlers registered through ``atexit.register`` while installed: atexit has no
    API that lists them, so ``atexit.register`` is wrapped (one Python call more when a
    handler is registered, which is rare; nothing per test). A leak names the handlers its
    window registered, and the ownership walk finds a lazily filled cache's (a bound
    method's object). Handlers registered with ``from atexit import register`` done before
    the plugin loaded are counted (``atexit._ncallbacks()``), not named."""

    def __init__(self) -> None:
        #: Per registration, in order: its name and a weak reference to what it stands for
        #: (a bound method's object, else the function; None when that cannot be referenced).
        self.entries: list[tuple[str, weakref.ref[Any] | None]] = []
        self._installs = 0
        self._original: Callable[..., Any] = atexit.register
        self._wrapper: Callable[..., Any] | None = None

    def install(self) -> None:
        """Wrap ``atexit.register`` (nested sessions in one process share one wrapper)."""
        if self._installs == 0:
            self._original = original = atexit.register

            def register(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
                self._add(func)
                return original(func, *args, **kwargs)

            self._wrapper = register
            atexit.register = register
        self._installs += 1

    def uninstall(self) -> None:
        self._installs -= 1
        if self._installs == 0 and atexit.register is self._wrapper:
            atexit.register = self._original

    def _add(self, func: object) -> None:
        target = getattr(func, "__self__", None)
        if target is None:  # not ``or``: a bound method's object may be falsy (empty)
            target = func
        try:
            ref: weakref.ref[Any] | None = weakref.ref(target)
        except TypeError:
            ref = None
        self.entries.append((show("", func)[:200], ref))  # a partial's repr holds its args

    def since(self, old: object, new: object) -> list[tuple[str, weakref.ref[Any] | None]]:
        """The registrations between two values of ``atexit handlers``."""
        if not (isinstance(old, tuple) and isinstance(new, tuple)):
            return []
        return self.entries[old[3] : new[3]]


#: One per process, as atexit is.
EXIT_HOOKS = ExitHooks()


def _locale_name() -> str:
    # LC_CTYPE only: a category is ~1.7 k instructions to read, LC_ALL's composite name ~9 k
    # (callgrind); setlocale(LC_ALL, ...), what tests do, moves LC_CTYPE too.
    name: str = _locale.setlocale(_locale.LC_CTYPE, None)
    return name


class Interpreter:
    """Reads the settings; remembers the umask (reading it means setting it) and the
    session's first locale (what a repair of the locale goes back to)."""

    def __init__(self) -> None:
        self._umask = os.umask(0o022)
        os.umask(self._umask)
        self._start_locale = _locale.setlocale(_locale.LC_ALL, None)
        self._start_ctype = _locale_name()

    def read(self) -> tuple[object, ...]:
        # Set to the value seen last: when the test left it alone (nearly always) the umask
        # is never, even for an instant, anything else; otherwise put the test's back.
        mask = os.umask(self._umask)
        if mask != self._umask:
            os.umask(mask)
            self._umask = mask
        policy = asyncio.events._event_loop_policy  # type: ignore[attr-defined]
        config = sys.modules.get("sysconfig")
        config_vars = getattr(config, "_CONFIG_VARS", None)
        return (
            tuple(sys.argv),
            sys.stdin,
            sys.stdout,
            sys.stderr,
            tuple(sys.path_hooks),
            tuple(sys.meta_path),
            builtins.__import__,
            sys.gettrace(),
            sys.getprofile(),
            threading._trace_hook,  # type: ignore[attr-defined]
            threading._profile_hook,
            tuple(sys.warnoptions),
            warnings.showwarning,
            sys.excepthook,
            threading.excepthook,
            sys.unraisablehook,
            sys.getrecursionlimit(),
            socket.getdefaulttimeout(),
            mask,
            time.tzname,
            faulthandler.is_enabled(),
            # With whether weakref.finalize registered its one exit hook, and how many modules
            # are loaded: see lazy().
            (
                atexit._ncallbacks(),
                _finalize_registered(),
                len(sys.modules),
                len(EXIT_HOOKS.entries),
            ),
            logging.root.manager.disable,
            policy,
            getattr(policy, "_watcher", None),
            tuple(shutil._ARCHIVE_FORMATS),  # type: ignore[attr-defined]
            tuple(shutil._UNPACK_FORMATS),  # type: ignore[attr-defined]
            # Identity and size: copying ~1000 entries per test costs too much.
            None if config_vars is None else (id(config_vars), len(config_vars)),
            _locale_name(),
        )

    def restore(self, name: str, value: object) -> None:
        """Put ``name`` back to ``value`` (strict mode), where that is safe."""
        repair = _REPAIRS.get(name)
        if repair is not None:
            repair(value)
        elif name == "os.umask":
            assert isinstance(value, int)
            os.umask(value)
            self._umask = value
        elif name == "locale":
            category, setting = (
                (_locale.LC_ALL, self._start_locale)
                if value == self._start_ctype
                else (_locale.LC_CTYPE, value)
            )
            _locale.setlocale(category, str(setting))


def _finalize_registered() -> bool:
    registered: bool = weakref.finalize._registered_with_atexit  # type: ignore[attr-defined]
    return registered


def lazy(name: str, old: object, new: object) -> bool:
    """Is this change a one-time set-up rather than a leak? A lazily made default (the
    event loop policy, the child watcher, sysconfig's variables), or exit hooks that the
    modules imported meanwhile, or weakref.finalize's first use, registered."""
    if name == "asyncio event loop policy":
        return old is None and type(new) is asyncio.DefaultEventLoopPolicy
    if name in ("asyncio child watcher", "sysconfig config vars"):
        return old is None
    if name == "atexit handlers" and isinstance(old, tuple) and isinstance(new, tuple):
        count, registered, modules, _ = old
        count_now, registered_now, modules_now, _ = new
        return bool(count_now - count <= registered_now - registered or modules_now > modules)
    return False


def unowned_exit_hooks(old: object, new: object, owned: object) -> tuple[object, object] | None:
    """The part of a test's change to atexit's handlers beyond what a wider fixture that owns
    them at ``owned`` registered (cf. ThreadProbe.unowned: a count, not identities)."""
    if not (isinstance(old, tuple) and isinstance(new, tuple) and isinstance(owned, tuple)):
        return None
    floor = owned if owned[3] > old[3] else old
    return (floor, new) if new[0] > floor[0] else None


def registered_text(old: object, new: object) -> str:
    """The handlers registered between two values of ``atexit handlers``, one per line."""
    names = [name for name, _ in EXIT_HOOKS.since(old, new)]
    return "\n".join(f"registered: {name}" for name in names)


def show(name: str, value: object) -> str:
    """``value`` as the leak text shows it."""
    if name == "atexit handlers" and isinstance(value, tuple):
        return f"{value[0]} registered"
    if name == "sysconfig config vars" and isinstance(value, tuple):
        return f"a dict of {value[1]} entries"
    if callable(value) and hasattr(value, "__qualname__"):
        module = getattr(value, "__module__", None)
        return f"{module}.{value.__qualname__}" if module else value.__qualname__
    return repr(value)


def _set(owner: object, attribute: str) -> Callable[[object], None]:
    return lambda value: setattr(owner, attribute, value)


def _refill(get: Callable[[], list[Any]]) -> Callable[[object], None]:
    def refill(value: object) -> None:
        assert isinstance(value, tuple)
        get()[:] = value

    return refill


def _path_hooks(value: object) -> None:
    _refill(lambda: sys.path_hooks)(value)
    sys.path_importer_cache.clear()  # finders the removed hooks made; rebuilt on demand


def _unregister(register: dict[str, Any], unregister: Callable[[str], None]) -> Any:
    def repair(value: object) -> None:
        assert isinstance(value, tuple)
        for added in set(register) - set(value):
            unregister(added)

    return repair


def _policy(value: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.14 deprecates policies
        asyncio.set_event_loop_policy(value)  # type: ignore[arg-type]


def _tzname(_value: object) -> None:
    # The TZ variable is put back first (environ keys come first); tzset rereads it.
    time.tzset()


_REPAIRS: dict[str, Callable[[object], None]] = {
    "sys.argv": _refill(lambda: sys.argv),
    "sys.stdin": _set(sys, "stdin"),
    "sys.stdout": _set(sys, "stdout"),
    "sys.stderr": _set(sys, "stderr"),
    "sys.path_hooks": _path_hooks,
    "sys.meta_path": _refill(lambda: sys.meta_path),
    "builtins.__import__": _set(builtins, "__import__"),
    "sys.gettrace()": sys.settrace,  # type: ignore[dict-item]
    "sys.getprofile()": sys.setprofile,  # type: ignore[dict-item]
    "threading.settrace()": threading.settrace,  # type: ignore[dict-item]
    "threading.setprofile()": threading.setprofile,  # type: ignore[dict-item]
    "sys.warnoptions": _refill(lambda: sys.warnoptions),
    "warnings.showwarning": _set(warnings, "showwarning"),
    "sys.excepthook": _set(sys, "excepthook"),
    "threading.excepthook": _set(threading, "excepthook"),
    "sys.unraisablehook": _set(sys, "unraisablehook"),
    "sys.getrecursionlimit()": sys.setrecursionlimit,  # type: ignore[dict-item]
    "socket.getdefaulttimeout()": socket.setdefaulttimeout,  # type: ignore[dict-item]
    "time.tzname": _tzname,
    "logging.disable": logging.disable,  # type: ignore[dict-item]
    "asyncio event loop policy": _policy,
    "shutil archive formats": _unregister(
        shutil._ARCHIVE_FORMATS,  # type: ignore[attr-defined]
        shutil.unregister_archive_format,
    ),
    "shutil unpack formats": _unregister(
        shutil._UNPACK_FORMATS,  # type: ignore[attr-defined]
        shutil.unregister_unpack_format,
    ),
}
# Not repaired, only reported: faulthandler (pytest enables it on its own copy of stderr,
# which we cannot know), atexit (no API lists or removes an unknown hook), the child watcher
# and sysconfig's variables (what they held before is not kept).
