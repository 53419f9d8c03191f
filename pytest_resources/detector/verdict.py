"""From snapshots to leaks (diff, one gc pass, a bounded backoff), and from leaks to the
verdict (``decide``).

A clean test pays for two cheap snapshots per kind and an equality check. Only kinds whose
snapshots differ get expanded, filtered, waited on and described.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .probes.base import Items, Leak, Probe
from .sizes import format_size

if TYPE_CHECKING:
    from .ownership import Claims
    from .probes.memory import Growth, MemoryFigures
    from .settings import TestSettings

#: Adds a leak's creation site (``Tracer.annotate``, with ``--resource-trace``).
Annotate = Callable[[str, Hashable, Leak], Leak]

FIRST_DELAY = 0.001
MAX_DELAY = 0.1

Diff = dict[Hashable, tuple[object, object]]
#: Decides, for the leaks of a window, which ones something long-lived still owns (see
#: ownership.claim); called with the window's context (the test item) only on the leak path.
Claimer = Callable[[Any, Mapping[str, Diff]], "Claims"]


class Left(NamedTuple):
    """One thing a window leaked: its probe's key and value, and the leak that names it."""

    kind: str
    key: Hashable
    value: object
    leak: Leak


class Window:
    """What is known about one test (or block) while it runs."""

    # A plain slotted class: one is made per test, and a dataclass costs more to create.
    __slots__ = ("before", "events", "kinds")

    def __init__(self, kinds: tuple[str, ...], before: dict[str, Any]) -> None:
        self.kinds = kinds
        self.before = before
        self.events: list[Leak] = []


class Owned(NamedTuple):
    """Things created by a fixture wider than a test, excluded from test verdicts."""

    owner: str
    items: dict[str, dict[Hashable, object]]
    #: The test whose window they appeared in: tracing it shows where (see leakers.py).
    set_up_in: str


class Checker:
    """Takes the snapshots for a sequence of windows and turns differences into leaks.

    The final snapshot of one window is reused as the first of the next (for probes that
    allow it): whatever changes between two windows is attributed to the later one.
    """

    def __init__(
        self,
        probes: Mapping[str, Probe],
        annotate: Annotate | None = None,
        claimer: Claimer | None = None,
        collect: Callable[[], object] = gc.collect,
    ) -> None:
        self.probes: dict[str, Probe] = {}
        #: Probes that bring a carried-over snapshot up to date (see Probe.refresh).
        self._refreshing: list[tuple[str, Probe]] = []
        for kind, probe in probes.items():
            self.add(kind, probe)
        self.annotate: Annotate = annotate or _as_is
        self._claimer = claimer
        #: The gc pass of the leak path (the guard's keeps what it sets off for the test).
        self._collect = collect
        self._last: dict[str, Any] = {}
        #: The kinds of ``_last``, in window order.
        self._last_kinds: tuple[str, ...] = ()
        self._owned: list[Owned] = []
        #: Owned identities whose owner ended in the current window: undoing them (a class
        #: fixture restoring an env var it set) is not a change the test made.
        self._released: list[dict[str, dict[Hashable, object]]] = []
        #: The test whose window is open (or was last).
        self._test = ""
        #: Identities a test's repeated runs changed, by kind, with their value when the
        #: repeats began (None: absent then); see set_aside.
        self._repeated: dict[str, dict[Hashable, object]] = {}
        self.disabled: dict[str, str] = {}
        #: The last finished window's leaks, each with the key and value that leaked (see
        #: Pollution); empty for a clean window.
        self.left: list[Left] | tuple[()] = ()
        #: What the owners released in the current window left (Checker.release): part of
        #: the window's ``left``, so a later failure can name the fixture's state too.
        self._released_left: list[Left] = []

    def add(self, kind: str, probe: Probe) -> None:
        """Check ``kind`` from the next window on (its first snapshot is a fresh one)."""
        self.probes[kind] = probe
        if type(probe).refresh is not Probe.refresh:
            self._refreshing.append((kind, probe))

    # -- windows ---------------------------------------------------------------------------

    def begin(self, kinds: tuple[str, ...], nodeid: str = "") -> Window:
        self._test = nodeid
        if self._released:
            self._released.clear()
            self._released_left.clear()
        if self._repeated:
            self._repeated.clear()
        last = self._last
        # The common case: the same kinds as the last window, whose snapshots carry over
        # (disabled kinds never are in _last); only the probes that need it are refreshed.
        if kinds == self._last_kinds:
            before = last.copy()
        else:
            before = {kind: last[kind] for kind in kinds if kind in last}
            if len(before) != len(kinds):
                fresh = [k for k in kinds if k not in before and k in self.probes]
                before.update(self._snapshots(fresh))
        for kind, probe in self._refreshing:
            if kind in before:
                try:
                    before[kind] = probe.refresh(before[kind])
                except Exception as exc:
                    self._disable(kind, exc)
                    del before[kind]
        if len(before) != len(kinds):
            kinds = tuple(k for k in kinds if k in before)
        return Window(kinds, before)

    def finish(
        self, window: Window, grace: float, context: Any = None
    ) -> tuple[list[Leak], dict[str, Diff]]:
        """Leaks of ``window`` and the diffs strict cleanup may undo: what the claimer (given
        ``context``) finds still owned by something long-lived is neither."""
        after = self._snapshots(window.kinds)
        diffs = self._settle(window.before, after, grace)
        leaks = list(window.events)
        safe = diffs
        if diffs and context is not None and self._claimer is not None:
            safe = self._claim(diffs, self._claimer(context, diffs))
        if diffs or self._released_left:
            left: list[Left] = self._released_left.copy()
            for kind, diff in diffs.items():
                leaks.extend(self._describe(kind, diff, left))
            self.left = left
        elif self.left:
            self.left = ()
        disabled = self.disabled
        if disabled:
            after = {k: v for k, v in after.items() if k not in disabled}
        self._last = after
        self._last_kinds = window.kinds if len(after) == len(window.kinds) else tuple(after)
        return leaks, safe

    def _claim(self, diffs: dict[str, Diff], claims: Claims) -> dict[str, Diff]:
        """Hand what a live owner still reaches to that owner (checked when it ends) and drop
        it from ``diffs``; return the part of ``diffs`` that is provably the test's."""
        by_owner: dict[str, dict[str, dict[Hashable, object]]] = {}
        for kind, owners in claims.owners.items():
            diff = diffs[kind]
            for key, owner in owners.items():
                by_owner.setdefault(owner, {}).setdefault(kind, {})[key] = diff.pop(key)[1]
            if not diff:
                del diffs[kind]
        self._owned.extend(Owned(o, items, self._test) for o, items in by_owner.items())
        if not claims.unsure:
            return diffs
        safe = {
            kind: {k: v for k, v in diff.items() if k not in claims.unsure.get(kind, ())}
            for kind, diff in diffs.items()
        }
        return {kind: diff for kind, diff in safe.items() if diff}

    def cleanup(self, window: Window, diffs: Mapping[str, Diff]) -> None:
        """Undo what leaked where a probe can do so safely, then re-snapshot."""
        for kind, diff in diffs.items():
            self._guarded(kind, self.probes[kind].cleanup, list(diff), window.before[kind])
            snap = self._safe_snapshot(kind)
            if kind in self.disabled:
                self._last.pop(kind, None)
                self._last_kinds = tuple(self._last)
            else:
                self._last[kind] = snap

    def close(self) -> None:
        for probe in self.probes.values():
            probe.close()

    @property
    def last(self) -> Mapping[str, Any]:
        """The final snapshots of the last finished window, by kind."""
        return self._last

    def forget(self) -> None:
        """Drop the reusable snapshot (the next window starts from a fresh one)."""
        self._last = {}
        self._last_kinds = ()

    # -- scope ownership -------------------------------------------------------------------

    def snapshot_all(self) -> dict[str, Any]:
        return self._snapshots(self.probes)

    def own(self, owner: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Attribute what appeared between ``before`` and ``after`` to ``owner``."""
        items: dict[str, dict[Hashable, object]] = {}
        for kind in before.keys() & after.keys():
            if before[kind] != after[kind]:
                diff = self._guarded(kind, self.probes[kind].changed, before[kind], after[kind])
                if diff:
                    items[kind] = {key: new for key, (_old, new) in diff.items()}
                    self._guarded(kind, self.probes[kind].owned, list(diff))
        if items:
            self._owned.append(Owned(owner, items, self._test))

    def release(self, owner: str, grace: float) -> list[Leak]:
        """``owner`` ended: what it created and still exists is its leak."""
        mine = [o for o in self._owned if o.owner == owner]
        self._owned = [o for o in self._owned if o.owner != owner]
        self._released.extend(o.items for o in mine)
        for owned in mine:
            for kind, items in owned.items.items():
                self._guarded(kind, self.probes[kind].released, list(items))
        leaks: list[Leak] = []
        for owned in mine:
            for kind, items in owned.items.items():
                if kind in self.disabled:
                    continue
                remaining = self._wait_gone(kind, items, grace, self._start(kind))
                for key, value in remaining.items():
                    leak = self._guarded(kind, self.probes[kind].describe, key, None, value)
                    if leak is not None:
                        leak = self.annotate(kind, key, leak)
                        leak = leak._replace(owner=owner, set_up_in=owned.set_up_in)
                        leaks.append(leak)
                        self._released_left.append(Left(kind, key, value, leak))
        return leaks

    # -- internals -------------------------------------------------------------------------

    def snapshots(self, kinds: Iterable[str]) -> dict[str, Any]:
        return self._snapshots(kinds)

    def set_aside(self, before: Mapping[str, Any]) -> None:
        """Repeated runs judge memory only: what they changed since ``before`` (taken when
        they began) is judged as the first run left it, so a thread each run starts or an env
        var each run rewrites counts once (the repeat path only)."""
        after = self._snapshots(before)
        for kind in before.keys() & after.keys():
            if before[kind] == after[kind]:
                continue
            probe = self.probes[kind]
            changed = self._guarded(kind, probe.changed, before[kind], after[kind]) or {}
            first = self._guarded(kind, probe.items, before[kind]) or {}
            repeated = self._repeated.setdefault(kind, {})
            for key in changed:
                repeated.setdefault(key, first.get(key))

    def _as_first_run(self, kind: str, diff: Diff) -> Diff:
        repeated = self._repeated[kind]
        out: Diff = {}
        for key, (old, new) in diff.items():
            if key in repeated:
                new = repeated[key]
                if new == old:
                    continue
            out[key] = (old, new)
        return out

    def _diff(self, kind: str, before: Any, after: Any) -> Diff:
        if before == after:
            return {}
        probe = self.probes[kind]
        diff: Diff | None = self._guarded(kind, probe.changed, before, after)
        if not diff:
            return {}
        if self._repeated and kind in self._repeated:
            diff = self._as_first_run(kind, diff)
        owned = [o.items.get(kind, {}) for o in self._owned]
        owned += [items.get(kind, {}) for items in self._released]
        out: Diff = {}
        for key, pair in diff.items():
            mine: tuple[object, object] | None = pair
            for items in owned:
                if mine is not None and key in items:
                    mine = probe.unowned(key, mine, items[key])
            if mine is not None and not probe.ignored(key, *mine):
                out[key] = mine
        return out

    def _settle(
        self, before: Mapping[str, Any], after: dict[str, Any], grace: float
    ) -> dict[str, Diff]:
        diffs: dict[str, Diff] = {}
        for kind, snap in after.items():
            old = before[kind]
            # The clean path: the same snapshot object, or an equal one.
            if snap is not old and snap != old and (diff := self._diff(kind, old, snap)):
                diffs[kind] = diff
        if not diffs:
            return diffs
        self._collect()
        deadline = time.monotonic() + grace
        delay = FIRST_DELAY
        waiting: set[str] | None = None  # the kinds whose leaks can still end, once known
        while True:
            for kind in list(diffs):
                after[kind] = self._safe_snapshot(kind)
                diffs[kind] = self._diff(kind, before[kind], after[kind])
                if not diffs[kind] or kind in self.disabled:
                    del diffs[kind]
            if waiting is None:  # asked once, after the gc pass: the answer does not change
                waiting = {kind for kind, diff in diffs.items() if self._can_end(kind, diff)}
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not waiting.intersection(diffs):
                return diffs
            self._wait({k: d for k, d in diffs.items() if k in waiting}, min(delay, remaining))
            delay = min(delay * 2, MAX_DELAY)

    def _can_end(self, kind: str, diff: Mapping[Hashable, object]) -> bool:
        """Can waiting make any of these leaks go away (see Probe.can_end)?"""
        return bool(self._guarded(kind, self.probes[kind].can_end, list(diff)))

    def _wait(self, diffs: Mapping[str, Diff], delay: float) -> None:
        # Probes with their own way of waiting (tasks run their loop) share one slot.
        start = time.monotonic()
        for kind, diff in diffs.items():
            left = delay - (time.monotonic() - start)
            if left <= 0:
                return
            self._guarded(kind, self.probes[kind].settle, list(diff), left)

    def _start(self, kind: str) -> Items:
        """What ``kind`` held when the current window began (the last one's final snapshot)."""
        last = self._last.get(kind)
        return (self.expand(kind, last) or {}) if last is not None else {}

    def _wait_gone(
        self, kind: str, items: dict[Hashable, object], grace: float, start: Items
    ) -> dict[Hashable, object]:
        deadline = time.monotonic() + grace
        delay = FIRST_DELAY
        collected = False
        remains = self.probes[kind].remains
        while True:
            current = self.current(kind)
            if current is None:
                return {}
            left = {
                k: v for k, v in items.items() if k in current and remains(k, v, current[k], start)
            }
            remaining = deadline - time.monotonic()
            if not left or remaining <= 0:
                return left
            if not collected:
                self._collect()
                collected = True
                continue
            if not self._can_end(kind, left):
                return left
            self._guarded(kind, self.probes[kind].settle, list(left), min(delay, remaining))
            delay = min(delay * 2, MAX_DELAY)

    def current(self, kind: str) -> Items | None:
        """What ``kind`` holds now, expanded (None: the probe failed and is off)."""
        probe = self.probes[kind]
        items: Items | None = self._guarded(kind, lambda: probe.items(probe.snapshot()))
        return items

    def expand(self, kind: str, snap: Any) -> Items | None:
        items: Items | None = self._guarded(kind, self.probes[kind].items, snap)
        return items

    def _describe(self, kind: str, diff: Diff, left: list[Left]) -> list[Leak]:
        probe = self.probes[kind]
        together = self._guarded(kind, probe.describe_together, list(diff))
        grouped, covered = together if together is not None else ([], {})
        leaks = list(grouped)
        for key, (old, new) in diff.items():
            if key in covered:
                left.append(Left(kind, key, new, covered[key]))
                continue
            leak = self._guarded(kind, probe.describe, key, old, new)
            if leak is not None:
                leak = self.annotate(kind, key, leak)
                leaks.append(leak)
                left.append(Left(kind, key, new, leak))
        return leaks

    def _safe_snapshot(self, kind: str) -> Any:
        return self._guarded(kind, self.probes[kind].snapshot)

    def _snapshots(self, kinds: Iterable[str]) -> dict[str, Any]:
        # The hot path of every test: _guarded's work, without a call per kind.
        out: dict[str, Any] = {}
        disabled = self.disabled
        for kind in kinds:
            if kind in disabled:
                continue
            try:
                out[kind] = self.probes[kind].snapshot()
            except Exception as exc:
                self._disable(kind, exc)
        return out

    def _disable(self, kind: str, exc: Exception) -> None:
        self.disabled[kind] = f"{type(exc).__name__}: {exc}"

    def _guarded(self, kind: str, func: Any, *args: Any) -> Any:
        """Run probe code; an internal error disables the probe instead of breaking the run."""
        if kind in self.disabled:
            return None
        try:
            return func(*args)
        except Exception as exc:
            self._disable(kind, exc)
            return None


def _as_is(kind: str, key: Hashable, leak: Leak) -> Leak:
    return leak


class Judgement(NamedTuple):
    """Everything decided about one test: its leaks sorted by what they mean, and its memory
    figures. Made in one place, ``decide``; the rest of the plugin only tells it."""

    failing: tuple[Leak, ...] = ()
    #: Leaks of kinds the test's ``allow_leaks`` marker expects.
    tolerated: tuple[Leak, ...] = ()
    #: Kinds ``allow_leaks`` expects that did not leak: the marker is out of date.
    stale: tuple[str, ...] = ()
    #: Leaks the baseline file lists, and its entries that did not leak: (kind, signature,
    #: count). Empty without a baseline.
    known: tuple[Leak, ...] = ()
    fixed: tuple[tuple[str, str, int], ...] = ()
    #: RSS figures of a test that measured memory, and its growth over repeated runs.
    figures: MemoryFigures | None = None
    growth: Growth | None = None

    @property
    def clean(self) -> bool:
        """Nothing to tell about leaks (memory figures alone are not a finding)."""
        return not (self.failing or self.tolerated or self.stale or self.known or self.fixed)


#: The verdict of almost every test.
CLEAN = Judgement()


def decide(
    leaks: list[Leak],
    test: TestSettings,
    figures: MemoryFigures | None = None,
    growth: Growth | None = None,
    threshold: int = 0,
    known: KnownLeaks | None = None,
    nodeid: str = "",
    complete: bool = True,
) -> Judgement:
    """The verdict of one test: the probes' ``leaks``, its memory limit and repeat growth, its
    ``allow_leaks`` marker and the baseline, in that order. ``complete`` is false for a test
    that failed or was skipped before its end (see ``KnownLeaks.apply``)."""
    measured = figures is not None or growth is not None
    if measured:
        leaks = leaks + memory_leaks(figures, test.memory_limit, growth, threshold)
    if not leaks and test.allowed is None and known is None:
        # Nearly every test: nothing to judge, at most figures to carry (one per test when
        # memory is measured, so without judge's and _replace's copies).
        return Judgement(figures=figures, growth=growth) if measured else CLEAN
    judgement = judge(leaks, test.allowed)
    if known is not None:
        judgement = known.apply(nodeid, judgement, test.checks, complete)
    if measured:
        judgement = judgement._replace(figures=figures, growth=growth)
    return judgement


def judge(leaks: list[Leak], allowed: frozenset[str] | None) -> Judgement:
    """Apply an ``allow_leaks`` marker: ``allowed`` is ``None`` without the marker and empty
    when the marker names no kind (any leak is expected)."""
    if allowed is None:
        return Judgement(tuple(leaks))
    failing = tuple(leak for leak in leaks if allowed and leak.kind not in allowed)
    tolerated = tuple(leak for leak in leaks if not allowed or leak.kind in allowed)
    if allowed:
        stale = tuple(sorted(allowed - {leak.kind for leak in tolerated}))
    else:
        stale = () if tolerated else ("any",)
    return Judgement(failing, tolerated, stale)


#: A baseline: known leaks by nodeid, counted by (kind, stable signature).
Known = dict[str, Counter[tuple[str, str]]]


def signature(leak: Leak) -> str:
    return leak.signature or leak.identity


class KnownLeaks:
    """The baseline file's entries, matched against each test's leaks (on whichever process
    runs the test). Only leaks absent from the file count; listed leaks that no longer happen
    are reported as fixed until the file is updated, so it only ever shrinks."""

    def __init__(self, known: Known, update: bool) -> None:
        self.known = known
        self.update = update

    def apply(
        self, nodeid: str, judgement: Judgement, checks: Iterable[str], complete: bool
    ) -> Judgement:
        """Move listed leaks out of ``failing``; list entries that did not leak as fixed.

        ``complete`` is false for a test that failed or was skipped before its end: what it
        did not reach says nothing about a fix.
        """
        if self.update:
            return judgement._replace(failing=(), known=judgement.failing)
        expected = self.known.get(nodeid)
        if not expected:
            return judgement
        budget = Counter(expected)
        failing, known = [], []
        for leak in judgement.failing:
            key = (leak.kind, signature(leak))
            if budget[key] > 0:
                budget[key] -= 1
                known.append(leak)
            else:
                failing.append(leak)
        checked = set(checks)
        fixed = tuple(
            (kind, sig, count)
            for (kind, sig), count in sorted(budget.items())
            if count > 0 and kind in checked and complete
        )
        return judgement._replace(failing=tuple(failing), known=tuple(known), fixed=fixed)


def memory_leaks(
    figures: MemoryFigures | None, limit: int | None, growth: Growth | None, threshold: int
) -> list[Leak]:
    """Memory fails a test only for a peak above its limit, growth in every repeated run or
    traced memory kept after it ended above its limit; raw RSS movement is never a verdict."""
    leaks = []
    if figures is not None and limit is not None and figures.peak_growth > limit:
        leaks.append(
            Leak(
                "memory",
                f"peak RSS grew by {format_size(figures.peak_growth)}, "
                f"above the limit of {format_size(limit)}",
                f"RSS {format_size(figures.rss_before)} at start, peak "
                f"{format_size(figures.peak)}, {format_size(figures.rss_after)} at end",
                signature="memory:limit",
            )
        )
    if growth is not None and growth.leaks(threshold):
        runs = ", ".join(format_size(delta) for delta in growth.deltas)
        sites = "\n".join(site.text() for site in growth.sites)
        leaks.append(
            Leak(
                "memory",
                f"grew {format_size(growth.per_run)} per run in each of "
                f"{len(growth.deltas)} repeated runs ({runs})",
                f"top allocation sites that grew:\n{sites}" if sites else "",
                signature="memory:growth",
            )
        )
    elif growth is not None and growth.kept is not None and growth.kept.leaks:
        # Growth in every run says more, and keeping is then its consequence.
        kept = growth.kept
        sites = "\n".join(site.text() for site in kept.sites)
        leaks.append(
            Leak(
                "memory",
                f"kept {format_size(kept.size)} after the test ended, "
                f"above the limit of {format_size(kept.limit)}",
                f"top allocation sites still holding it:\n{sites}" if sites else "",
                signature="memory:kept",
            )
        )
    return leaks


class Polluter(NamedTuple):
    """State a test left that was still in effect when its window closed."""

    nodeid: str
    kind: str
    key: Hashable
    #: What the key held (see _token): in effect while it still holds that.
    token: object
    leak: Leak


class Pollution:
    """The state earlier tests left behind (warn mode, or a strict repair not possible), so a
    later test's failure can name the tests whose state it ran under.

    Only kinds whose keys are plain values are kept: holding a leaked thread or task would
    keep alive what it reaches, and move its ResourceWarning onto a later test.
    """

    KINDS = frozenset({"env", "fds", "processes", "files"})
    #: The most polluters kept; the oldest go first.
    LIMIT = 200

    def __init__(self, checker: Checker) -> None:
        self._checker = checker
        self._left: list[Polluter] = []

    def __bool__(self) -> bool:
        return bool(self._left)

    def record(self, nodeid: str, left: Iterable[Left]) -> None:
        """Keep what ``nodeid``'s window left and strict cleanup did not undo (the leak path
        only: the checker's last snapshot is taken after cleanup)."""
        last = self._checker.last
        now: dict[str, Items] = {}
        for kind, key, value, leak in left:
            if kind not in self.KINDS or kind not in last:
                continue
            if kind not in now:
                now[kind] = self._checker.expand(kind, last[kind]) or {}
            if key in now[kind] and now[kind][key] == value:
                self._left.append(Polluter(nodeid, kind, key, _token(value), leak))
        del self._left[: -self.LIMIT]

    def in_effect(self) -> list[Polluter]:
        """The polluters whose state still holds now, most recent first; the others are
        forgotten (a change back is not undone later by anyone but a new polluter)."""
        current: dict[str, Items | None] = {}
        kept = []
        for polluter in self._left:
            kind = polluter.kind
            if kind not in current:
                current[kind] = self._checker.current(kind)
            items = current[kind]
            key = polluter.key
            if items is not None and key in items and _token(items[key]) == polluter.token:
                kept.append(polluter)
        self._left = kept
        return kept[::-1]


def _token(value: object) -> object:
    """``value`` compared without keeping it alive: objects by weak reference (equal while
    both live and are equal), tuples item by item, plain values as they are."""
    if isinstance(value, tuple):
        return tuple(map(_token, value))
    try:
        return weakref.ref(value)
    except TypeError:
        return value
