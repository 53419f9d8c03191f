"""What a traced test keeps after it ended: an idempotent cache that repeats cannot see."""

from __future__ import annotations

import json

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from pytester_run import Run, assert_lines

from pytest_resources.detector.reporting.json_report import schema

#: A module-global memo of many distinct keys, filled once: about 40 MiB kept for good.
MEMO = """
MEMO = {}

def fill():
    for key in range(20_000):
        if key not in MEMO:
            MEMO[key] = bytes(2_000) + str(key).encode()
"""


def test_an_idempotent_cache_is_caught_though_its_repeats_add_nothing(run: Run) -> None:
    result = run(
        MEMO
        + """
def test_fills_the_memo():
    fill()

def test_after():
    pass
""",
        "--resource-repeat=2",
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_fills_the_memo*"])
    assert_lines(
        result,
        "memory: kept 40.",
        "after the test ended, above the limit of 16.0 MiB",
        "test_it.py:6: +39.",
    )
    assert not any("repeated runs" in line for line in result.outlines)


def test_imports_warmed_bounded_caches_fixtures_and_freed_memory_are_not_kept(
    run: Run,
) -> None:
    run.pytester.makepyfile(
        bigtable="TABLE = [bytes(1_000) + str(i).encode() for i in range(40_000)]\n"
    )
    result = run(
        """
import functools
import pytest

@functools.lru_cache(maxsize=500)
def page(key):
    return bytes(80_000) + str(key).encode()

for key in range(500):  # warmed before any test: 40 MB that later tests replace
    page(key)

@pytest.fixture(scope="module")
def index():
    return [bytes(1_000) + str(i).encode() for i in range(40_000)]

def test_first_import_of_a_big_module():
    import bigtable
    assert len(bigtable.TABLE) == 40_000

def test_warmed_bounded_cache_replaces_its_entries():
    for key in range(500, 1_000):
        page(key)

def test_module_fixture_keeps_its_own_index(index):
    assert len(index) == 40_000

def test_allocate_and_free():
    data = [bytes(1_000) for _ in range(40_000)]
    del data

SMALL = {}

def test_small_memo():
    SMALL.update((key, str(key)) for key in range(1_000))
""",
        "--resource-repeat=2",
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=5)


def test_the_limit_comes_from_the_marker_then_the_ini(run: Run) -> None:
    result = run(
        MEMO
        + """
import pytest

@pytest.mark.resources(retained="64MiB")
def test_may_keep_more():
    fill()

SMALL = []

@pytest.mark.resources(retained="1MiB")
def test_traced_by_its_marker_alone():
    if not SMALL:
        SMALL.extend(bytes(1_000) + str(i).encode() for i in range(3_000))

LIMITED = []

def test_over_the_ini_limit():
    if not LIMITED:
        LIMITED.extend(bytes(1_000) + str(i).encode() for i in range(6_000))
""",
        "--resource-strict",
        "-p",
        "no:randomly",
        ini="resource_memory_retained = 4MiB\nresource_repeat = 1\n",
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_traced_by_its_marker_alone*",
            "*ERROR at teardown of test_over_the_ini_limit*",
        ]
    )
    assert_lines(result, "above the limit of 1.0 MiB", "above the limit of 4.0 MiB")


def test_a_marker_alone_traces_the_test_without_repeating_it(run: Run) -> None:
    result = run(
        """
import pytest
KEPT = []
RUNS = []

@pytest.mark.resources(retained="1MiB")
def test_keeps():
    RUNS.append(1)
    KEPT.extend(bytes(1_000) + str(i).encode() for i in range(3_000))

def test_ran_once():
    assert RUNS == [1]
""",
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2, errors=1)
    assert_lines(result, "memory: kept 3.0 MiB", "above the limit of 1.0 MiB")


def test_bad_retained_ini_is_a_one_line_error(run: Run) -> None:
    result = run("def test_x(): pass\n", ini="resource_memory_retained = a lot\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: resource_memory_retained: expected a size*"])


def test_bad_retained_marker_errors_that_test(run: Run) -> None:
    result = run(
        "import pytest\n\n@pytest.mark.resources(retained=-1)\ndef test_x(): pass\n"
        "def test_y(): pass\n"
    )
    result.assert_outcomes(passed=1, errors=1)
    assert_lines(result, "resources(retained=...): expected a size like 64MB")


def test_json_report_carries_what_the_test_kept(run: Run) -> None:
    result = run(
        MEMO + "\ndef test_fills_the_memo():\n    fill()\n",
        "--resource-repeat=1",
        "--resource-report=report.json",
    )
    result.assert_outcomes(passed=1, warnings=1)
    document = json.loads((run.pytester.path / "report.json").read_text())
    jsonschema.validate(document, schema())
    (test,) = document["tests"]
    kept = test["memory"]["growth"]["kept"]
    assert kept["size"] > kept["limit"] == 16 * 1024**2
    assert kept["sites"][0]["line"] == 6
    assert test["leaks"][0]["signature"] == "memory:kept"
