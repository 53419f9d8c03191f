"""pytest hooks: options, markers and the wiring from test phases to the leak guard."""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import slow
from .brokers import options as broker_options
from .detector import settings
from .detector.guard import Guard
from .detector.leakers import Leakers
from .detector.lingering import lingering_threads, write_lingering
from .detector.probes.base import KINDS
from .detector.repeat import GROWTH_KEY, RepeatPlugin, wants_repeat
from .detector.report import (
    NEXT_RUN_HINT,
    Summary,
    View,
    deliver,
    headline,
    message,
    surface,
    untraced,
    warning_text,
)
from .detector.reporting import options as report_options
from .detector.results import (
    COUNTS_KEY,
    HEADLINE_KEY,
    INCOMPLETE_KEY,
    JUDGEMENT_KEY,
    ControllerFeed,
    IncompleteTracker,
    PollutionNotes,
    ReportCarrier,
)
from .detector.verdict import CLEAN
from .detector.warn import warn
from .errors import ResourceGuardWarning
from .xdist_roles import is_xdist_controller

if TYPE_CHECKING:
    from .detector.reporting.session import Reporting

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
    "resources(checks=..., skip=..., grace=..., strict=..., memory_limit=..., repeat=..., "
    "retained=...): per-test leak-check settings; "
    "kinds are " + ", ".join(KINDS),
    "allow_leaks(*kinds, reason=...): a known leak of these kinds (all when none are named); "
    "in strict mode the test fails once the leak is gone",
    slow.MARKER,
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
        "--no-resource-strict",
        action="store_false",
        dest="resource_strict",
        default=None,
        help="warn about leaks, whatever ini resource_strict says",
    )
    group.addoption(
        "--resource-checks",
        metavar="LIST",
        default=None,
        help="kinds to check, comma separated: " + ",".join(KINDS) + " or all "
        "(default: all but files and memory; ini: resource_checks)",
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
    parser.addini(
        "resource_checks", "kinds to check (default: all but files and memory)", default=""
    )
    parser.addini("resource_repeat", "extra runs of each test body for memory growth", default="")
    parser.addini(
        "resource_memory_limit", "peak RSS growth a test may cause, e.g. 64MB", default=""
    )
    parser.addini(
        "resource_memory_retained",
        "memory a repeated test may keep after it ended (default 16MiB)",
        default="",
    )
    parser.addini(
        "resource_repeat_threshold",
        "growth per repeated run that counts as a leak (default 1KiB)",
        default="",
    )
    parser.addini("resource_grace", "seconds to wait before a diff is a leak", default="")
    slow.add_ini(parser)
    for kind, what in (
        ("threads", "thread-name patterns"),
        ("fds", "fd target patterns (paths, socket:*, pipe:*)"),
        ("processes", "child process command-line patterns"),
        ("env", "environment variable name patterns"),
        ("files", "file name or path patterns"),
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
    slow.add_option(early_config, parser)


#: pytest's failure count when a test's setup began: a test whose setup or call failed keeps
#: that failure, and its leaks are context, not a second error.
FAILURES_KEY = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    slow.configure(config)
    plugin = ResourcesPlugin(config)
    config.stash[settings.SESSION_KEY] = plugin.settings
    config.pluginmanager.register(plugin, "resources-guard")
    for name in FIXTURE_MODULES:
        module = importlib.import_module(f"{__package__}.fixtures.{name}")
        config.pluginmanager.register(module, f"resources-fixtures-{name}")


class ResourcesPlugin:
    """Per-session hooks; each one hands over to the Guard or the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.settings = settings.from_config(config)
        #: What a test without markers runs with.
        self.per_test = self.settings.per_test
        self.summary = Summary()
        self.reporting: Reporting | None = None
        if self.settings.reports:
            from .detector.reporting.session import Reporting  # on use: most runs write none

            self.reporting = Reporting.create(config, self.settings)
        known = self.reporting.known if self.reporting is not None else None
        self.leakers = _leakers(config, self.settings, self.summary)
        #: Tests that leaked in the last run: traced in this one (an empty set: none).
        self._traced: set[pytest.Item] = self.leakers.items if self.leakers else set()
        self.guard = (
            Guard(self.settings, known, trace_some=bool(self.leakers and self.leakers.remembered))
            if self.settings.enabled
            else None
        )
        self._warned: set[str] = set()
        #: Whether any test's body is repeated for memory growth (see repeat.py).
        self._repeating = False
        self.carrier = ReportCarrier(self.summary, self.reporting)
        self._carrying = False
        #: Whether failed tests' reports name the state earlier tests left (see PollutionNotes).
        self._naming = False
        if is_xdist_controller(config):
            config.pluginmanager.register(
                ControllerFeed(self.summary, self.reporting), "resources-controller"
            )
        elif self.reporting is not None:  # report files need every report from the start
            self._carry(config)
            if self.reporting.has_baseline:
                config.pluginmanager.register(IncompleteTracker(), "resources-incomplete")

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # Repeating needs a call-phase wrapper; only runs that ask for it pay for one.
        if self.guard is not None and wants_repeat(self.settings, items):
            self._repeating = True
            config.pluginmanager.register(
                RepeatPlugin(
                    self.settings.repeat_threshold, self.guard, self.settings.memory_retained
                ),
                "resources-repeat",
            )

    def pytest_report_header(self) -> str:
        s = self.settings
        if self.guard is None:
            return "resources: checks off (--no-resource-checks)"
        mode = "strict (leaks fail)" if s.strict else "warn"
        line = f"resources: checking {', '.join(s.checks)}; mode: {mode}; grace: {s.grace}s"
        if self.leakers is not None and self.leakers.remembered:
            line += f"; tracing the {len(self.leakers.remembered)} test(s) that leaked last run"
        return line

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
        item.stash[FAILURES_KEY] = item.session.testsfailed
        if self._traced and item in self._traced:
            self.guard.trace_window()
        self.guard.open(test.checks, test.measures_memory, item.nodeid)
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
                try:
                    self._verdict(item, test)
                finally:
                    if self.guard.surfaced:
                        surface(self.guard.take_surfaced())

    def _verdict(self, item: pytest.Item, test: settings.TestSettings) -> None:
        guard = self.guard
        assert guard is not None
        window = guard.window
        complete = INCOMPLETE_KEY not in item.stash  # not get(): it raises for a missing key
        if not complete:
            del item.stash[INCOMPLETE_KEY]  # a rerun of the item starts complete
        judgement = guard.close(
            test,
            item.nodeid,
            item.stash.get(GROWTH_KEY, None) if self._repeating else None,
            complete,
            item,
        )
        if guard.disabled:
            self._warn_disabled(item)
        if self.reporting is not None and window is not None:
            counts = self.reporting.counts(guard.checker, window)
            if counts is not None:
                item.stash[COUNTS_KEY] = counts
                self.carrier.expect(item)
        if judgement is CLEAN:
            return  # the common case: nothing to tell or carry
        item.stash[JUDGEMENT_KEY] = judgement
        self._carry(item.config)
        self.carrier.expect(item)
        if guard.pollution and not self._naming:
            self._naming = True
            item.config.pluginmanager.register(
                PollutionNotes(guard.pollution), "resources-polluters"
            )
        if judgement.clean:
            return
        if judgement.failing or judgement.stale or judgement.fixed:
            if test.strict:
                hint = self.summary.hint if untraced(judgement.failing) else ""
                if self._traced and item in self._traced:
                    hint = ""  # traced, and still nowhere to point at
                text = message(judgement, test.allow_reason, View.of(item.config), hint)
                item.stash[HEADLINE_KEY] = headline(judgement, test.allow_reason)
            else:
                text = warning_text(judgement, test.allow_reason)
            failed = item.session.testsfailed > item.stash.get(FAILURES_KEY, 0)
            deliver(item, text, test.strict, already_failed=failed)

    def _carry(self, config: pytest.Config) -> None:
        """From now on, results reach teardown reports (see ReportCarrier for why not always)."""
        if not self._carrying:
            self._carrying = True
            config.pluginmanager.register(self.carrier, "resources-reports")

    def _warn_disabled(self, item: pytest.Item) -> None:
        assert self.guard is not None
        for kind, error in self.guard.disabled.items():
            if kind not in self._warned:
                self._warned.add(kind)
                problem = f"the {kind!r} probe failed and is now off: {error}"
                self.summary.problems.append(problem)
                warn(ResourceGuardWarning(problem), str(item.path), (item.location[1] or 0) + 1)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        guard = self.guard
        if guard is None or fixturedef.scope == "function":
            return (yield)
        with guard.scoped_fixture(fixturedef):
            return (yield)

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # Runs after the fixture's own teardown: what it still owns now has leaked.
        if self.guard is not None and fixturedef.scope != "function":
            self.guard.fixture_ended(fixturedef)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.summary.write(terminalreporter, self.settings.strict)
        if self.guard is not None and (threads := lingering_threads(self.settings.grace)):
            write_lingering(terminalreporter, threads, self.guard.leaked_threads)
        if self.reporting is not None:
            self.reporting.summary(terminalreporter)


def _leakers(config: pytest.Config, s: settings.Settings, summary: Summary) -> Leakers | None:
    """The tests to trace because they leaked last time; None when tracing covers every
    test anyway, the ini key turns it off, or pytest's cache is off (``-p no:cacheprovider``)."""
    cache = getattr(config, "cache", None)
    if not s.enabled or s.trace or not s.trace_leakers or cache is None:
        return None
    leakers = Leakers(cache, summary, controller=not hasattr(config, "workerinput"))
    config.pluginmanager.register(leakers, "resources-leakers")
    summary.hint = NEXT_RUN_HINT
    summary.traced = leakers.collected
    return leakers
