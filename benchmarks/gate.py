"""CI overhead gate: fails when a clean test's cost creeps past the limits.

    python benchmarks/gate.py    # exit status 1 above 1.06x (default) or 1.08x (+ memory)

The targets are for the 2000-test suite of ``overhead.py --instructions`` (1.05x and 1.07x);
running it under valgrind takes about two minutes per variant. The gate counts user-space
instructions (callgrind: the same count on a loaded machine as on an idle one) of the same
generated suite at two sizes instead, 100 and 400 tests, for bare pytest and each judged
variant. Cost is linear in the number of tests, so the difference between the two runs is
what 300 tests cost, with start-up cancelled out, and what the 100-test run has left over is
start-up. Both together give each variant's count for 2000 tests, start-up spread over them as
in the full benchmark, from a fifth of the tests run. Each count is the mean over three hash
seeds, which move it by CPython's chance more than small changes of ours do. The limits leave
a point of headroom over the targets for the projection's rounding, not for growth.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import NamedTuple

from overhead import BARE, WITH_MEMORY, measure

SIZES = (100, 400)
#: Hash seeds averaged: one seed's count repeats exactly, but moves by up to 0.25 % of the
#: ratio from one seed (or tree, or install path) to another (docs/benchmarks.md).
SEEDS = 3
PROJECTED = 2000
VARIANTS = {
    BARE: ["-p", "no:resources"],
    "default checks": [],
    "default checks + memory": [WITH_MEMORY],
}
LIMITS = {"default checks": 1.06, "default checks + memory": 1.08}


class Cost(NamedTuple):
    """A variant's instruction count, split into start-up and a cost per test."""

    startup: float
    per_test: float

    @classmethod
    def fit(cls, small: float, large: float) -> Cost:
        per_test = (large - small) / (SIZES[1] - SIZES[0])
        return cls(small - per_test * SIZES[0], per_test)

    def at(self, tests: int) -> float:
        return self.startup + self.per_test * tests


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on PATH (apt-get install valgrind)")
    small, large = (measure(VARIANTS, tests, SEEDS, instructions=True) for tests in SIZES)
    costs = {name: Cost.fit(small[name], large[name]) for name in VARIANTS}
    bare = costs[BARE]
    print(
        f"user-space instructions (callgrind, mean of {SEEDS} hash seeds) at {SIZES[0]} and "
        f"{SIZES[1]} generated tests, projected to {PROJECTED}"
    )
    failed = False
    for name, cost in costs.items():
        line = f"{name:32} start-up {cost.startup / 1e6:7.1f} M, {cost.per_test / 1e3:7.1f} k/test"
        if name in LIMITS:
            ratio = cost.at(PROJECTED) / bare.at(PROJECTED)
            extra = (cost.per_test - bare.per_test) / 1e3
            verdict = "ok" if ratio <= LIMITS[name] else "ABOVE THE LIMIT"
            failed |= ratio > LIMITS[name]
            line += f"  {ratio:.4f}x bare (+{extra:.1f} k/test), limit {LIMITS[name]}x: {verdict}"
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
