"""Leaks that announce themselves: ResourceWarning, unraisable exceptions from ``__del__``,
"coroutine ... was never awaited" and asyncio's "Task exception was never retrieved"."""

from __future__ import annotations

import logging
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from .base import Leak

#: Takes a leak; returns whether it was recorded (for a window that checks its kind).
Sink = Callable[[Leak], bool]

# Python's own default filter; inside a window it is swapped for CAPTURE so the warnings it
# would hide reach us (and only us: see _hidden_by_default).
DEFAULT_IGNORE = ("ignore", None, ResourceWarning, None, 0)
CAPTURE = ("always", None, ResourceWarning, None, 0)
_TASK_LOG = re.compile(r"Task exception was never retrieved|Task was destroyed but it is pending")


def classify(message: str) -> str:
    """The resource kind a ResourceWarning or RuntimeWarning text is about."""
    if "subprocess" in message:
        return "processes"
    # "unclosed event loop" stays fds: what an unclosed loop leaks is its descriptors.
    if "never awaited" in message or "Task" in message:
        return "tasks"
    return "fds"


def warning_leak(category: type[Warning], message: str) -> Leak | None:
    if issubclass(category, ResourceWarning):
        text = message.split("\n")[0]
        return Leak(classify(text), text, signature=f"warning:{_stable(text)}")
    if issubclass(category, RuntimeWarning) and "was never awaited" in message:
        return Leak("tasks", message, signature=f"warning:{_stable(message)}")
    return None


def _stable(text: str) -> str:
    # Drop addresses, fd numbers and ports so the signature survives a rerun.
    return re.sub(r"0x[0-9a-f]+|\d+", "N", text)


class EventCapture:
    """Routes self-announced leaks to ``sink`` while installed."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._prev_hook: Callable[[Any], object] | None = None
        self._log_handler = _AsyncioLogHandler(sink)
        self._prev_show: Callable[[warnings.WarningMessage], object] = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
        self._show_bound = self._show  # one bound method, compared by identity per window
        self._swapped = False
        #: While the plugin's own gc passes run (see ``keep``): what they surfaced that is
        #: not a leak a window recorded, as the text pytest would have shown.
        self.surfaced: list[str] | None = None

    def start(self) -> None:
        self._prev_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        logging.getLogger("asyncio").addHandler(self._log_handler)

    def stop(self) -> None:
        logging.getLogger("asyncio").removeHandler(self._log_handler)
        if sys.unraisablehook == self._unraisable and self._prev_hook is not None:
            sys.unraisablehook = self._prev_hook
        self._prev_hook = None

    def _unraisable(self, args: Any) -> None:
        exc = args.exc_value
        recorded = False
        if isinstance(exc, Warning):
            leak = warning_leak(type(exc), str(exc))
            if leak is not None:
                recorded = self._sink(leak)
        if self.surfaced is not None:
            # Our own collection set it off: it belongs to the test being judged, not to
            # whichever test pytest's hook would next report it on.
            if not recorded:
                self.surfaced.append(unraisable_text(args))
            return
        if self._prev_hook is not None:
            self._prev_hook(args)

    def keep(self) -> None:
        """From now until ``kept()``: what is surfaced is the current test's (called before
        the plugin's own gc passes and grace waits)."""
        if self.surfaced is None:
            self.surfaced = []

    def kept(self) -> list[str]:
        """Stop keeping; the texts of unraisable exceptions kept that are not recorded
        leaks."""
        surfaced, self.surfaced = self.surfaced, None
        return surfaced or []

    def open_window(self) -> None:
        """Capture warnings from now on, without changing what pytest records."""
        self._prev_show = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
        warnings._showwarnmsg_impl = self._show_bound  # type: ignore[attr-defined]
        self._swapped = _swap_filter(DEFAULT_IGNORE, CAPTURE)

    def close_window(self) -> None:
        if warnings._showwarnmsg_impl is self._show_bound:  # type: ignore[attr-defined]
            warnings._showwarnmsg_impl = self._prev_show  # type: ignore[attr-defined]
        if self._swapped:
            self._swapped = False
            _swap_filter(CAPTURE, DEFAULT_IGNORE)

    def _show(self, msg: warnings.WarningMessage) -> None:
        leak = warning_leak(msg.category, str(msg.message))
        if leak is not None:
            self._sink(leak)
            if _hidden_by_default(msg):
                return
        self._prev_show(msg)


def unraisable_text(args: Any) -> str:
    """What Python (and pytest) print for an unraisable exception."""
    head = f"{args.err_msg or 'Exception ignored in'}: {args.object!r}"
    body = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    return f"{head}\n\n{body}"


def _swap_filter(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Replace the last filter equal to ``old`` by ``new`` (the default filters come last)."""
    filters = warnings.filters
    index = len(filters) - 1
    while index >= 0 and filters[index] != old:
        index -= 1
    if index < 0:
        return False
    filters[index] = new  # type: ignore[index]
    warnings._filters_mutated()  # type: ignore[attr-defined]
    return True


def _hidden_by_default(msg: warnings.WarningMessage) -> bool:
    """Would the first filter matching ``msg`` have been Python's default ignore?"""
    text = str(msg.message)
    module = msg.filename[:-3] if msg.filename.endswith(".py") else msg.filename
    for entry in warnings.filters:
        _action, regex, category, mod, lineno = entry
        if (
            (regex is None or regex.match(text))
            and issubclass(msg.category, category)
            and (mod is None or mod.match(module))
            and (lineno == 0 or lineno == msg.lineno)
        ):
            return entry is CAPTURE
    return False


class _AsyncioLogHandler(logging.Handler):
    def __init__(self, sink: Sink) -> None:
        super().__init__(logging.ERROR)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _TASK_LOG.search(message):
            first = message.split("\n")[0]
            task = next((line for line in message.splitlines() if "task:" in line), "")
            self._sink(Leak("tasks", first, task.strip(), signature=f"asyncio:{_stable(first)}"))
