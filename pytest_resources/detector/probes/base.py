"""What every probe shares: the leak record and the probe contract."""

from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar, NamedTuple

KINDS = ("threads", "tasks", "fds", "processes", "env", "files", "memory")
#: Checked unless asked otherwise: files (see probes/files.py for its cost) and memory
#: figures are opt-in.
DEFAULT_KINDS = KINDS[:-2]
# Test infrastructure whose threads and signal handlers come and go around every test.
INFRA_MODULES = ("pytest_timeout", "execnet", "xdist", "pytest_resources")


class Leak(NamedTuple):
    """One leaked thing.

    ``identity`` names the thing ("thread 'worker-1'", "fd 7"), ``details`` says what it is
    and where it stands, ``signature`` is stable across runs (no addresses or pids) so a
    baseline can recognise the same leak again. (A NamedTuple: a frozen dataclass costs every
    pytest start-up ~1 ms to generate.)
    """

    kind: str
    identity: str
    details: str = ""
    signature: str = ""
    owner: str = ""
    #: Where it was created (``--resource-trace``): (file, line, function), innermost last.
    created: tuple[tuple[str, int, str], ...] = ()
    #: What a terminal shows of ``details`` without ``-v`` (None: all of them): without raw
    #: numbers (a thread's ident, a socket's inode) and the standard library's frames.
    brief: str | None = None
    #: For what a wider fixture leaked: the test during whose setup the fixture was made,
    #: which is where tracing shows it being created (see leakers.py).
    set_up_in: str = ""

    def text(self, verbose: bool = False, root: str = "") -> str:
        """The leak for people: ``details`` in full only when ``verbose``; paths under the
        ``root`` directory relative to it."""
        head = f"{self.kind}: {self.identity}"
        if self.owner:
            head += f" (owned by {self.owner})"
        details = self.details if verbose or self.brief is None else self.brief
        if self.created:
            details = "\n".join(filter(None, (details, created_text(self.created))))
        text = head
        if details:
            text += "\n" + "\n".join("    " + line for line in details.splitlines())
        return relative(text, root) if root else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "identity": self.identity,
            "details": self.details,
            "signature": self.signature or self.identity,
            "owner": self.owner,
            **({"created": [list(frame) for frame in self.created]} if self.created else {}),
            **({"brief": self.brief} if self.brief is not None else {}),
            **({"set_up_in": self.set_up_in} if self.set_up_in else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Leak:
        return cls(
            kind=str(data["kind"]),
            identity=str(data["identity"]),
            details=str(data.get("details", "")),
            signature=str(data.get("signature", "")),
            owner=str(data.get("owner", "")),
            created=tuple((str(f), int(n), str(fn)) for f, n, fn in data.get("created", ())),
            brief=None if data.get("brief") is None else str(data["brief"]),
            set_up_in=str(data.get("set_up_in", "")),
        )


def created_text(frames: tuple[tuple[str, int, str], ...]) -> str:
    """The creation site (``created at file:line in function``), then its callers outwards."""
    (file, line, func), *callers = reversed(frames)
    lines = [f"created at {file}:{line} in {func}"]
    lines += [f"    called from {f}:{n} in {fn}" for f, n, fn in callers]
    return "\n".join(lines)


def relative(text: str, root: str) -> str:
    """``text`` with the absolute paths under ``root`` written relative to it."""
    prefix = re.escape(root.rstrip(os.sep) + os.sep)
    # Only where a path starts: not inside a longer path that merely contains ``root``.
    return re.sub(rf"(?<![\w.~{re.escape(os.sep)}-]){prefix}", "", text)


Items = Mapping[Hashable, object]


class Probe(ABC):
    """Takes cheap, comparable snapshots of one resource kind.

    ``snapshot()`` runs twice per test and must be cheap; ``items()`` expands a snapshot into
    identity → value only when two snapshots differ; ``describe()`` runs only for what leaked.
    """

    kind: ClassVar[str]

    @abstractmethod
    def snapshot(self) -> Any: ...

    def refresh(self, snap: Any) -> Any:
        """The previous test's final snapshot as the next test's first: brought up to date
        with what pytest itself changes between tests (nothing, for most kinds)."""
        return snap

    def items(self, snap: Any) -> Items:
        result: Items = snap
        return result

    def count(self, snap: Any) -> int | None:
        """How many things the snapshot holds, for reports; None when a count means nothing."""
        return None

    def changed(self, before: Any, after: Any) -> dict[Hashable, tuple[object, object]]:
        """Identities that are new (or hold a new value) in ``after``."""
        old, new = self.items(before), self.items(after)
        missing = object()
        out: dict[Hashable, tuple[object, object]] = {}
        for key, value in new.items():
            prev = old.get(key, missing)
            if prev is missing:
                out[key] = (None, value)
            elif prev != value:
                out[key] = (prev, value)
        return out

    def ignored(self, key: Hashable, old: object, new: object) -> bool:
        return False

    def owned(self, keys: list[Hashable]) -> None:
        """``keys`` belong to a wider scope until ``released``: test verdicts pass over them
        by key, so the probe may stop keeping track of what they are."""
        return

    def released(self, keys: list[Hashable]) -> None:
        """The scope that owned ``keys`` ended: the next snapshot must know what they are."""
        return

    def unowned(
        self, key: Hashable, change: tuple[object, object], owned: object
    ) -> tuple[object, object] | None:
        """The part of a test's ``change`` to ``key`` that is not a wider scope's, which
        owns ``key`` at value ``owned``: none of it for an identity (the default). A count
        (bare threads) can have grown beyond what the owner made."""
        return None

    def remains(self, key: Hashable, owned: object, now: object, start: Items) -> bool:
        """Whether what a wider scope owned at value ``owned`` is still there once the scope
        ended, holding ``now`` (``start``: what the ending window began with)."""
        return now == owned

    @abstractmethod
    def describe(self, key: Hashable, old: object, new: object) -> Leak: ...

    def describe_together(self, keys: list[Hashable]) -> tuple[list[Leak], dict[Hashable, Leak]]:
        """Leaks that each stand for several leaked ``keys`` (an unclosed event loop for
        its descriptors), and the keys they cover, each with the leak that covers it; the rest
        are described one by one."""
        return [], {}

    def can_end(self, keys: list[Hashable]) -> bool:
        """Can any of these leaked things still go away by itself (a thread ends, a child
        exits)? Asked after the gc pass; when no leaked kind can, the verdict does not wait
        out the grace."""
        return True

    def settle(self, keys: list[Hashable], delay: float) -> None:
        """Give the leaked things ``delay`` seconds to go away by themselves."""
        time.sleep(delay)

    def close(self) -> None:
        """Release what the probe itself holds open."""
        return

    def cleanup(self, keys: list[Hashable], before: Any) -> None:
        """Undo what leaked, where that is safe (strict mode only); ``before`` is the
        snapshot from the start of the window. Most kinds cannot be undone safely."""
        return
