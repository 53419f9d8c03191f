"""Byte sizes: parsed from options and markers, formatted for messages."""

from __future__ import annotations

import re

_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
}
#: Compiled on first use (re caches it): most runs never parse a size.
_SIZE = r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$"


def parse_size(value: object, name: str) -> int:
    """``"64MB"``, ``"1.5 GiB"`` or an int of bytes; anything else is a one-line error."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = re.match(_SIZE, value) if isinstance(value, str) else None
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{name}: expected a size like 64MB or 512KiB (units: KB, MB, GB, KiB, MiB, GiB), "
            f"got {value!r}"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: float) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(size) >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size:.0f} B"
