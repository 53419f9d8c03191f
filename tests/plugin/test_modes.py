from __future__ import annotations

import pytest
from pytester_run import Run, assert_lines

LEAKY = """
import os

def test_leaks():
    os.environ["LEAKED"] = "1"
"""


def test_warn_mode_keeps_outcomes_and_lists_leaks(run: Run) -> None:
    result = run(LEAKY)
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    assert_lines(
        result,
        "ResourceLeakWarning: leaked os.environ['LEAKED'] added: '1'"
        " (details under 'resource leaks' below)",
    )
    result.stdout.fnmatch_lines(
        [
            "*= resource leaks =*",
            "test_it.py::test_leaks:",
            "1 test(s) leaked resources (warn mode: outcomes unchanged)",
        ]
    )


@pytest.mark.parametrize(
    ("args", "ini"),
    [
        pytest.param((), "filterwarnings = error\n", id="ini-error"),
        pytest.param(("-W", "error"), "", id="cli-error"),
        pytest.param(("-W", "error::pytest_resources.ResourceLeakWarning"), "", id="category"),
    ],
)
def test_warn_mode_never_changes_an_outcome_under_error_filters(
    run: Run, args: tuple[str, ...], ini: str
) -> None:
    result = run(LEAKY, *args, ini=ini)
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*ResourceLeakWarning: leaked os.environ*"])
    assert "pytest_resources" not in result.stdout.str().split("warnings summary")[0]


def test_leak_warnings_stay_filterable(run: Run) -> None:
    result = run(LEAKY, "-W", "ignore::pytest_resources.ResourceLeakWarning")
    result.assert_outcomes(passed=1)
    assert "ResourceLeakWarning" not in result.stdout.str()


def test_strict_mode_errors_in_teardown_and_exits_non_zero(run: Run) -> None:
    result = run(LEAKY, "--resource-strict")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks*"])


def test_strict_mode_from_ini(run: Run) -> None:
    result = run(LEAKY, ini="resource_strict = true\n")
    result.assert_outcomes(passed=1, errors=1)


MIXED = """
import os
import pytest

@pytest.mark.resources(strict=True)
def test_strict_leak():
    os.environ["LEAKED_STRICT"] = "1"

def test_warned_leak():
    os.environ["LEAKED_WARNED"] = "1"
"""


def test_summary_line_counts_what_each_test_s_own_mode_did(run: Run) -> None:
    result = run(MIXED)
    result.assert_outcomes(passed=2, errors=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["2 test(s) leaked resources (1 errored in teardown (strict), 1 kept their outcome*"]
    )
    only_strict = run(MIXED, "-k", "strict")
    only_strict.assert_outcomes(passed=1, errors=1, deselected=1)
    only_strict.stdout.fnmatch_lines(["1 test(s) leaked resources (strict: these tests error*"])
    assert "outcomes unchanged" not in only_strict.stdout.str()


def test_no_resource_strict_beats_the_ini(run: Run) -> None:
    result = run(LEAKY, "--no-resource-strict", ini="resource_strict = true\n")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["resources: checking *; mode: warn; *"])
    # The last of the pair wins, as with any flag and its negation.
    last = run(LEAKY, "--no-resource-strict", "--resource-strict")
    last.assert_outcomes(passed=1, errors=1)


def test_failed_test_keeps_its_own_failure_with_leaks_as_context(run: Run) -> None:
    result = run(
        """
import os

def test_fails_and_leaks():
    os.environ["LEAKED"] = "1"
    assert False, "the real problem"
""",
        "--resource-strict",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the real problem*", "*Captured resource leaks teardown*"])


def test_failed_setup_and_strict_xpass_keep_their_failure_with_leaks_as_context(
    run: Run,
) -> None:
    result = run(
        """
import os
import pytest

@pytest.fixture
def broken():
    os.environ["LEAKED_IN_SETUP"] = "1"
    raise RuntimeError("setup broke")

def test_setup_fails(broken):
    pass

@pytest.mark.xfail(strict=True, reason="expected to fail")
def test_passes_unexpectedly():
    os.environ["LEAKED_BY_XPASS"] = "1"

def test_leaks_after_them():
    os.environ["LEAKED_LATER"] = "1"
""",
        "--resource-strict",
    )
    # The third test's leak is still an error of its own: earlier failures do not mask it.
    result.assert_outcomes(passed=1, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_setup_fails*",
            "*setup broke*",
            "*Captured resource leaks teardown*",
            "*LEAKED_IN_SETUP*",
        ]
    )
    result.stdout.fnmatch_lines(["*XPASS(strict)*", "*Captured resource leaks teardown*"])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_after_them*"])
    assert "ERROR at teardown of test_setup_fails" not in result.stdout.str()
    assert "ERROR at teardown of test_passes_unexpectedly" not in result.stdout.str()


def test_teardown_reports_carry_leak_records_for_user_hooks(run: Run) -> None:
    run.pytester.makeconftest(
        """
def pytest_runtest_logreport(report):
    if report.when == "teardown":
        leaks = [r["identity"] for r in getattr(report, "resource_leaks", [])]
        print("RECORDS", report.nodeid.split("::")[-1], leaks, report.user_properties)
"""
    )
    result = run(
        """
import os

def test_clean_first():
    pass

def test_leaks():
    os.environ["LEAKED"] = "1"

def test_clean_after():
    pass
""",
        "-s",
    )
    result.assert_outcomes(passed=3, warnings=1)
    assert_lines(
        result,
        "RECORDS test_clean_first [] []",
        """RECORDS test_leaks ["os.environ['LEAKED'] added: '1'"] [('resource_leak', "env: os""",
        "RECORDS test_clean_after [] []",
    )


def test_resources_marker_narrows_checks_and_sets_strictness(run: Run) -> None:
    result = run(
        """
import os, threading
import pytest
STOP = threading.Event()

@pytest.mark.resources(checks="threads")
def test_env_not_checked():
    os.environ["LEAKED"] = "1"

@pytest.mark.resources(skip=["env"])
def test_env_skipped():
    os.environ["LEAKED_TOO"] = "1"

@pytest.mark.resources(strict=False)
def test_only_warns():
    threading.Thread(target=STOP.wait, daemon=True).start()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=3, warnings=1)


def test_resources_marker_grace(run: Run) -> None:
    result = run(
        """
import threading
import pytest
STOP = threading.Event()

@pytest.mark.resources(grace=0)
def test_no_grace():
    threading.Thread(target=STOP.wait, daemon=True).start()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=1, errors=1)


def test_allow_leaks_tolerates_the_named_kind_only(run: Run) -> None:
    result = run(
        """
import os, threading
import pytest
STOP = threading.Event()

@pytest.mark.allow_leaks("env", reason="sets a process-wide default on purpose")
def test_known_env_leak():
    os.environ["KNOWN"] = "1"

@pytest.mark.allow_leaks("env")
def test_other_kind_still_fails():
    os.environ["KNOWN_TOO"] = "1"
    threading.Thread(target=STOP.wait, daemon=True).start()
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_other_kind_still_fails*"])
    assert_lines(result, "env: os.environ['KNOWN'] added: '1' (allowed)")


@pytest.mark.parametrize(("mode", "outcome"), [("--resource-strict", "errors"), ("", "warnings")])
def test_stale_allow_leaks_marker_is_flagged(run: Run, mode: str, outcome: str) -> None:
    result = run(
        """
import pytest

@pytest.mark.allow_leaks("threads", reason="fixed upstream?")
def test_no_longer_leaks():
    pass
""",
        *([mode] if mode else []),
    )
    result.assert_outcomes(passed=1, **{outcome: 1})
    assert_lines(
        result,
        *["ResourceLeakWarning: allow_leaks (fixed upstream?) is stale: no longer leaks threads",
          "allow_leaks('threads') is stale: the test no longer leaks it; remove the marker"]
        if outcome == "warnings" else
        ["marked allow_leaks (fixed upstream?) but no longer leaks threads: remove the marker"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "ini", "error"),
    [
        (["--resource-checks=threads,sockets"], "", "--resource-checks: unknown kind 'sockets'"),
        (["--resource-grace=soon"], "", "--resource-grace: expected seconds as a number"),
        (["--resource-grace=-1"], "", "--resource-grace: expected seconds >= 0, got '-1'"),
        ([], "resource_checks = memroy\n", "resource_checks: unknown kind 'memroy'"),
        ([], "resource_grace = nan\n", "resource_grace: expected seconds >= 0, got 'nan'"),
        ([], "resource_strict = maybe\n", "resource_strict: expected true or false"),
        (["--resource-checks="], "", "--resource-checks: no kind given"),
        (["--resource-checks=,"], "", "--resource-checks: no kind given"),
        ([], "resource_checks = ,\n", "resource_checks: no kind given"),
        ([], "resource_slow = sometimes\n", "resource_slow: expected run or skip"),
    ],
)
def test_bad_options_fail_fast_with_one_line(
    run: Run, args: list[str], ini: str, error: str
) -> None:
    result = run("def test_x(): pass\n", *args, ini=ini)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if line.strip()]  # one line, nothing else
    assert line.startswith(f"ERROR: {error}"), line


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("resources(chekcs='threads')", "resources: unknown argument 'chekcs'"),
        ("resources(grace='x')", "resources(grace=...): expected seconds as a number"),
        ("resources('threads')", "resources: keyword arguments only"),
        ("allow_leaks('thread')", "allow_leaks: unknown kind 'thread'"),
        ("resources(checks='')", "resources(checks=...): no kind given"),
    ],
)
def test_bad_markers_error_that_test_only(run: Run, marker: str, error: str) -> None:
    result = run(
        f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n\ndef test_y(): pass\n"
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(result, error)


def test_no_resource_checks_and_unloading(run: Run) -> None:
    off = run(LEAKY, "--resource-strict", "--no-resource-checks")
    off.assert_outcomes(passed=1)
    off.stdout.fnmatch_lines(["resources: checks off (--no-resource-checks)"])
    unloaded = run(LEAKY, "--resource-strict", "-p", "no:resources")
    assert unloaded.ret == pytest.ExitCode.USAGE_ERROR  # the option is gone with the plugin
    unloaded = run(LEAKY, "-p", "no:resources")
    unloaded.assert_outcomes(passed=1)
    assert "resources:" not in unloaded.stdout.str()


def test_header_states_checks_and_mode(run: Run) -> None:
    result = run("def test_x(): pass\n", "--resource-checks=fds,threads", "--resource-grace=0.2")
    result.stdout.fnmatch_lines(["resources: checking threads, fds; mode: warn; grace: 0.2s"])


def test_help_lists_options(run: Run) -> None:
    result = run("", "--help")
    result.stdout.fnmatch_lines(
        [
            "resource leak checks (pytest-resource-guard):",
            "*--resource-strict*",
            "*--resource-checks=LIST*",
            "*--resource-grace=SECONDS*",
            "*--no-resource-checks*",
            "*--run-slow*",
        ]
    )
