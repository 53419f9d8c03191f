"""xdist: one broker per session for all workers, a database per worker, stopped at the end."""

from __future__ import annotations

import json

import pytest
from brokers.broker_helpers import listening, need_binary
from pytester_run import Run

from pytest_resources.brokers.shared import registry_dir

RECORDS = """
import json, os, pathlib
import pytest

@pytest.mark.parametrize("n", range(8))
def test_record(n, redis_client, redis_url, worker_id):
    info = redis_client.info("server")
    out = pathlib.Path(__file__).parent / f"seen-{worker_id}-{n}.json"
    out.write_text(json.dumps({"worker": worker_id, "run_id": info["run_id"],
                               "port": info["tcp_port"], "db": redis_url.rsplit("/", 1)[1]}))
"""


def test_xdist_workers_share_one_broker_with_a_database_each(
    run: Run, pytestconfig: pytest.Config
) -> None:
    need_binary(pytestconfig, "redis")
    result = run(
        RECORDS, "-n", "2", "--resource-brokers=require", "--resource-broker-providers=process"
    )
    result.assert_outcomes(passed=8)
    seen = [json.loads(p.read_text()) for p in run.pytester.path.glob("seen-*.json")]
    assert len(seen) == 8
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    assert len({s["run_id"] for s in seen}) == 1  # one server process for both workers
    assert {(s["worker"], s["db"]) for s in seen} == {("gw0", "0"), ("gw1", "1")}
    result.stdout.fnmatch_lines(
        ["*resources: brokers (resolved by the xdist workers)*", "resources: redis: process (*"]
    )
    # The worker that starts the broker shows its progress live, on the controller's stderr.
    result.stderr.fnmatch_lines(
        ["resources: [[]gw?] starting redis: *", "resources: [[]gw?] redis ready in *"]
    )
    # Torn down by the last worker: nothing listens any more and the registry forgot it.
    assert not listening(int(seen[0]["port"]))
    assert not any(str(run.pytester.path) in p.read_text() for p in registry_dir().glob("*.json"))
