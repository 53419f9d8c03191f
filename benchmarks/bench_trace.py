"""Cost of ``--resource-trace`` against the plugin's default checks, on the generated suite.

Uses the 2000-test suite of ``overhead.py`` (3/4 plain, 1/4 ``pytest.mark.asyncio``) and
times, alternating runs: bare pytest, the default checks, and the default checks with
``--resource-trace``. Prints each median and the ratio of tracing to the default checks.

    python benchmarks/bench_trace.py [--tests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from overhead import generate, timed

VARIANTS = {
    "bare pytest (-p no:resources)": ["-p", "no:resources"],
    "default checks (baseline)": [],
    "default checks + --resource-trace": ["--resource-trace"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, options.tests)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for args in VARIANTS.values():  # warm the file system and bytecode caches
            timed(root, args)
        for _ in range(options.rounds):
            for name, args in VARIANTS.items():
                times[name].append(timed(root, args))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["default checks (baseline)"]
    for name, value in medians.items():
        print(f"{name:36} median {value:6.3f} s CPU ({value / base:.3f}x the default checks)")
    traced = medians["default checks + --resource-trace"]
    per_test = (traced - base) / options.tests * 1e6
    print(
        f"--resource-trace ratio {traced / base:.3f}x the default checks ({per_test:+.1f} us/test)"
    )


if __name__ == "__main__":
    main()
