"""Options, ini keys and markers turned into validated settings (CLI > ini > default)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .markers import marker_names
from .probes.base import DEFAULT_KINDS, KINDS
from .sizes import parse_size

DEFAULT_GRACE = 0.5
DEFAULT_REPEAT_THRESHOLD = 1024
#: Memory a traced test may keep after it ended: above what first imports and warmed caches
#: of ordinary suites keep, far below an unbounded cache of real data.
DEFAULT_RETAINED = 16 * 1024**2


# The records here are NamedTuples: a frozen dataclass costs every pytest start-up ~1 ms to
# generate its methods.


class Settings(NamedTuple):
    enabled: bool = True
    strict: bool = False
    checks: tuple[str, ...] = DEFAULT_KINDS
    grace: float = DEFAULT_GRACE
    #: Peak RSS growth a test may cause, in bytes (None: no limit).
    memory_limit: int | None = None
    #: Extra runs of each test body for memory growth, and the growth per run that counts.
    repeat: int = 0
    repeat_threshold: int = DEFAULT_REPEAT_THRESHOLD
    #: Memory a traced test may keep after it ended, in bytes.
    memory_retained: int = DEFAULT_RETAINED
    ignore_threads: tuple[str, ...] = ()
    ignore_fds: tuple[str, ...] = ()
    ignore_processes: tuple[str, ...] = ()
    ignore_env: tuple[str, ...] = ()
    ignore_files: tuple[str, ...] = ()
    #: Where the files kind looks besides the temp dir and cwd, and what it never reports:
    #: pytest's rootdir, and an explicit ``--basetemp`` (empty: none given).
    rootdir: str = ""
    basetemp: str = ""
    #: pytest's warnings plugin is on: it resets the warnings filters after every test.
    warnings_reset: bool = False
    #: Files to write at the end of the run (None: not asked for).
    report: Path | None = None
    html: Path | None = None
    trace: bool = False
    #: Trace the tests that leaked in the last run (remembered in pytest's cache).
    trace_leakers: bool = True
    baseline: Path | None = None
    baseline_update: bool = False

    @property
    def reports(self) -> bool:
        """Is a report file or a baseline asked for?"""
        return bool(self.report or self.html or self.baseline)

    @property
    def per_test(self) -> TestSettings:
        """What a test without markers runs with."""
        return TestSettings(self.checks, self.grace, self.strict, self.memory_limit, self.repeat)


class TestSettings(NamedTuple):
    """The settings one test runs with, after its markers."""

    checks: tuple[str, ...]
    grace: float
    strict: bool
    memory_limit: int | None = None
    repeat: int = 0
    #: Kinds a test is expected to leak (``allow_leaks``): ``None`` without the marker,
    #: empty when the marker names no kind (any leak).
    allowed: frozenset[str] | None = None
    allow_reason: str = ""
    #: Memory the test may keep after it ended (``resources(retained=...)``); None without
    #: the marker argument.
    retained: int | None = None

    @property
    def measures_memory(self) -> bool:
        return "memory" in self.checks or self.memory_limit is not None


#: The session's settings (``config.stash``).
SESSION_KEY = pytest.StashKey[Settings]()
#: Where each test's settings live while it runs.
SETTINGS_KEY = pytest.StashKey[TestSettings]()


def settings_of(item: pytest.Item) -> TestSettings | None:
    return item.stash.get(SETTINGS_KEY, None)


def parse_kinds(
    value: str | Iterable[str], name: str, *, empty_ok: bool = False
) -> tuple[str, ...]:
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    if any(p == "all" for p in parts):
        return KINDS
    if not parts and not empty_ok:
        # An empty list would check nothing without saying so.
        raise ValueError(
            f"{name}: no kind given (choose from {', '.join(KINDS)} or 'all'; "
            "--no-resource-checks turns checking off)"
        )
    unknown = [p for p in parts if p not in KINDS]
    if unknown:
        raise ValueError(
            f"{name}: unknown kind {unknown[0]!r} (choose from {', '.join(KINDS)} or 'all')"
        )
    return tuple(k for k in KINDS if k in parts)


def parse_grace(value: object, name: str) -> float:
    try:
        grace = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected seconds as a number, got {value!r}") from None
    if not math.isfinite(grace) or grace < 0:
        raise ValueError(f"{name}: expected seconds >= 0, got {value!r}")
    return grace


def _bool_ini(config: pytest.Config, name: str) -> bool:
    value = config.getini(name)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def from_config(config: pytest.Config) -> Settings:
    """Read and validate every option; a bad value is a one-line ``pytest.UsageError``."""
    try:
        checks_cli = config.getoption("resource_checks")
        grace_cli = config.getoption("resource_grace")
        strict_cli = config.getoption("resource_strict")  # None unless --[no-]resource-strict
        return Settings(
            enabled=not config.getoption("no_resource_checks"),
            strict=strict_cli if strict_cli is not None else _bool_ini(config, "resource_strict"),
            checks=parse_kinds(checks_cli, "--resource-checks")
            if checks_cli is not None
            else parse_kinds(config.getini("resource_checks") or DEFAULT_KINDS, "resource_checks"),
            grace=parse_grace(grace_cli, "--resource-grace")
            if grace_cli is not None
            else parse_grace(config.getini("resource_grace") or DEFAULT_GRACE, "resource_grace"),
            memory_limit=_size_ini(config, "resource_memory_limit"),
            repeat=parse_repeat(
                config.getoption("resource_repeat") or config.getini("resource_repeat") or 0,
                "--resource-repeat" if config.getoption("resource_repeat") else "resource_repeat",
            ),
            repeat_threshold=_size_ini(config, "resource_repeat_threshold")
            or DEFAULT_REPEAT_THRESHOLD,
            memory_retained=parse_size(
                config.getini("resource_memory_retained") or DEFAULT_RETAINED,
                "resource_memory_retained",
            ),
            ignore_threads=tuple(config.getini("resource_ignore_threads")),
            ignore_fds=tuple(config.getini("resource_ignore_fds")),
            ignore_processes=tuple(config.getini("resource_ignore_processes")),
            ignore_env=tuple(config.getini("resource_ignore_env")),
            ignore_files=tuple(config.getini("resource_ignore_files")),
            rootdir=str(config.rootpath),
            basetemp=str(config.invocation_params.dir / config.option.basetemp)
            if getattr(config.option, "basetemp", None)
            else "",
            warnings_reset=config.pluginmanager.has_plugin("warnings"),
            report=_path_option(config, "resource_report"),
            html=_path_option(config, "resource_html"),
            trace=bool(config.getoption("resource_trace")) or _bool_ini(config, "resource_trace"),
            trace_leakers=_bool_ini(config, "resource_trace_leakers"),
            baseline=_baseline_path(config),
            baseline_update=bool(config.getoption("resource_baseline_update")),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def parse_repeat(value: object, name: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"{name}: expected a whole number of runs >= 0, got {value!r}")
    return int(text)


def _size_ini(config: pytest.Config, name: str) -> int | None:
    value = config.getini(name)
    return parse_size(value, name) if value else None


def parse_output_path(value: str, name: str, base: Path) -> Path:
    """A file the run writes: relative to ``base``, not a directory, in a directory that exists."""
    if not value.strip():
        raise ValueError(f"{name}: expected a file path, got {value!r}")
    path = base / Path(value).expanduser()
    if path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a directory, expected a file")
    if not path.parent.is_dir():
        raise ValueError(f"{name}: directory {str(path.parent)!r} does not exist")
    return path


def _path_option(config: pytest.Config, dest: str) -> Path | None:
    # CLI paths are relative to where pytest was started, ini paths to the ini file.
    cli = config.getoption(dest)
    if cli is not None:
        return parse_output_path(cli, "--" + dest.replace("_", "-"), config.invocation_params.dir)
    value = config.getini(dest)
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return parse_output_path(str(value), dest, base)


def _baseline_path(config: pytest.Config) -> Path | None:
    path = _path_option(config, "resource_baseline")
    update = config.getoption("resource_baseline_update")
    if path is None and update:
        raise ValueError(
            "--resource-baseline-update: needs --resource-baseline=PATH (or ini resource_baseline)"
        )
    if path is not None and not update and not path.is_file():
        raise ValueError(
            f"--resource-baseline: {str(path)!r} does not exist "
            "(write it with --resource-baseline-update)"
        )
    return path


RESOURCES_ARGS = ("checks", "skip", "grace", "strict", "memory_limit", "repeat", "retained")


def for_item(defaults: TestSettings, item: pytest.Item) -> TestSettings:
    """Apply the ``resources`` and ``allow_leaks`` markers to the session's ``defaults``;
    raise ValueError when malformed."""
    names = marker_names(item)
    if "resources" not in names and "allow_leaks" not in names:
        return defaults
    result = defaults
    marker = item.get_closest_marker("resources") if "resources" in names else None
    if marker is not None:
        result = _apply_resources(result, marker.args, marker.kwargs)
    allow = item.get_closest_marker("allow_leaks") if "allow_leaks" in names else None
    if allow is not None:
        unknown = set(allow.kwargs) - {"reason"}
        if unknown:
            raise ValueError(f"allow_leaks: unknown argument {sorted(unknown)[0]!r}")
        kinds = parse_kinds(allow.args, "allow_leaks") if allow.args else ()
        result = result._replace(
            allowed=frozenset(kinds),
            allow_reason=str(allow.kwargs.get("reason", "")),
        )
    return result


def _apply_resources(
    result: TestSettings, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> TestSettings:
    if args:
        raise ValueError("resources: keyword arguments only, e.g. resources(checks='threads')")
    unknown = set(kwargs) - set(RESOURCES_ARGS)
    if unknown:
        raise ValueError(
            f"resources: unknown argument {sorted(unknown)[0]!r} "
            f"(known: {', '.join(RESOURCES_ARGS)})"
        )
    checks = result.checks
    if "checks" in kwargs:
        checks = parse_kinds(kwargs["checks"], "resources(checks=...)")
    if "skip" in kwargs:
        skipped = parse_kinds(kwargs["skip"], "resources(skip=...)", empty_ok=True)
        checks = tuple(k for k in checks if k not in skipped)
    grace = result.grace
    if "grace" in kwargs:
        grace = parse_grace(kwargs["grace"], "resources(grace=...)")
    strict = result.strict
    if "strict" in kwargs:
        if not isinstance(kwargs["strict"], bool):
            raise ValueError(
                f"resources(strict=...): expected True or False, got {kwargs['strict']!r}"
            )
        strict = kwargs["strict"]
    limit = result.memory_limit
    if "memory_limit" in kwargs:
        limit = parse_size(kwargs["memory_limit"], "resources(memory_limit=...)")
    repeat = result.repeat
    if "repeat" in kwargs:
        repeat = parse_repeat(kwargs["repeat"], "resources(repeat=...)")
    retained = result.retained
    if "retained" in kwargs:
        retained = parse_size(kwargs["retained"], "resources(retained=...)")
    return result._replace(
        checks=checks,
        grace=grace,
        strict=strict,
        memory_limit=limit,
        repeat=repeat,
        retained=retained,
    )
