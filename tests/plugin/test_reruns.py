from __future__ import annotations

from pytester_run import Run

FLAKY = """
import os

ATTEMPTS = []

def test_flaky():
    ATTEMPTS.append(1)
    if len(ATTEMPTS) == 1:
        os.environ["RERUN_LEAK"] = "1"
        assert False, "first attempt fails"
    os.environ.pop("RERUN_LEAK", None)
"""

CONFTEST = """
def pytest_runtest_logreport(report):
    if report.when == "teardown":
        leaks = [r["identity"] for r in getattr(report, "resource_leaks", [])]
        print(f"TEARDOWN {report.outcome} {leaks}")
"""


def test_a_rerun_carries_only_its_own_attempts_results(run: Run) -> None:
    # The item is the same object on every attempt: its stash must not hand the first
    # attempt's verdict to the clean rerun's report.
    run.pytester.makeconftest(CONFTEST)
    result = run(FLAKY, "--reruns=1", "-s")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun")) == (1, 1), result.stdout.str()
    # -s: the prints land inside the progress line ("test_it.py RTEARDOWN ...").
    teardowns = [line[line.index("TEARDOWN") :] for line in result.outlines if "TEARDOWN" in line]
    assert len(teardowns) == 2, result.stdout.str()
    assert "RERUN_LEAK" in teardowns[0]
    assert teardowns[1].endswith("[]"), result.stdout.str()
