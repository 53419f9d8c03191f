"""pytest hooks: options, markers and the wiring from test phases to the leak guard."""

from __future__ import annotations

import asyncio
import importlib
import warnings
from collections.abc import Generator
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from .brokers import options as broker_options
from .detector import settings
from .detector.guard import Guard
from .detector.markers import marker_names
from .detector.probes.base import KINDS
from .detector.repeat import GROWTH_KEY, RepeatPlugin, memory_record, wants_repeat
from .detector.report import (
    MEMORY_ATTR,
    REPORT_ATTR,
    Summary,
    deliver,
    message,
    record_text,
    records,
)
from .detector.reporting import options as report_options
from .detector.verdict import judge, memory_leaks
from .errors import ResourceGuardWarning

if TYPE_CHECKING:
    from .detector.reporting.session import Reporting

RUN_SLOW = "--run-slow"
#: The modules of ``pytest_resources.fixtures``, each registered as a plugin (listed rather
#: than discovered: scanning the package costs every run; a test checks the list).
FIXTURE_MODULES = (
    "brokers",
    "lifecycle",
    "memory",
    "processes",
    "publishers",
    "queues",
    "snapshot",
    "state",
    "tasks",
)

MARKERS = (
    "resources(checks=..., skip=..., grace=..., strict=...): per-test leak-check settings; "
    "kinds are " + ", ".join(KINDS),
    "allow_leaks(*kinds, reason=...): a known leak of these kinds (all when none are named); "
    "in strict mode the test fails once the leak is gone",
    "slow: a long-running test, skipped unless --run-slow (or ini resource_run_slow) is given",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resources", "resource leak checks (pytest-resource-guard)")
    group.addoption(
        "--resource-strict",
        action="store_true",
        default=None,
        help="a leak makes the test error in teardown (ini: resource_strict)",
    )
    group.addoption(
        "--resource-checks",
        metavar="LIST",
        default=None,
        help="kinds to check, comma separated: " + ",".join(KINDS) + " or all "
        "(default: all but memory; ini: resource_checks)",
    )
    group.addoption(
        "--resource-grace",
        metavar="SECONDS",
        default=None,
        help="longest wait for a resource to go away before it is a leak "
        f"(default: {settings.DEFAULT_GRACE}; ini: resource_grace)",
    )
    group.addoption(
        "--no-resource-checks",
        action="store_true",
        default=False,
        help="keep the plugin loaded but check nothing (-p no:resources unloads it)",
    )
    group.addoption(
        "--resource-repeat",
        metavar="N",
        default=None,
        help="run each test body N more times under tracemalloc and report growth that "
        "repeats in every run (ini: resource_repeat)",
    )
    parser.addini("resource_strict", "leaks fail the test (true/false)", default="false")
    parser.addini("resource_checks", "kinds to check (default: all but memory)", default="")
    parser.addini("resource_repeat", "extra runs of each test body for memory growth", default="")
    parser.addini(
        "resource_memory_limit", "peak RSS growth a test may cause, e.g. 64MB", default=""
    )
    parser.addini(
        "resource_repeat_threshold",
        "growth per repeated run that counts as a leak (default 1KiB)",
        default="",
    )
    parser.addini("resource_grace", "seconds to wait before a diff is a leak", default="")
    parser.addini("resource_run_slow", "run tests marked slow", type="bool", default=False)
    for kind, what in (
        ("threads", "thread-name patterns"),
        ("fds", "fd target patterns (paths, socket:*, pipe:*)"),
        ("processes", "child process command-line patterns"),
        ("env", "environment variable name patterns"),
    ):
        parser.addini(
            f"resource_ignore_{kind}", f"never report these {what} (fnmatch)", type="linelist"
        )
    broker_options.add_options(parser)
    report_options.add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None]:
    yield
    # Added only now, after the root conftest: a suite with its own --run-slow keeps it.
    if not _option_taken(parser, RUN_SLOW):
        parser.getgroup("resources").addoption(
            RUN_SLOW,
            action="store_true",
            default=False,
            help="run tests marked slow (ini: resource_run_slow)",
        )


def _option_taken(parser: pytest.Parser, name: str) -> bool:
    groups = [parser._anonymous, *parser._groups]
    return any(name in option.names() for group in groups for option in group.options)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(ResourcesPlugin(config), "resources-guard")
    for name in FIXTURE_MODULES:
        module = importlib.import_module(f"{__package__}.fixtures.{name}")
        config.pluginmanager.register(module, f"resources-fixtures-{name}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("run_slow", None) is None:
        return  # --run-slow belongs to the suite's own conftest, which decides
    if config.getoption("run_slow") or config.getini("resource_run_slow"):
        return
    skip = pytest.mark.skip(reason="slow test: pass --run-slow to run it")
    for item in items:
        if "slow" in marker_names(item):
            item.add_marker(skip)


class ResourcesPlugin:
    """Per-session hooks; each one hands over to the Guard or the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.settings = settings.from_config(config)
        #: What a test without markers runs with.
        self.per_test = self.settings.per_test
        self.guard = Guard(self.settings) if self.settings.enabled else None
        self.summary = Summary()
        self.reporting: Reporting | None = None
        if self.settings.reports:
            from .detector.reporting.session import Reporting  # on use: most runs write no report

            self.reporting = Reporting.create(config, self.settings)
        self._warned: set[str] = set()
        #: Leak records waiting for their test's teardown report, by nodeid.
        self._records: dict[str, list[dict[str, Any]]] = {}
        #: Memory figures waiting for their test's teardown report, by nodeid.
        self._memory: dict[str, dict[str, Any]] = {}
        #: pytest's failure count when the current test's setup began: a test whose setup or
        #: call failed keeps that failure, and its leaks are context, not a second error.
        self._failures = 0
        #: The logreport hook, registered only once a report needs it (see _carry).
        self._carrier: ReportCarrier | None = None
        #: Whether any test's body is repeated for memory growth (see repeat.py).
        self._repeating = False
        # Reports from xdist workers and report files need every teardown report.
        if self.reporting is not None or _xdist_controller(config):
            self._carry(config)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # Repeating needs a call-phase wrapper; only runs that ask for it pay for one.
        if self.guard is not None and wants_repeat(self.settings, items):
            self._repeating = True
            config.pluginmanager.register(
                RepeatPlugin(self.settings.repeat_threshold), "resources-repeat"
            )

    def pytest_report_header(self) -> str:
        s = self.settings
        if self.guard is None:
            return "resources: checks off (--no-resource-checks)"
        mode = "strict (leaks fail)" if s.strict else "warn"
        return f"resources: checking {', '.join(s.checks)}; mode: {mode}; grace: {s.grace}s"

    def pytest_sessionstart(self) -> None:
        if self.guard is not None:
            self.guard.start()

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.guard is not None:
            self.guard.stop()
            self.summary.outside.extend(self.guard.between)
        if self.reporting is not None:
            self.reporting.finish(exitstatus, self.summary.outside, self.summary.problems)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None]:
        if self.guard is None:
            return (yield)
        try:
            test = settings.for_item(self.per_test, item)
        except ValueError as exc:
            error = str(exc)
        else:
            error = ""
        if error:
            # Fail after pytest's own setup ran, so its teardown finds what it expects.
            yield
            pytest.fail(error, pytrace=False)
        item.stash[settings.SETTINGS_KEY] = test
        self._failures = item.session.testsfailed
        self.guard.open(test.checks, test.measures_memory)
        if self.reporting is not None:
            self.reporting.open()
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None]:
        try:
            return (yield)
        finally:
            test = settings.settings_of(item)
            if self.guard is not None and test is not None:
                self._verdict(item, test)

    def _verdict(self, item: pytest.Item, test: settings.TestSettings) -> None:
        assert self.guard is not None
        window = self.guard.window
        leaks = self.guard.close(test.grace, test.strict)
        if self.guard.disabled:
            self._warn_disabled()
        figures = self.guard.memory
        growth = item.stash.get(GROWTH_KEY, None) if self._repeating else None
        if figures is not None or growth is not None:
            self._memory[item.nodeid] = memory_record(figures, growth)
            self._carry(item.config)
            leaks += memory_leaks(
                figures, test.memory_limit, growth, self.settings.repeat_threshold
            )
        if not leaks and test.allowed is None and self.reporting is None:
            return  # the common case: nothing to judge, record or report
        judgement = judge(leaks, test.allowed)
        if self.reporting is not None:
            judgement = self.reporting.close(item.nodeid, judgement, self.guard.checker, window)
        if judgement.clean:
            return
        found = self._records[item.nodeid] = records(judgement)
        self._carry(item.config)
        item.user_properties.extend(
            ("resource_leak", record_text(r)) for r in found if not r.get("allowed")
        )
        text = message(item.nodeid, judgement, test.allow_reason)
        if text:
            failed = item.session.testsfailed > self._failures
            deliver(item, text, test.strict, already_failed=failed)

    def _carry(self, config: pytest.Config) -> None:
        """Register the logreport hook (from now on): it costs three hook calls per test, so a
        run pays for it only once a report has something to carry. Registered before the
        teardown report is made, it sees this test's."""
        if self._carrier is None:
            self._carrier = ReportCarrier(self)
            config.pluginmanager.register(self._carrier, "resources-reports")

    def _warn_disabled(self) -> None:
        assert self.guard is not None
        for kind, error in self.guard.disabled.items():
            if kind not in self._warned:
                self._warned.add(kind)
                problem = f"the {kind!r} probe failed and is now off: {error}"
                self.summary.problems.append(problem)
                warnings.warn(ResourceGuardWarning(problem), stacklevel=1)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        guard = self.guard
        if guard is None:
            return (yield)
        if fixturedef.scope == "function" or guard.window is None:
            value = yield
        else:
            with guard.scoped_fixture(_owner(fixturedef)):
                value = yield
        if isinstance(value, asyncio.Runner):
            loop = value.get_loop()
            guard.watch_loop(loop)
            loop_owner = "" if fixturedef.scope == "function" else _owner(fixturedef)
            # Added after the runner fixture's own finalizer, so it runs before it.
            fixturedef.addfinalizer(partial(guard.before_loop_close, loop, loop_owner))
        return value

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # Runs after the fixture's own teardown: what it still owns now has leaked.
        if self.guard is not None and fixturedef.scope != "function":
            self.guard.release(_owner(fixturedef))

    def logreport(self, report: pytest.TestReport) -> None:
        if self.reporting is not None:
            self.reporting.add(report)
        if report.when != "teardown":
            return
        if self._memory or self._records:
            nodeid = report.nodeid  # a property that builds the string
            if (memory := self._memory.pop(nodeid, None)) is not None:
                setattr(report, MEMORY_ATTR, memory)
            if (found := self._records.pop(nodeid, None)) is not None:
                setattr(report, REPORT_ATTR, found)
        self.summary.add(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.summary.write(terminalreporter, self.settings.strict)
        if self.reporting is not None:
            self.reporting.summary(terminalreporter)


class ReportCarrier:
    """Puts each test's leak records and memory figures on its teardown report, where
    junitxml, user hooks and xdist's serialisation find them, and sums them up."""

    def __init__(self, plugin: ResourcesPlugin) -> None:
        self.plugin = plugin

    @pytest.hookimpl(tryfirst=True)  # before junitxml and xdist's serialisation
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.plugin.logreport(report)


def _xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests to xdist workers (and gets their reports)."""
    dist: str = getattr(config.option, "dist", "no")
    return dist != "no" and not hasattr(config, "workerinput")


def _owner(fixturedef: pytest.FixtureDef[Any]) -> str:
    return f"{fixturedef.scope}-scoped fixture {fixturedef.argname!r}"
