"""The ``slow`` marker and ``--run-slow``: slow tests are skipped only in a project that opts in.

A plugin that loads itself into every run of a virtualenv must not change which tests a suite
runs, so nothing is skipped unless the ini file says ``resource_slow = skip``.
"""

from __future__ import annotations

import pytest

from .detector.markers import marker_names

RUN_SLOW = "--run-slow"
INI = "resource_slow"
CHOICES = ("run", "skip")
MARKER = f"slow: a long-running test; skipped only where ini {INI} = skip, unless {RUN_SLOW}"
#: Set when ``--run-slow`` is ours, not the suite's own.
OURS = pytest.StashKey[bool]()


def add_ini(parser: pytest.Parser) -> None:
    parser.addini(INI, f"skip tests marked slow unless {RUN_SLOW}: run (default) or skip")


def add_option(config: pytest.Config, parser: pytest.Parser) -> None:
    """Add ``--run-slow`` unless the suite's root conftest already has one."""
    groups = [parser._anonymous, *parser._groups]
    if any(RUN_SLOW in option.names() for group in groups for option in group.options):
        return
    parser.getgroup("resources").addoption(
        RUN_SLOW,
        action="store_true",
        default=False,
        help=f"run tests marked slow where ini {INI} = skip",
    )
    config.stash[OURS] = True


def configure(config: pytest.Config) -> None:
    """Register the skipping, only when the project opted in; a bad value is a UsageError."""
    value = str(config.getini(INI)).strip() or "run"
    if value not in CHOICES:
        raise pytest.UsageError(f"{INI}: expected run or skip, got {value!r}")
    if value == "run":
        return
    if not config.stash.get(OURS, False):
        raise pytest.UsageError(
            f"{INI} = skip: this suite defines {RUN_SLOW} itself; let its own option decide "
            f"(remove {INI})"
        )
    if not config.getoption("run_slow"):
        config.pluginmanager.register(SkipSlow(), "resources-skip-slow")


class SkipSlow:
    """Skips every ``slow`` test (the project set ``resource_slow = skip``, no --run-slow)."""

    def pytest_report_header(self) -> str:
        return f"resources: skipping slow tests (ini {INI} = skip; {RUN_SLOW} runs them)"

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        skip = pytest.mark.skip(reason=f"slow test: pass {RUN_SLOW} to run it")
        for item in items:
            if "slow" in marker_names(item):
                item.add_marker(skip)
