"""Time to ready per provider per broker: local process (the baseline) against a container.

For each broker kind, alternately starts it through the local-process provider and through
the container provider (``PYTEST_RESOURCES_<KIND>_IMAGE`` or the default image), measures the
wall time until the broker answers its protocol's handshake, stops it, and prints the median
of each and the container/process ratio. A provider that cannot start prints its reason.

    python benchmarks/bench_brokers.py [--rounds 3] [--kinds redis,rabbitmq,kafka]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pytest_resources.brokers.base import KINDS, BrokerError, NoBroker
from pytest_resources.brokers.chain import Provisioner
from pytest_resources.brokers.owner import Owner
from pytest_resources.brokers.settings import BrokerSettings
from pytest_resources.brokers.shared import SessionDir

PROVIDERS = ("process", "container")


def settings(provider: str) -> BrokerSettings:
    images = {
        kind: os.environ[f"PYTEST_RESOURCES_{kind.upper()}_IMAGE"]
        for kind in KINDS
        if os.environ.get(f"PYTEST_RESOURCES_{kind.upper()}_IMAGE")
    }
    return BrokerSettings(mode="require", providers=(provider,), images=images, ryuk=False)


def time_to_ready(kind: str, provider: str, root: Path) -> float | str:
    """Seconds from asking to a broker that answers (start included), or why it failed."""
    session = SessionDir(root / f"{kind}-{provider}-{time.monotonic_ns()}")
    session.claim(Owner.current())
    provisioner = Provisioner(settings(provider), session, lambda _: None, lambda _: None)
    start = time.perf_counter()
    try:
        provisioner.broker(kind)
        return time.perf_counter() - start
    except (NoBroker, BrokerError) as exc:
        return str(exc)
    finally:
        provisioner.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    print(f"{'broker':<10}{'provider':<11}{'median s':>10}{'min s':>8}{'max s':>8}  vs process")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            times: dict[str, list[float]] = {p: [] for p in PROVIDERS}
            failed: dict[str, str] = {}
            for _ in range(args.rounds):
                for provider in PROVIDERS:  # alternating, so drift hits both alike
                    if provider in failed:
                        continue
                    result = time_to_ready(kind, provider, Path(tmp))
                    if isinstance(result, str):
                        failed[provider] = result
                    else:
                        times[provider].append(result)
            baseline = statistics.median(times["process"]) if times["process"] else None
            for provider in PROVIDERS:
                if provider in failed:
                    print(f"{kind:<10}{provider:<11}  unavailable: {failed[provider]}")
                    continue
                median = statistics.median(times[provider])
                ratio = f"{median / baseline:.2f}x" if baseline else "-"
                print(
                    f"{kind:<10}{provider:<11}{median:>10.3f}{min(times[provider]):>8.3f}"
                    f"{max(times[provider]):>8.3f}  {ratio}"
                )


if __name__ == "__main__":
    main()
