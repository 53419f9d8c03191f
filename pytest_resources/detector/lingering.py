"""Non-daemon threads still running when the session ends.

Python waits for every non-daemon thread before the process exits, so one leaked thread hangs
the whole run after its last line of output, with no hint why. Named at session end instead.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from .probes.stacks import format_frames, qualname, thread_stack
from .probes.threads import origin

SECTION = "threads still running at exit"


def lingering_threads(grace: float) -> list[threading.Thread]:
    """Non-daemon threads that are still alive after ``grace`` seconds (shared by all): one
    a session fixture just told to stop gets the time to finish."""
    main = threading.main_thread()
    threads = [
        t
        for t in threading.enumerate()
        if not t.daemon and t is not main and not isinstance(t, threading._DummyThread)
    ]
    if not threads:
        return []
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]


def write_lingering(
    terminal: Any, threads: list[threading.Thread], leaked_by: Mapping[threading.Thread, str]
) -> None:
    """A terminal section naming each thread, what runs it, where it is, and who leaked it."""
    terminal.write_sep("=", SECTION, red=True)
    terminal.write_line(
        f"Python waits for {len(threads)} non-daemon thread(s) before it exits; "
        "the run hangs until they end:",
        bold=True,
    )
    frames = sys._current_frames()
    for thread in threads:
        owner = leaked_by.get(thread)
        who = f"leaked by {owner}" if owner else "not reported as a test's leak"
        terminal.write_line(
            f"thread {thread.name!r} (target: {qualname(origin(thread))}, "
            f"ident: {thread.ident}), {who}"
        )
        stack = format_frames(thread_stack(frames.get(thread.ident or -1)))
        if stack:
            terminal.write_line("  stack (innermost last):")
            terminal.write_line("    " + stack.replace("\n", "\n    "))
