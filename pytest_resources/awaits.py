"""Where a coroutine is suspended, for the tasks probe's leak reports and the task manager's
stuck-task reports alike (neither imports the other)."""

from __future__ import annotations

from types import CoroutineType, GeneratorType


def await_chain(coro: object) -> list[str]:
    """One line per coroutine the task is suspended in, following ``await``s inwards."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        if isinstance(coro, CoroutineType):
            coro = coro.cr_await
        elif isinstance(coro, GeneratorType):
            coro = coro.gi_yieldfrom
        else:
            break
    return lines
