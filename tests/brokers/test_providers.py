"""Every provider serves every broker kind for real: a client round trip through each."""

from __future__ import annotations

import pytest
from brokers.broker_helpers import ROUNDTRIP, image, need_binary, need_image
from pytester_run import Run

from pytest_resources.brokers.base import KINDS
from pytest_resources.brokers.container import MANAGED, OWNER, docker_client

URL_FIXTURE = {"redis": "redis_url", "rabbitmq": "rabbitmq_url", "kafka": "kafka_bootstrap_servers"}
RECORD_PID = """

def test_record_pid():
    import os, pathlib
    pathlib.Path("pid").write_text(str(os.getpid()))
"""
STRICT = ("--resource-strict", "--resource-brokers=require", "--timeout=120")


@pytest.mark.parametrize("kind", KINDS)
def test_local_process_serves_a_real_broker(
    run: Run, pytestconfig: pytest.Config, kind: str
) -> None:
    need_binary(pytestconfig, kind)
    result = run(ROUNDTRIP[kind], *STRICT, "--resource-broker-providers=process")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"resources: starting {kind}: *",
            f"resources: {kind}: process (*) at *127.0.0.1:*, ready in *; passed over: "
            "url: not set; hook: no plugin answered",
        ]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_container_serves_a_real_broker_on_the_host_network(
    run: Run, pytestconfig: pytest.Config, kind: str
) -> None:
    used = image(pytestconfig, kind)
    need_image(pytestconfig, used)
    source = ROUNDTRIP[kind] + RECORD_PID
    result = run(
        source,
        *STRICT,
        "--resource-broker-providers=container",
        ini="resource_broker_ryuk = false\n",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"resources: {kind}: container ({used}, host network, ryuk off) at *127.0.0.1:*"]
    )
    pid = (run.pytester.path / "pid").read_text()
    with docker_client() as client:
        labelled = client.containers.list(all=True, filters={"label": f"{MANAGED}=true"})
        assert [c.id for c in labelled if c.labels[OWNER].startswith(f"{pid}:")] == []


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.requires_broker(k)) for k in KINDS]
)
def test_explicit_url_is_used_and_nothing_is_started(
    run: Run, request: pytest.FixtureRequest, kind: str
) -> None:
    url = request.getfixturevalue(URL_FIXTURE[kind])
    result = run(ROUNDTRIP[kind], *STRICT, f"--resource-{kind}-url={url}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"resources: {kind}: url (--resource-{kind}-url) at {url}*"])
    assert "resources: starting" not in result.stdout.str()
