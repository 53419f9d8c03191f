"""Cost per task of BackgroundTaskManager against raw ``asyncio.create_task`` + a set and
against aiojobs.

Each round starts N trivial tasks through each mechanism (in rotating order), waits until
all have finished and closes the container; the figure is the median time per task over
the rounds. Targets: manager/raw <= 1.2, aiojobs/manager >= 3.

    python benchmarks/bench_tasks.py [--tasks 20000] [--rounds 7] [--limit 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable

import aiojobs

from pytest_resources.components.tasks import BackgroundTaskManager

Runner = Callable[[int, int | None], Awaitable[None]]
RAW = "raw create_task + set"


async def noop() -> None:
    pass


async def raw(n: int, limit: int | None) -> None:
    """The baseline: a strong reference kept in a set until the task is done."""
    tasks: set[asyncio.Task[None]] = set()
    for _ in range(n):
        task = asyncio.create_task(noop())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.wait(list(tasks))


async def manager(n: int, limit: int | None) -> None:
    m = BackgroundTaskManager(limit=limit)
    for _ in range(n):
        m.create_task(noop())
    await m.wait_for_all()
    await m.shutdown()


async def jobs(n: int, limit: int | None) -> None:
    scheduler = aiojobs.Scheduler(limit=limit, pending_limit=n)
    for _ in range(n):
        await scheduler.spawn(noop())
    await scheduler.wait_and_close()


async def per_task(run: Runner, n: int, limit: int | None) -> float:
    gc.collect()
    start = time.perf_counter()
    await run(n, limit)
    return (time.perf_counter() - start) / n


async def measure(n: int, rounds: int, limit: int | None) -> dict[str, float]:
    runners: dict[str, Runner] = {RAW: raw, "manager": manager, "aiojobs": jobs}
    if limit is not None:
        del runners[RAW]  # raw tasks have no limit to compare with
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    await per_task(manager, n, limit)  # warm up
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            samples[name].append(await per_task(runners[name], n, limit))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float]) -> None:
    print(title)
    for name, seconds in medians.items():
        print(f"  {name:<24}{seconds * 1e6:8.2f} µs/task")
    ours = medians["manager"]
    if RAW in medians:
        ratio = ours / medians[RAW]
        print(f"  manager / raw     = {ratio:5.2f}x  (target <= 1.2x)")
    ratio = medians["aiojobs"] / ours
    print(f"  aiojobs / manager = {ratio:5.2f}x  (target >= 3x: manager this much faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--limit", type=int, default=100, help="limit for the second table")
    args = parser.parse_args()
    print(f"{args.tasks} trivial tasks per run, median of {args.rounds} rounds")
    report("no limit:", asyncio.run(measure(args.tasks, args.rounds, None)))
    report(f"limit={args.limit}:", asyncio.run(measure(args.tasks, args.rounds, args.limit)))


if __name__ == "__main__":
    main()
