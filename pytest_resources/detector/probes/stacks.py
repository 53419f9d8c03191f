"""Short, readable stacks for leak details, and which of their frames are the user's."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable
from types import FrameType

MAX_FRAMES = 6
#: What a frame's file is: the code under test (kept), the standard library (skipped), or
#: the test runner (a stack walked outwards stops there).
KEEP, SKIP, STOP = 0, 1, 2
# Frames below these are the test runner's, not the code under test.
RUNNER_DIRS = ("/_pytest/", "/pluggy/", "/pytest_asyncio/", "/xdist/", "/execnet/")


class FrameFilter:
    """Sorts source files into KEEP, SKIP and STOP, remembering each answer."""

    def __init__(self, skip: Iterable[str] = ()) -> None:
        import sysconfig  # on use: only leaks and traced runs need it

        paths = sysconfig.get_paths()
        self._stdlib = tuple({paths["stdlib"], paths["platstdlib"]})
        self._kinds: dict[str, int] = dict.fromkeys(skip, SKIP)

    def kind(self, filename: str) -> int:
        kind = self._kinds.get(filename)
        if kind is None:
            if any(part in filename for part in RUNNER_DIRS):
                kind = STOP
            elif filename.startswith("<") or (
                filename.startswith(self._stdlib)
                and "site-packages" not in filename
                and "dist-packages" not in filename
            ):
                kind = SKIP
            else:
                kind = KEEP
            self._kinds[filename] = kind
        return kind

    def is_user(self, filename: str) -> bool:
        """Is it the code under test (not the standard library's or the runner's)?"""
        return self.kind(filename) == KEEP


def thread_stack(frame: FrameType | None) -> list[traceback.FrameSummary]:
    """``frame``'s stack, outermost first, without threading's own frames."""
    if frame is None:
        return []
    return [fs for fs in traceback.extract_stack(frame) if fs.filename != threading.__file__]


def format_frames(frames: list[traceback.FrameSummary], limit: int = MAX_FRAMES) -> str:
    """The innermost ``limit`` of ``frames`` with their source lines, innermost last."""
    return "".join(
        f"{fs.filename}:{fs.lineno} in {fs.name}\n"
        + (f"    {fs.line.strip()}\n" if fs.line else "")
        for fs in frames[-limit:]
    ).rstrip("\n")


def qualname(func: object) -> str:
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}"
