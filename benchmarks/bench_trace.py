"""Cost of ``--resource-trace`` against the plugin's default checks, on the generated suite.

Uses the 2000-test suite of ``overhead.py`` (3/4 plain, 1/4 ``pytest.mark.asyncio``) and
times, alternating runs: bare pytest, the default checks, and the default checks with
``--resource-trace``. Prints each median and the ratio of tracing to the default checks.

    python benchmarks/bench_trace.py [--tests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse

from overhead import BARE, measure

VARIANTS = {
    BARE: ["-p", "no:resources"],
    "default checks (baseline)": [],
    "default checks + --resource-trace": ["--resource-trace"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    medians = measure(VARIANTS, options.tests, options.rounds)
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
