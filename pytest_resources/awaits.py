"""Where a coroutine is suspended, for the tasks probe's leak reports and the task manager's
stuck-task reports alike (neither imports the other)."""

from __future__ import annotations

from types import CoroutineType, GeneratorType

Site = tuple[str, int, str]


def await_chain(coro: object) -> list[str]:
    """One line per coroutine the task is suspended in, following ``await``s inwards."""
    return [site_text(site) for site in await_frames(coro)]


def site_text(site: Site) -> str:
    return f"{site[0]}:{site[1]} in {site[2]}"


def await_frames(coro: object) -> list[Site]:
    """(file, line, function) of each coroutine the task is suspended in, outermost first."""
    out = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            out.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        if isinstance(coro, CoroutineType):
            coro = coro.cr_await
        elif isinstance(coro, GeneratorType):
            coro = coro.gi_yieldfrom
        else:
            break
    return out
