"""Broker options turned into settings: CLI > environment > ini > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import pytest

from .base import KINDS, STARTED_PROVIDERS

MODES = ("auto", "real", "require", "off")
DEFAULT_TIMEOUT = 120.0
ENV_PREFIX = "PYTEST_RESOURCES_"


# Records are NamedTuples: a frozen dataclass costs every pytest start-up ~1 ms to generate.


class Source(NamedTuple):
    """A setting's value and where it came from (for messages and the header)."""

    value: str
    origin: str


class BrokerSettings(NamedTuple):
    mode: str = "auto"
    providers: tuple[str, ...] = STARTED_PROVIDERS
    #: Explicit URLs per kind, normalised, with their origin.
    urls: Mapping[str, Source] = MappingProxyType({})
    images: Mapping[str, str] = MappingProxyType({})
    ryuk: bool = True
    timeout: float = DEFAULT_TIMEOUT

    def image(self, kind: str) -> str:
        from .kinds import KIND_SPECS  # on use: it imports every kind's module

        return self.images.get(kind) or KIND_SPECS[kind].default_image


def _pick(config: pytest.Config, name: str, cli: bool = True) -> Source | None:
    """``name`` like ``redis_url``: --resource-redis-url, PYTEST_RESOURCES_REDIS_URL, ini."""
    if cli:
        value = config.getoption(f"resource_{name}", None)
        if value is not None:
            return Source(str(value), f"--resource-{name.replace('_', '-')}")
    env = ENV_PREFIX + name.upper()
    if os.environ.get(env):
        return Source(os.environ[env], env)
    ini = str(config.getini(f"resource_{name}")).strip()
    if ini:
        return Source(ini, f"ini resource_{name}")
    return None


def _choice(source: Source | None, choices: tuple[str, ...], default: str) -> str:
    if source is None:
        return default
    if source.value not in choices:
        raise ValueError(
            f"{source.origin}: expected one of {', '.join(choices)}, got {source.value!r}"
        )
    return source.value


def _providers(source: Source | None) -> tuple[str, ...]:
    if source is None:
        return STARTED_PROVIDERS
    names = tuple(p for p in source.value.replace(",", " ").split() if p)
    unknown = [p for p in names if p not in STARTED_PROVIDERS]
    if unknown or not names:
        raise ValueError(
            f"{source.origin}: expected a list of {', '.join(STARTED_PROVIDERS)}, "
            f"got {source.value!r}"
        )
    return names


def _bool(source: Source | None, default: bool) -> bool:
    if source is None:
        return default
    text = source.value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{source.origin}: expected true or false, got {source.value!r}")


def _seconds(source: Source | None) -> float:
    if source is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(source.value)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{source.origin}: expected seconds > 0, got {source.value!r}")
    return value


def _parse_url(kind: str, value: str) -> str:
    from .kinds import KIND_SPECS  # on use: it imports every kind's module

    return KIND_SPECS[kind].parse_url(value)


def from_config(config: pytest.Config) -> BrokerSettings:
    """Read and validate the broker options; a bad value is a one-line ``pytest.UsageError``."""
    try:
        urls = {}
        for kind in KINDS:
            source = _pick(config, f"{kind}_url")
            if source is not None:
                try:
                    urls[kind] = Source(_parse_url(kind, source.value), source.origin)
                except ValueError as exc:
                    raise ValueError(f"{source.origin}: {exc}") from None
        images = {}
        for kind in KINDS:
            image = _pick(config, f"{kind}_image", cli=False)
            if image is not None:
                images[kind] = image.value
        return BrokerSettings(
            mode=_choice(_pick(config, "brokers"), MODES, "auto"),
            providers=_providers(_pick(config, "broker_providers")),
            urls=urls,
            images=images,
            ryuk=_bool(_pick(config, "broker_ryuk", cli=False), True),
            timeout=_seconds(_pick(config, "broker_timeout")),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
