"""Overhead of the plugin's default checks against bare pytest, on a generated suite.

Generates 2000 tests (3/4 plain, 1/4 ``pytest.mark.asyncio``) in a temporary directory, then
measures the CPU time of ``pytest -p no:resources`` (the baseline) and of ``pytest`` with the
plugin's default checks, alternating runs, and prints the median of each and their ratio.

    python benchmarks/overhead.py [--tests 2000] [--rounds 7] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 1.03
# Bytecode caching on, as on a developer's machine or CI: otherwise every run pays for
# compiling (and assertion-rewriting) the plugin's modules again, which is start-up cost.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def generate(root: Path, tests: int) -> None:
    per_file = 100
    for index in range(0, tests, per_file):
        lines = ["import asyncio", "import pytest", ""]
        for n in range(index, min(index + per_file, tests)):
            if n % 4 == 3:
                lines += [
                    "@pytest.mark.asyncio",
                    f"async def test_{n}():",
                    "    await asyncio.sleep(0)",
                ]
            else:
                lines += [f"def test_{n}():", f"    assert {n} + 1 == {n + 1}"]
            lines.append("")
        (root / f"test_gen_{index // per_file:03}.py").write_text("\n".join(lines))
    (root / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )


def timed(root: Path, args: list[str]) -> float:
    """CPU seconds (user + system) of one pytest run: steadier than wall time on a shared
    machine, and the plugin's cost is CPU (it never sleeps on a clean suite)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"pytest failed ({' '.join(args)}):\n{result.stdout[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("extra", nargs="*", help="extra pytest args for the plugin run")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, options.tests)
        variants = {
            "bare pytest (-p no:resources)": ["-p", "no:resources"],
            "plugin, default checks": list(options.extra),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for args in variants.values():  # warm the file system and bytecode caches
            timed(root, args)
        for _ in range(options.rounds):
            for name, args in variants.items():
                times[name].append(timed(root, args))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["bare pytest (-p no:resources)"]
    for name, value in medians.items():
        print(f"{name:34} median {value:6.3f} s CPU ({value / base:.3f}x)")
    ratio = medians["plugin, default checks"] / base
    per_test = (medians["plugin, default checks"] - base) / options.tests * 1e6
    verdict = "within" if ratio <= TARGET else "ABOVE"
    print(f"ratio {ratio:.3f}x ({per_test:+.1f} us/test), {verdict} the {TARGET}x target")


if __name__ == "__main__":
    main()
