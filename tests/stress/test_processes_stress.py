"""1,000 supervised process groups started and stopped with bounded concurrency; nothing is
left alive or unreaped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_resources.components.processes import ProcessExit, ProcessSupervisor

pytestmark = pytest.mark.slow

PROCESSES = 1_000
CONCURRENCY = 16
# A shell that ignores SIGTERM, leaves a grandchild (which inherits the ignored SIGTERM) in its
# group, and says so on stdout once both are in place.
STUBBORN = "trap '' TERM; sleep 600 & echo ready; wait"


def live_group_members(pgids: set[int]) -> list[int]:
    """Pids of processes that are alive (not zombies) in any of ``pgids``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != b"Z":
            found.append(int(name))
    return found


@pytest.mark.asyncio
async def test_a_thousand_process_groups_started_and_stopped_from_asyncio() -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one() -> ProcessExit:
        async with limit, ProcessSupervisor(["sleep", "600"]) as sup:
            pass
        assert sup.exit is not None
        return sup.exit

    results = await asyncio.gather(*(one() for _ in range(PROCESSES)))
    assert {(r.signal, r.stopped, r.escalated) for r in results} == {(signal.SIGTERM, True, False)}
    assert live_group_members({r.pid for r in results}) == []


def test_stubborn_groups_are_killed_from_many_threads() -> None:
    def one() -> ProcessExit:
        sup = ProcessSupervisor(
            ["sh", "-c", STUBBORN], stdout=subprocess.PIPE, stop_timeout=0.05
        ).start()
        stdout = sup.process.stdout
        assert stdout is not None
        assert stdout.readline() == b"ready\n"
        return sup.stop()

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda _: one(), range(PROCESSES)))
    assert {(r.signal, r.escalated) for r in results} == {(signal.SIGKILL, True)}
    assert live_group_members({r.pid for r in results}) == []
