"""Named loggers' levels and handlers, for the env kind (the root logger's handlers it reads
itself). A session may hold thousands of loggers and no cheap read covers them, so
``Logger.addHandler``, ``removeHandler`` and ``setLevel`` are wrapped while a session runs:
the snapshot is one cached tuple of the loggers they were ever called on, rebuilt only after
a call. The root logger keeps the original methods (pytest adds and removes its capture
handlers there in every phase of every test), so a clean test pays one comparison.

Not seen: ``logger.handlers`` or ``logger.level`` assigned directly, and
``NullHandler``s (a library adds one to its logger when imported; it changes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

#: One logger's state: (name, level, handlers other than NullHandlers).
Entry = tuple[str, int, tuple[logging.Handler, ...]]
WRAPPED = ("addHandler", "removeHandler", "setLevel")


def entry(logger: logging.Logger) -> Entry:
    handlers = tuple(h for h in logger.handlers if type(h) is not logging.NullHandler)
    return (logger.name, logger.level, handlers)


class LoggerWatch:
    def __init__(self) -> None:
        #: The loggers the wrapped methods were called on, by name (loggers live for good).
        self.touched: dict[str, logging.Logger] = {}
        #: Each touched logger's state just before its first wrapped call: what a window
        #: that began before that call saw.
        self.first: dict[str, Entry] = {}
        self._calls = 0
        self._built = -1
        self._state: tuple[Entry, ...] = ()
        self._installs = 0
        self._originals: dict[str, Callable[..., Any]] = {}
        self._root_own: set[str] = set()

    def install(self) -> None:
        """Wrap the methods (nested sessions in one process share one set of wrappers)."""
        if self._installs == 0:
            for name in WRAPPED:
                original = vars(logging.Logger)[name]
                self._originals[name] = original
                setattr(logging.Logger, name, self._wrap(original))
                if name in vars(logging.RootLogger):
                    self._root_own.add(name)
                else:
                    setattr(logging.RootLogger, name, original)
        self._installs += 1

    def uninstall(self) -> None:
        self._installs -= 1
        if self._installs:
            return
        for name, original in self._originals.items():
            if getattr(vars(logging.Logger)[name], "__wrapped__", None) is original:
                setattr(logging.Logger, name, original)
            if name not in self._root_own and vars(logging.RootLogger).get(name) is original:
                delattr(logging.RootLogger, name)
        self._originals.clear()
        self._root_own.clear()

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(logger: logging.Logger, /, *args: Any, **kwargs: Any) -> Any:
            if logger.name not in self.touched:
                self.first[logger.name] = entry(logger)
                self.touched[logger.name] = logger
            self._calls += 1
            return original(logger, *args, **kwargs)

        wrapper.__name__ = wrapper.__qualname__ = original.__name__
        wrapper.__doc__ = original.__doc__
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper

    def state(self) -> tuple[Entry, ...]:
        """The touched loggers' states (the same object while no wrapped method ran)."""
        if self._built != self._calls:
            self._built = self._calls
            state = tuple(entry(logger) for logger in self.touched.values())
            if state != self._state:
                self._state = state
        return self._state

    def restore(self, name: str, was: Entry) -> None:
        """Put logger ``name`` back to ``was`` (strict mode): its level, and its handlers."""
        logger = self.touched[name]
        _, level, handlers = was
        now = entry(logger)[2]
        for handler in now:
            if handler not in handlers:
                logger.removeHandler(handler)
        for handler in handlers:
            if handler not in now:
                logger.addHandler(handler)
        logger.setLevel(level)


#: One per process, as logging's loggers are.
WATCH = LoggerWatch()
