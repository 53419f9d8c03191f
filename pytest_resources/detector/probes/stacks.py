"""Short, readable stacks for leak details."""

from __future__ import annotations

import threading
import traceback
from types import FrameType

MAX_FRAMES = 6


def format_frames(frame: FrameType | None, limit: int = MAX_FRAMES) -> str:
    """The innermost ``limit`` frames of ``frame``'s stack, innermost last."""
    if frame is None:
        return ""
    summary = [fs for fs in traceback.extract_stack(frame) if fs.filename != threading.__file__][
        -limit:
    ]
    return "".join(
        f"{fs.filename}:{fs.lineno} in {fs.name}\n"
        + (f"    {fs.line.strip()}\n" if fs.line else "")
        for fs in summary
    ).rstrip("\n")


def qualname(func: object) -> str:
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}"
