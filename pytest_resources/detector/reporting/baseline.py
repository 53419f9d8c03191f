"""The baseline file: known leaks keyed by test, kind and stable signature, read and written
here; matched against each test's leaks by ``verdict.KnownLeaks``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..verdict import Known

VERSION = 1
OPTION = "--resource-baseline"
Key = tuple[str, str]  # (kind, signature)


def load(path: Path) -> Known:
    """Read a baseline file; a malformed one is a ValueError naming the option."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r} (expected {VERSION})")
        known: Known = {}
        for entry in data["known_leaks"]:
            count = int(entry.get("count", 1))
            key = (str(entry["kind"]), str(entry["signature"]))
            known.setdefault(str(entry["nodeid"]), Counter())[key] += count
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"{OPTION}: {str(path)!r} is not a baseline file: {what}") from None
    return known


def dump(path: Path, known: Mapping[str, Counter[Key]]) -> None:
    """One sorted line per entry, so a review shows exactly what was added or removed."""
    rows = sorted(
        (nodeid, kind, sig, count)
        for nodeid, counts in known.items()
        for (kind, sig), count in counts.items()
        if count > 0
    )
    lines = [
        "    "
        + json.dumps(
            {"nodeid": nodeid, "kind": kind, "signature": sig, "count": count},
            ensure_ascii=False,
        )
        for nodeid, kind, sig, count in rows
    ]
    body = ",\n".join(lines)
    text = f'{{\n  "version": {VERSION},\n  "known_leaks": [\n{body}\n  ]\n}}\n'
    if not lines:
        text = f'{{\n  "version": {VERSION},\n  "known_leaks": []\n}}\n'
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def updated(old: Known, ran: Mapping[str, Iterable[Mapping[str, Any]]], rootpath: Path) -> Known:
    """``old`` with the entries of the tests that ran replaced by what they leaked now."""
    result: Known = {
        nodeid: counts
        for nodeid, counts in old.items()
        if nodeid not in ran and (rootpath / nodeid.split("::")[0]).exists()
    }
    for nodeid, records in ran.items():
        counts: Counter[Key] = Counter(
            (str(r["kind"]), str(r.get("signature") or r["identity"]))
            for r in records
            if not (r.get("stale") or r.get("fixed"))
            and (not r.get("allowed") or r.get("baselined"))
        )
        if counts:
            result[nodeid] = counts
    return result
