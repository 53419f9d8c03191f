"""Overhead of the plugin against bare pytest, on a generated suite.

Generates a suite (3/4 plain tests, 1/4 ``pytest.mark.asyncio``) in a temporary directory and
measures the CPU time (user + system) of whole pytest runs, alternating the variants round
after round, then prints each variant's median and its ratio to the baseline.

    python benchmarks/overhead.py                 # default checks vs bare pytest (2000 tests)
    python benchmarks/overhead.py --mode memory   # default checks + the memory kind
    python benchmarks/overhead.py --mode repeat   # --resource-repeat=3 vs pytest-memray (200 tests)
    python benchmarks/overhead.py --mode threads  # threads only vs pytest-threadleak
    python benchmarks/overhead.py --mode held     # per-test cost while the session holds things
    python benchmarks/overhead.py --instructions  # user-space instructions under valgrind

CPU time on a shared machine moves by several percent from one run to the next; instruction
counts (``--instructions``, one run per variant under callgrind, about two minutes each on
2000 tests) do not, so they show a change of a fraction of a percent. They leave out the
kernel's share (system calls), which CPU time includes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_resources.detector.probes.base import DEFAULT_KINDS

BARE = "bare pytest (-p no:resources)"
# The default kinds and memory, named: "all" also takes the opt-in kinds (files).
WITH_MEMORY = f"--resource-checks={','.join((*DEFAULT_KINDS, 'memory'))}"
# Bytecode caching on, as on a developer's machine or CI: otherwise every run pays for
# compiling the plugin's modules again, which is start-up cost, not per-test cost.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def suite_tmp(root: Path) -> Path:
    """The suite's own temporary directory, beside it: nothing another pytest session left in
    the shared one (a broker registry entry sends start-up through the provider chain and
    psutil) changes what a run does."""
    return root.parent / "tmp"


def run_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a run of the suite in ``root``."""
    return {**ENV, "TMPDIR": str(suite_tmp(root)), **extra}


HELD = "--held"  # the generated conftest's option: the session fixtures hold their resources
BARE_HELD = "bare pytest, session holding resources"
HELD_DEFAULT = "default checks, session holding resources"
MEMRAY = "pytest-memray (--memray)"
THREADLEAK = "pytest-threadleak (--threadleak)"

# mode -> (tests, variants, the variant judged, its target ratio to bare pytest or 0 for none,
# the variant whose extra cost it is compared with or "" for none)
MODES: dict[str, tuple[int, dict[str, list[str]], str, float, str]] = {
    "default": (
        2000,
        {BARE: ["-p", "no:resources"], "default checks": []},
        "default checks",
        1.03,
        "",
    ),
    "memory": (
        2000,
        {
            BARE: ["-p", "no:resources"],
            "default checks": [],
            "default checks + memory": [WITH_MEMORY],
        },
        "default checks + memory",
        1.05,
        "",
    ),
    "repeat": (
        200,
        {
            BARE: ["-p", "no:resources"],
            "--resource-repeat=3": ["--resource-repeat=3"],
            MEMRAY: ["-p", "no:resources", "--memray"],
        },
        "--resource-repeat=3",
        0.0,
        MEMRAY,
    ),
    # The yardstick: pytest-threadleak checks threads only, around the call phase.
    "threads": (
        2000,
        {
            BARE: ["-p", "no:resources"],
            THREADLEAK: ["-p", "no:resources", "--threadleak"],
            "threads only": ["--resource-checks=threads"],
            "default checks": [],
        },
        "threads only",
        0.0,
        THREADLEAK,
    ),
    # A clean test's cost must not grow with what the session holds: the per-test extra with
    # the held resources against the same suite holding nothing (see HELD_CONFTEST).
    "held": (
        400,
        {
            BARE: ["-p", "no:resources"],
            "default checks": [],
            BARE_HELD: ["-p", "no:resources", HELD],
            HELD_DEFAULT: [HELD],
        },
        HELD_DEFAULT,
        1.10,
        "",
    ),
}

# What a real session holds (connection pools, servers, worker threads), scaled up: with
# --held a session-scoped autouse fixture keeps 250 pipes (500 fds), 50 idle threads and
# 20 sleeping children, and the session-scoped loop every async test shares keeps 1000
# pending tasks. Without --held the same suite (same loop scope) holds nothing.
HELD_CONFTEST = """\
import asyncio
import os
import subprocess
import threading

import pytest
import pytest_asyncio


def pytest_addoption(parser):
    parser.addoption("--held", action="store_true")


@pytest.fixture(scope="session", autouse=True)
def held(request):
    if not request.config.getoption("held"):
        yield
        return
    pipes = [os.pipe() for _ in range(250)]
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait, name=f"idle-{n}") for n in range(50)]
    for thread in threads:
        thread.start()
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(20)]
    yield
    for child in children:
        child.kill()
        child.wait()
    stop.set()
    for thread in threads:
        thread.join()
    for pipe in pipes:
        os.close(pipe[0])
        os.close(pipe[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def held_tasks(request):
    if not request.config.getoption("held"):
        yield
        return
    stop = asyncio.Event()
    tasks = [asyncio.create_task(stop.wait()) for _ in range(1000)]
    yield
    stop.set()
    await asyncio.gather(*tasks)
"""


def generate(root: Path, tests: int, held: bool = False) -> None:
    per_file = 100
    mark = '@pytest.mark.asyncio(loop_scope="session")' if held else "@pytest.mark.asyncio"
    for index in range(0, tests, per_file):
        lines = ["import asyncio", "import pytest", ""]
        for n in range(index, min(index + per_file, tests)):
            if n % 4 == 3:
                lines += [mark, f"async def test_{n}():"]
                lines += ["    await asyncio.sleep(0)"]
            else:
                lines += [f"def test_{n}():", f"    assert {n} + 1 == {n + 1}"]
            lines.append("")
        (root / f"test_gen_{index // per_file:03}.py").write_text("\n".join(lines))
    scope = "session" if held else "function"
    (root / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = {scope}\n"
    )
    if held:
        (root / "conftest.py").write_text(HELD_CONFTEST)


def command(args: list[str]) -> list[str]:
    # pytest-threadleak, once installed, wraps every test even when it is off: every variant
    # but its own runs without it. pytest-randomly (in the test extra) is off in all: it
    # reseeds every test (~500 k instructions each, more than the plugin costs), which would
    # flatter every ratio, and it shuffles the order, which moves the counts run to run.
    off = [] if "--threadleak" in args else ["-p", "no:threadleak"]
    off += ["-p", "no:randomly"]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *off, *args]


def timed(root: Path, args: list[str]) -> float:
    """CPU seconds of one pytest run: steadier than wall time on a shared machine, and the
    plugin's cost is CPU (it never sleeps on a clean suite)."""
    cmd = command(args)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = run_env(root)
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"pytest failed ({' '.join(args)}):\n{result.stdout[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def counted(root: Path, args: list[str], seed: int) -> float:
    """User-space instructions of one pytest run, counted by callgrind, with hash seed
    ``seed``: the same count run after run for one seed, but another for the next (CPython's
    type attribute cache collides by where objects are allocated; see docs/benchmarks.md)."""
    cmd = command(args)
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    env = run_env(root, PYTHONHASHSEED=str(seed))
    result = subprocess.run(
        valgrind + cmd, cwd=root, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"pytest failed under valgrind ({' '.join(args)}):\n{result.stdout[-2000:]}")
    for line in result.stderr.splitlines():
        if "Collected :" in line:
            return float(line.split(":")[-1])
    sys.exit(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")


def measure(
    variants: dict[str, list[str]], tests: int, rounds: int, instructions: bool = False
) -> dict[str, float]:
    """Median CPU seconds per variant over ``rounds`` alternating runs of a generated suite,
    or (``instructions``) each variant's mean instruction count over ``rounds`` hash seeds
    (0, 1, ...): one run per seed, as a count repeats exactly for one seed."""
    # Always the same path: pytest's cost depends on it (its length, the hashes of paths and
    # node ids), so a random temporary name would move the counts from one run to the next,
    # and the gate's two sizes apart. One benchmark at a time, then.
    home = Path(tempfile.gettempdir()) / f"resources-overhead-{os.getuid()}"
    shutil.rmtree(home, ignore_errors=True)
    root = home / "suite"
    root.mkdir(parents=True)
    suite_tmp(root).mkdir()
    try:
        generate(root, tests, held=any(HELD in args for args in variants.values()))
        values: dict[str, list[float]] = {name: [] for name in variants}
        for args in variants.values():  # warm the file system and bytecode caches
            timed(root, args)
        for round_ in range(rounds):
            for name, args in variants.items():
                found = counted(root, args, round_) if instructions else timed(root, args)
                values[name].append(found)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    average = statistics.mean if instructions else statistics.median
    return {name: average(found) for name, found in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="default")
    parser.add_argument("--tests", type=int, help="suite size (default: per mode)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="timed rounds (default 7), or with --instructions hash seeds to average (default 1)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count user-space instructions under valgrind instead of timing (one run each)",
    )
    options = parser.parse_args()
    if options.rounds is None:
        options.rounds = 1 if options.instructions else 7
    if options.rounds < 1:
        parser.error(f"--rounds: expected a positive number, got {options.rounds}")
    if options.tests is not None and options.tests < 1:
        parser.error(f"--tests: expected a positive number, got {options.tests}")
    if options.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions: valgrind is not on PATH (apt-get install valgrind)")
    tests, variants, judged, target, reference = MODES[options.mode]
    tests = options.tests or tests
    medians = measure(variants, tests, options.rounds, options.instructions)
    base = medians[BARE]
    if options.instructions:
        seeds = f"mean of hash seeds 0-{options.rounds - 1}" if options.rounds > 1 else "seed 0"
        print(f"{tests} generated tests, user-space instructions (callgrind, {seeds})")
        unit, scale, per = "G instr", 1e-9, "k instr/test"
    else:
        print(f"{tests} generated tests, median CPU time of {options.rounds} alternating rounds")
        unit, scale, per = "s", 1.0, "us/test"
    for name, value in medians.items():
        print(f"{name:44} {value * scale:7.3f} {unit}  {value / base:.3f}x bare")
    ratio = medians[judged] / base
    extra = medians[judged] - base
    per_test = extra / tests * (1e-3 if options.instructions else 1e6)
    if options.mode == "held":
        empty = (medians["default checks"] - base) / tests * (1e-3 if options.instructions else 1e6)
        held = (medians[HELD_DEFAULT] - medians[BARE_HELD]) / tests
        held *= 1e-3 if options.instructions else 1e6
        verdict = "within" if held <= empty * target else "ABOVE"
        print(
            f"extra per test: {empty:+.1f} {per} holding nothing, {held:+.1f} {per} holding "
            f"resources: {held / empty:.2f}x, {verdict} the {target}x target"
        )
    elif target:
        verdict = "within" if ratio <= target else "ABOVE"
        print(f"{judged}: {ratio:.3f}x ({per_test:+.1f} {per}), {verdict} the {target}x target")
    if reference:
        theirs = medians[reference] - base
        print(
            f"{judged} costs {extra * scale:.3f} {unit} over bare pytest, {reference} "
            f"{theirs * scale:.3f} {unit}: {extra / theirs:.2f}x its cost"
        )


if __name__ == "__main__":
    main()
