"""Resolution order, precedence, modes and the messages that say why a link was passed over."""

from __future__ import annotations

import pytest
from brokers.broker_helpers import need_binary
from pytester_run import Run

from pytest_resources.brokers.wire import free_ports

USES_REDIS = """
import pytest

@pytest.mark.requires_broker("redis", real=False)
def test_any_redis(redis_client):
    redis_client.set("key", "value")
    assert redis_client.get("key") == b"value"

@pytest.mark.requires_broker("redis")
def test_real_redis(redis_url):
    pass
"""
USES_KAFKA = """
def test_kafka(kafka_bootstrap_servers):
    pass
"""
NO_BROKER = "def test_nothing():\n    pass\n"


@pytest.fixture(autouse=True)
def _no_broker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI sets these for the whole run; each test here says what it wants.
    for name in ("BROKERS", "BROKER_PROVIDERS", "REDIS_URL", "RABBITMQ_URL", "KAFKA_URL"):
        monkeypatch.delenv(f"PYTEST_RESOURCES_{name}", raising=False)


def _header(result: pytest.RunResult) -> str:
    return next(line for line in result.stdout.lines if line.startswith("resources: brokers"))


def test_mode_precedence_is_cli_then_env_then_ini(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _header(run(NO_BROKER)).split(";")[0] == "resources: brokers auto"
    ini = "resource_brokers = real\n"
    assert _header(run(NO_BROKER, ini=ini)).split(";")[0] == "resources: brokers real"
    monkeypatch.setenv("PYTEST_RESOURCES_BROKERS", "off")
    assert _header(run(NO_BROKER, ini=ini)).split(";")[0] == "resources: brokers off"
    result = run(NO_BROKER, "--resource-brokers=require", ini=ini)
    assert _header(result).split(";")[0] == "resources: brokers require"


def test_url_precedence_names_the_source(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    ini = "resource_redis_url = redis://127.0.0.1:1/0\n"
    assert "redis from ini resource_redis_url" in _header(run(NO_BROKER, ini=ini))
    monkeypatch.setenv("PYTEST_RESOURCES_REDIS_URL", "redis://127.0.0.1:2")
    assert "redis from PYTEST_RESOURCES_REDIS_URL" in _header(run(NO_BROKER, ini=ini))
    result = run(NO_BROKER, "--resource-redis-url=redis://127.0.0.1:3", ini=ini)
    assert "redis from --resource-redis-url" in _header(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--resource-redis-url=http://127.0.0.1:6379",),
            "--resource-redis-url: expected redis://host:port*got 'http://127.0.0.1:6379'",
        ),
        (("--resource-kafka-url=127.0.0.1",), "--resource-kafka-url: expected host:port"),
        (("--resource-broker-providers=docker",), "--resource-broker-providers: expected a list"),
        (("--resource-broker-timeout=0",), "--resource-broker-timeout: expected seconds > 0"),
    ],
)
def test_a_malformed_option_is_one_usage_error(
    run: Run, args: tuple[str, ...], message: str
) -> None:
    result = run(NO_BROKER, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_an_unreachable_url_is_an_error_not_a_fallback(run: Run) -> None:
    (port,) = free_ports(1)
    url = f"redis://127.0.0.1:{port}"
    result = run(USES_REDIS, f"--resource-redis-url={url}", "--resource-brokers=auto")
    result.assert_outcomes(errors=2)
    message = f"--resource-redis-url={url}: no redis broker answered (not ready after 10s:"
    assert result.stdout.str().count(f"E   {message}") == 0  # one line, no traceback
    result.stdout.fnmatch_lines([f"resources: redis: error: {message}*", f"*{message}*"])
    assert "resources: starting" not in result.stdout.str()


def test_fakeredis_serves_only_in_auto_mode_and_never_claims_to_be_real(run: Run) -> None:
    result = run(USES_REDIS, "-rs", "--resource-brokers=auto", "--resource-broker-providers=fake")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "resources: redis: fake (fakeredis TCP server) at redis://127.0.0.1:*"
            "[FAKE: not a real Redis]*",
            "*needs a real redis broker*",
        ]
    )
    real = run(USES_REDIS, "--resource-brokers=real", "--resource-broker-providers=fake")
    real.assert_outcomes(skipped=2)
    real.stdout.fnmatch_lines(["resources: redis: none; passed over: *fake: not used in mode real"])
    required = run(USES_REDIS, "--resource-brokers=require", "--resource-broker-providers=fake")
    required.assert_outcomes(errors=2)
    required.stdout.fnmatch_lines(["*no redis broker: *(--resource-brokers=require)"])


def test_require_mode_turns_a_missing_broker_into_an_error(run: Run) -> None:
    skipped = run(USES_KAFKA, "--resource-brokers=real", "--resource-broker-providers=fake")
    skipped.assert_outcomes(skipped=1)
    required = run(USES_KAFKA, "--resource-brokers=require", "--resource-broker-providers=fake")
    required.assert_outcomes(errors=1)
    required.stdout.fnmatch_lines(
        ["*no kafka broker: url: not set; hook: no plugin answered (--resource-brokers=require)"]
    )


def test_off_mode_starts_nothing_and_skips(run: Run) -> None:
    result = run(USES_REDIS, "--resource-brokers=off")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*brokers off (--resource-brokers=off)*"])
    assert "resources: starting" not in result.stdout.str()


def test_docker_absent_passes_to_the_next_link_with_the_reason(
    run: Run,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    need_binary(pytestconfig, "redis")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path_factory.mktemp('nodocker')}/docker.sock")
    result = run(
        USES_REDIS, "--resource-brokers=real", "--resource-broker-providers=container,process"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "resources: redis: process (*-server) at redis://127.0.0.1:*; passed over: "
            "url: not set; hook: no plugin answered; container: no Docker daemon answered*"
        ]
    )


def test_a_hook_provides_the_broker(run: Run, redis_url: str) -> None:
    run.pytester.makeconftest(
        f"""
def pytest_resources_broker_url(config, kind):
    return {redis_url!r} if kind == "redis" else None
"""
    )
    result = run(
        USES_REDIS.replace('@pytest.mark.requires_broker("redis")\n', ""),
        "--resource-brokers=require",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"resources: redis: hook (pytest_resources_broker_url hook) at {redis_url}*"]
    )
    assert "resources: starting" not in result.stdout.str()


def test_a_malformed_requires_broker_marker_fails_its_test(run: Run) -> None:
    result = run(
        """
import pytest

@pytest.mark.requires_broker("postgres")
def test_it():
    pass
"""
    )
    result.assert_outcomes(failed=0, errors=1)
    result.stdout.fnmatch_lines(["*requires_broker: expected requires_broker(kind, real=True)*"])
