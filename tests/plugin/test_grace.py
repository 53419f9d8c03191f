"""Which leaks wait out the grace: only kinds that can still end by themselves.

Each leaking test's teardown duration (pytest's own ``--durations`` figure, which includes the
verdict) is read back. A kind that cannot end (env, a descriptor no live object owns) gets a
60 s grace and must not pay it: a teardown that waited would take a minute, so the bound is a
lower bound on failure, not a race. The kinds that can end get a short grace and must wait it
out in full (a sleep lasts at least as long as asked).
"""

from __future__ import annotations

import re

import pytest
from pytester_run import Run

LEAKS = """
import os, threading
import pytest
KEPT = []
STOP = threading.Event()

@pytest.mark.resources(grace=60)
def test_env():
    os.environ["GRACE_TEST_LEAK"] = "1"

@pytest.mark.resources(grace=60)
def test_raw_pipe():
    KEPT.append(os.pipe())

@pytest.mark.resources(grace=60)
def test_env_and_raw_pipe():
    os.environ["GRACE_TEST_OTHER"] = "1"
    KEPT.append(os.pipe())

@pytest.mark.resources(grace=0.3)
def test_thread():
    threading.Thread(target=STOP.wait, daemon=True, name="never-ends").start()

@pytest.mark.resources(grace=0.3)
def test_open_file(tmp_path):
    KEPT.append(open(tmp_path / "kept.txt", "w"))
"""


def teardown_seconds(result: pytest.RunResult) -> dict[str, float]:
    found = {}
    for line in result.outlines:
        match = re.match(r"\s*([\d.]+)s teardown test_it\.py::(\w+)", line)
        if match:
            found[match[2]] = float(match[1])
    return found


def test_leaks_that_cannot_end_by_waiting_skip_the_grace(run: Run) -> None:
    result = run(LEAKS, "--durations=0", "--durations-min=0", "-vv")
    result.assert_outcomes(passed=5, warnings=5)
    seconds = teardown_seconds(result)
    assert set(seconds) == {
        "test_env",
        "test_raw_pipe",
        "test_env_and_raw_pipe",
        "test_thread",
        "test_open_file",
    }, result.stdout
    for name in ("test_env", "test_raw_pipe", "test_env_and_raw_pipe"):
        assert seconds[name] < 30, (name, seconds)
    # A thread may still end, and an open file whose object is reachable may still be
    # closed by whoever holds it: both wait out their grace.
    assert seconds["test_thread"] >= 0.3, seconds
    assert seconds["test_open_file"] >= 0.3, seconds
