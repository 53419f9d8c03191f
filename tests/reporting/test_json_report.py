from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from pytester_run import Run, assert_lines

from pytest_resources.detector.reporting.json_report import SCHEMA_VERSION, schema

SUITE = """
import os, subprocess, sys, threading
import pytest
STOP = threading.Event()

def test_thread_leak():
    threading.Thread(target=STOP.wait, name="report-leak", daemon=True).start()

def test_env_leak():
    os.environ["REPORT_LEAK"] = "1"

@pytest.mark.allow_leaks("env", reason="known")
def test_allowed():
    os.environ["REPORT_ALLOWED"] = "1"

def test_fails():
    assert False

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.parametrize("n", range(4))
def test_clean(n):
    pass
"""


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    return document


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {test["nodeid"].split("::")[1]: test for test in document["tests"]}


def test_report_validates_and_holds_each_tests_outcome_counts_and_leaks(run: Run) -> None:
    (run.pytester.path / "out").mkdir()
    result = run(SUITE, "--resource-report=out/report.json")
    result.assert_outcomes(passed=7, failed=1, skipped=1, warnings=2)
    document = load(run.pytester.path / "out" / "report.json")
    assert document["version"] == SCHEMA_VERSION
    session = document["session"]
    assert session["checks"] == ["threads", "tasks", "fds", "processes", "env"]
    assert (session["strict"], session["trace"], session["workers"]) == (False, False, 0)
    assert session["exit_status"] == 1
    summary = document["summary"]
    assert summary["tests"] == 9
    assert summary["outcomes"] == {"passed": 7, "failed": 1, "skipped": 1}
    assert (summary["leaking_tests"], summary["leaks"], summary["allowed"]) == (2, 2, 1)
    assert summary["leaks_by_kind"] == {"threads": 1, "env": 1}

    tests = by_id(document)
    thread = tests["test_thread_leak"]
    assert thread["outcome"] == "passed"
    assert thread["counts"]["after"]["threads"] == thread["counts"]["before"]["threads"] + 1
    assert thread["memory"]["rss_after"] > 0
    assert thread["memory"]["rss_peak"] >= thread["memory"]["rss_after"]
    [leak] = thread["leaks"]
    assert leak["kind"] == "threads"
    assert leak["identity"] == "thread 'report-leak'"
    assert leak["status"] == "leak"
    assert "target: threading.Event.wait" in leak["details"]
    assert leak["signature"] == "threads:report-leak:threading.Event.wait"

    [allowed] = tests["test_allowed"]["leaks"]
    assert allowed["status"] == "allowed"
    assert tests["test_fails"]["outcome"] == "failed"
    assert tests["test_skipped"]["outcome"] == "skipped"
    clean = tests["test_clean[0]"]
    assert clean["leaks"] == []
    assert clean["counts"]["before"] == clean["counts"]["after"]
    assert clean["duration"] >= 0
    assert_lines(result, "resources: JSON report written to")


def test_strict_leak_is_an_error_outcome(run: Run) -> None:
    result = run(SUITE, "--resource-report=report.json", "--resource-strict")
    result.assert_outcomes(passed=7, failed=1, skipped=1, errors=2)
    tests = by_id(load(run.pytester.path / "report.json"))
    assert tests["test_thread_leak"]["outcome"] == "error"
    assert tests["test_env_leak"]["outcome"] == "error"
    assert tests["test_allowed"]["outcome"] == "passed"


def test_xdist_writes_one_merged_report_from_the_controller(run: Run) -> None:
    result = run(SUITE, "-n", "2", "--resource-report=report.json")
    result.assert_outcomes(passed=7, failed=1, skipped=1, warnings=2)
    written = [p.name for p in run.pytester.path.iterdir() if "report" in p.name]
    assert written == ["report.json"]
    document = load(run.pytester.path / "report.json")
    assert document["session"]["workers"] == 2
    tests = by_id(document)
    assert len(tests) == 9
    assert {t["worker"] for t in tests.values()} == {"gw0", "gw1"}
    assert [leak["identity"] for leak in tests["test_thread_leak"]["leaks"]] == [
        "thread 'report-leak'"
    ]
    assert tests["test_thread_leak"]["counts"]["after"]["threads"] >= 1
    assert document["summary"]["leaks"] == 2


def test_ini_path_is_relative_to_the_ini_file(run: Run) -> None:
    (run.pytester.path / "sub").mkdir()
    result = run("def test_ok(): pass", ini="resource_report = sub/r.json\n")
    result.assert_outcomes(passed=1)
    assert load(run.pytester.path / "sub" / "r.json")["summary"]["tests"] == 1


def test_report_without_checks_still_lists_outcomes(run: Run) -> None:
    result = run("def test_ok(): pass", "--no-resource-checks", "--resource-report=r.json")
    result.assert_outcomes(passed=1)
    document = load(run.pytester.path / "r.json")
    assert document["session"]["checks"] == []
    assert by_id(document)["test_ok"]["counts"] is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", "--resource-report: expected a file path, got ''"),
        (".", "--resource-report: '*' is a directory, expected a file"),
        ("missing/r.json", "--resource-report: directory '*missing' does not exist"),
    ],
)
def test_bad_report_path_is_one_line_naming_the_option(run: Run, value: str, error: str) -> None:
    result = run("def test_ok(): pass", f"--resource-report={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {error}"])


def test_schema_is_shipped_and_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["version"] == {"const": SCHEMA_VERSION}


KINDS_SUITE = """
import socket, tempfile
from unittest import mock

def test_interpreter_setting():
    socket.setdefaulttimeout(7.5)

def test_mock_patch():
    mock.patch("os.cpu_count", return_value=1).start()

def test_file():
    tempfile.mkdtemp(prefix="report-kinds-")
"""


def test_reports_carry_interpreter_settings_mock_patches_and_files(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = run.pytester.path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    result = run(
        KINDS_SUITE,
        "--resource-checks=env,files",
        "--resource-report=report.json",
        "--resource-html=report.html",
        "--resource-trace",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=3, warnings=3)
    document = load(run.pytester.path / "report.json")
    assert document["session"]["checks"] == ["env", "files"]
    assert document["summary"]["leaks_by_kind"] == {"env": 2, "files": 1}
    tests = by_id(document)
    (setting,) = tests["test_interpreter_setting"]["leaks"]
    assert setting["kind"] == "env"
    assert setting["identity"] == "socket.getdefaulttimeout(): None → 7.5"
    assert setting["signature"] == "env:socket.getdefaulttimeout()"
    (patch,) = tests["test_mock_patch"]["leaks"]
    assert patch["identity"] == "unittest.mock patch of os.cpu_count still active"
    assert patch["signature"] == "env:mock.patch:os.cpu_count"
    (left,) = tests["test_file"]["leaks"]
    assert left["kind"] == "files"
    assert left["identity"].startswith(f"directory {Path(temp).resolve()}/report-kinds-")
    assert left["signature"] == "files:tmp:directory"
    assert left["created"][-1]["function"] == "test_file"
    page = (run.pytester.path / "report.html").read_text()
    for leak in (setting, patch, left):
        assert html.escape(leak["identity"]) in page
