"""Who owns a leaked thing that something long-lived can still reach.

A session-scoped fixture that returns a registry, filled on first use by a function-scoped
fixture (a child process with pipes, a gateway, a connection), keeps that resource for every
later test: it is the fixture's, not a leak of the test that happened to fill the cache. The
same holds for a module global that a fixture's code fills. Deciding this costs a walk of
the object graph, so it runs only on the leak path, bounded by ``BUDGET`` objects.

The walk follows ``gc.get_referents`` breadth-first from the values of live fixtures wider
than a test (and their pending teardown, which holds a yield fixture's locals), then from the
module globals a fixture's code names. It does not enter modules, classes, module
dictionaries, event loops (a task left pending on a shared loop stays the test's) nor
pytest's own objects (a fixture value holding the session would reach everything).
"""

from __future__ import annotations

import asyncio
import gc
import io
import socket
import subprocess
import sys
import types
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, NamedTuple

from .probes import interpreter, threads

#: Objects visited per verdict at most. A completed walk proves that a leak is unreachable
#: from every live fixture; one that ran out of budget proves nothing (see Claims.unsure).
BUDGET = 100_000
#: How deep a fixture's code is followed into the same module's helper functions when
#: looking for the globals it fills.
HELPER_DEPTH = 3
#: Objects of these packages are never entered: pytest's nodes, requests and config reach
#: the whole session, and the plugin's own objects hold every snapshot.
OPAQUE_PACKAGES = frozenset({"_pytest", "pytest", "pluggy", "py"})
OPAQUE_MODULES = ("pytest_resources.detector", "pytest_resources.plugin")
#: Objects without referents that are never a target: skipped without a visit.
ATOMIC = frozenset({int, float, complex, str, bytes, bool, type(None)})
#: The kinds whose leaks are objects (or held by objects) a walk can find.
WALKED_KINDS = frozenset({"threads", "tasks", "fds", "processes"})


class Claims(NamedTuple):
    """The outcome of one walk for the leaks of a window."""

    #: kind -> key -> owner, for leaks a live fixture (or fixture-filled global) still reaches.
    owners: dict[str, dict[Hashable, str]]
    #: kind -> keys the walk could not rule out (it ran out of budget or failed): reported as
    #: the test's, but strict cleanup leaves them alone.
    unsure: dict[str, set[Hashable]]


def fixture_owner(fixturedef: Any) -> str:
    """How a fixture wider than a test is named as an owner (in leak texts and releases)."""
    return f"{fixturedef.scope}-scoped fixture {fixturedef.argname!r}"


class Owners:
    """The live fixtures wider than a test (in setup order), and the claim walk over them."""

    def __init__(self) -> None:
        self._live: dict[Any, None] = {}
        #: Bare threads already accounted for (a fixture's own, or judged in a window).
        self._seen_bare: set[int] = set()

    def started(self, fixturedef: Any) -> None:
        self._live[fixturedef] = None
        self._seen_bare.update(threads.bare_threads())

    def ended(self, fixturedef: Any) -> None:
        self._live.pop(fixturedef, None)

    def claim(self, item: Any, diffs: Mapping[str, Mapping[Hashable, object]]) -> Claims:
        """Which leaked keys of ``diffs`` a live wider fixture (or a module global a fixture
        of ``item`` names) still reaches, and which the walk could not rule out."""
        targets = _Targets(diffs)
        exit_hooks = diffs.get("env", {}).get(interpreter.ATEXIT)
        if isinstance(exit_hooks, tuple):
            targets.look_for_exit_hooks(interpreter.EXIT_HOOKS.since(*exit_hooks))
        if threads.UNMANAGED in diffs.get("threads", {}):
            bare = threads.bare_threads()
            targets.look_for_bare({i: f for i, f in bare.items() if i not in self._seen_bare})
            self._seen_bare.update(bare)
        if not targets:
            return Claims({}, {})
        try:
            complete = _walk(self._roots(item), targets)
        except Exception:  # a walk that fails proves nothing: report, but clean up nothing
            complete = False
        targets.settle_bare()
        targets.settle_exit_hooks()
        owners: dict[str, dict[Hashable, str]] = {}
        for (kind, key), owner in targets.found.items():
            owners.setdefault(kind, {})[key] = owner
        unsure: dict[str, set[Hashable]] = {}
        if not complete:
            for kind, key in targets.all():
                if key not in owners.get(kind, {}):
                    unsure.setdefault(kind, set()).add(key)
        return Claims(owners, unsure)

    def _roots(self, item: Any) -> list[tuple[str, object]]:
        """(owner, object) to walk from: module globals that fixtures of ``item`` name first
        (they outlive every fixture), then live fixture values from the widest scope in."""
        roots = list(_fixture_globals(item))
        order = {"session": 0, "package": 1, "module": 2, "class": 3}
        live = [d for d in self._live if d.cached_result is not None]
        for fixturedef in sorted(live, key=lambda d: order.get(d.scope, 4)):
            owner = fixture_owner(fixturedef)
            roots.append((owner, fixturedef.cached_result[0]))
            # A yield fixture's locals live in the generator its teardown will resume.
            roots.extend((owner, fin) for fin in getattr(fixturedef, "_finalizers", ()))
        return roots


class _Targets:
    """The leaked things a walk looks for, by the identity a visited object shows."""

    def __init__(self, diffs: Mapping[str, Mapping[Hashable, object]]) -> None:
        self.by_id: dict[int, tuple[str, Hashable]] = {}
        self.fds: dict[int, tuple[str, Hashable]] = {}
        self.pids: dict[int, tuple[str, Hashable]] = {}
        for kind in WALKED_KINDS & diffs.keys():
            for key in diffs[kind]:
                if kind == "fds" and isinstance(key, int):
                    self.fds[key] = (kind, key)
                elif kind == "processes" and isinstance(key, int):
                    self.pids[key] = (kind, key)
                elif kind in ("threads", "tasks") and not isinstance(key, (str, int)):
                    self.by_id[id(key)] = (kind, key)
        self.found: dict[tuple[str, Hashable], str] = {}
        self._holders: dict[type, object] = {}  # per class: _holder's answer
        #: New bare threads: the id of each object their outermost frames hold -> ident.
        self.bare: dict[int, int] = {}
        self._bare_objects: list[object] = []  # kept alive while their ids are keys
        self._bare_left: set[int] = set()
        self._bare_owner = ""
        #: What the atexit handlers a window registered stand for, by id -> the object.
        self._hooks_left: dict[int, object] = {}
        self._hooks_owner = ""
        self._hooks = False

    def look_for_bare(self, frames: Mapping[int, Any]) -> None:
        """The bare threads a test's window started (``threads.UNMANAGED``), by their frames."""
        for ident, frame in frames.items():
            for obj in threads.holders(frame):
                if type(obj) not in ATOMIC:
                    self.bare.setdefault(id(obj), ident)
                    self._bare_objects.append(obj)
            self._bare_left.add(ident)

    def look_for_exit_hooks(self, entries: list[tuple[str, Any]]) -> None:
        """The handlers a window registered (``interpreter.ATEXIT``): an owner's when it
        reaches what every one of them stands for; one that is gone or unreferenceable
        cannot be shown to be anyone's."""
        objects = [ref() if ref is not None else None for _, ref in entries]
        if objects and all(obj is not None for obj in objects):
            self._hooks = True
            self._hooks_left = {id(obj): obj for obj in objects}

    def settle_exit_hooks(self) -> None:
        if self._hooks and not self._hooks_left and self._hooks_owner:
            self.found.setdefault(("env", interpreter.ATEXIT), self._hooks_owner)

    def settle_bare(self) -> None:
        """The bare-thread count is one leak: an owner's when it reaches every new bare thread."""
        if self._bare_left or not self._bare_owner:
            return
        self.found.setdefault(("threads", threads.UNMANAGED), self._bare_owner)

    def __bool__(self) -> bool:
        return bool(self.by_id or self.fds or self.pids or self.bare or self._hooks)

    def all(self) -> Iterator[tuple[str, Hashable]]:
        yield from self.by_id.values()
        yield from self.fds.values()
        yield from self.pids.values()
        if self.bare:
            yield ("threads", threads.UNMANAGED)
        if self._hooks:
            yield ("env", interpreter.ATEXIT)

    @property
    def done(self) -> bool:
        if self._bare_left or self._hooks_left:
            return False
        return len(self.found) == len(self.by_id) + len(self.fds) + len(self.pids)

    def visit(self, obj: object, owner: str) -> None:
        if self._hooks_left and self._hooks_left.get(id(obj)) is obj:
            del self._hooks_left[id(obj)]
            self._hooks_owner = self._hooks_owner or owner
        if self.bare:
            ident = self.bare.get(id(obj))
            if ident is not None and ident in self._bare_left:
                self._bare_left.discard(ident)
                self._bare_owner = self._bare_owner or owner
        hit = self.by_id.get(id(obj))
        if hit is not None and hit[1] is obj:
            self.found.setdefault(hit, owner)
            return
        cls = type(obj)
        holder = self._holders.get(cls, _UNKNOWN)
        if holder is _UNKNOWN:
            holder = self._holders[cls] = _holder(cls)
        if holder is _fd_of and self.fds:
            key = self.fds.get(_fd_of(obj))  # type: ignore[arg-type]
        elif holder is _pid_of and self.pids:
            key = self.pids.get(_pid_of(obj))  # type: ignore[arg-type]
        else:
            return
        if key is not None:
            self.found.setdefault(key, owner)


_UNKNOWN = object()


def _holder(cls: type) -> Callable[[Any], int | None] | None:
    """How an object of ``cls`` shows a target: the fd it holds open, the pid it stands for."""
    if issubclass(cls, (socket.socket, io.FileIO)) or cls.__name__ == "epoll":
        return _fd_of
    if issubclass(cls, subprocess.Popen) or (
        cls.__name__ == "Popen" and cls.__module__.startswith("multiprocessing.")
    ):
        return _pid_of
    return None


def _fd_of(obj: Any) -> int | None:
    try:
        fd = obj.fileno()
    except (OSError, ValueError):  # closed
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _pid_of(obj: Any) -> int | None:
    pid = getattr(obj, "pid", None)
    return pid if isinstance(pid, int) else None


def _fixture_globals(item: Any) -> Iterator[tuple[str, object]]:
    """Module globals the code of ``item``'s fixtures (and their same-module helpers)
    names, whose values are data rather than code."""
    info = getattr(item, "_fixtureinfo", None)
    name2defs: Mapping[str, Any] = getattr(info, "name2fixturedefs", {})
    seen: set[tuple[str, str]] = set()
    for defs in name2defs.values():
        for fixturedef in defs:
            func = getattr(fixturedef, "func", None)
            if not isinstance(func, types.FunctionType):
                continue
            namespace = func.__globals__
            module = namespace.get("__name__", "?")
            for name in _names(func.__code__, namespace, HELPER_DEPTH, set()):
                value = namespace.get(name)
                if (module, name) in seen or value is None or _is_code(value):
                    continue
                seen.add((module, name))
                yield (
                    f"module global {module}.{name} (filled by fixture {fixturedef.argname!r})",
                    value,
                )


def _names(
    code: types.CodeType, namespace: dict[str, Any], depth: int, done: set[int]
) -> Iterator[str]:
    if id(code) in done:
        return
    done.add(id(code))
    for name in code.co_names:
        yield name
        helper = namespace.get(name)
        if depth and isinstance(helper, types.FunctionType) and helper.__globals__ is namespace:
            yield from _names(helper.__code__, namespace, depth - 1, done)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const, namespace, depth, done)


def _is_code(value: object) -> bool:
    code = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
    return isinstance(value, code)


def _opaque(cls: type) -> bool:
    """Objects of ``cls`` are visited but not entered."""
    if issubclass(cls, (type, types.ModuleType, types.CodeType, asyncio.AbstractEventLoop)):
        return True
    module = getattr(cls, "__module__", None) or ""
    return module.split(".", 1)[0] in OPAQUE_PACKAGES or module.startswith(OPAQUE_MODULES)


def _walk(roots: list[tuple[str, object]], targets: _Targets) -> bool:
    """Breadth-first over referents, one owner after the other (an object goes to the first
    owner that reaches it); True when the walk saw everything reachable (or found every
    target), False when it ran out of budget."""
    # Module dictionaries lead to every other module: never entered.
    seen = {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)}
    by_owner: dict[str, list[object]] = {}
    for owner, obj in roots:
        by_owner.setdefault(owner, []).append(obj)
    budget = BUDGET
    opaque: dict[type, bool] = {}
    for owner, frontier in by_owner.items():
        frontier = [obj for obj in frontier if id(obj) not in seen]
        seen.update(map(id, frontier))
        while frontier:
            budget -= len(frontier)
            if budget < 0:
                return False
            enter = []
            for obj in frontier:
                targets.visit(obj, owner)
                cls = type(obj)
                closed = opaque.get(cls)
                if closed is None:
                    closed = opaque[cls] = _opaque(cls)
                if not closed:
                    enter.append(obj)
            if targets.done:
                return True
            frontier = []
            # One call for the whole level; atomic objects hold nothing and are no target.
            for ref in gc.get_referents(*enter):
                if type(ref) not in ATOMIC and id(ref) not in seen:
                    seen.add(id(ref))
                    frontier.append(ref)
                    if len(frontier) > budget:
                        return False
    return True
