"""The broker command-line options and ini keys (added to the ``resources`` group)."""

from __future__ import annotations

import pytest

from .base import KINDS, STARTED_PROVIDERS
from .settings import DEFAULT_TIMEOUT, MODES


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("resources")
    group.addoption(
        "--resource-brokers",
        choices=MODES,
        default=None,
        help="broker provisioning: auto (fakeredis allowed), real (no fake), require (a "
        "missing broker is an error, not a skip), off (start nothing) "
        "(env PYTEST_RESOURCES_BROKERS; ini resource_brokers; default auto)",
    )
    group.addoption(
        "--resource-broker-providers",
        metavar="LIST",
        default=None,
        help="which brokers the session may start, in order: "
        + ",".join(STARTED_PROVIDERS)
        + " (env PYTEST_RESOURCES_BROKER_PROVIDERS; ini resource_broker_providers)",
    )
    group.addoption(
        "--resource-broker-timeout",
        metavar="SECONDS",
        default=None,
        help="longest wait for a started broker to answer "
        f"(default {DEFAULT_TIMEOUT:g}; env PYTEST_RESOURCES_BROKER_TIMEOUT)",
    )
    parser.addini("resource_brokers", "broker mode: auto, real, require or off", default="")
    parser.addini("resource_broker_providers", "brokers the session may start", default="")
    parser.addini("resource_broker_timeout", "seconds to wait for a started broker", default="")
    parser.addini(
        "resource_broker_ryuk", "use testcontainers' Ryuk reaper (true/false)", default=""
    )
    for kind in KINDS:
        group.addoption(
            f"--resource-{kind}-url",
            metavar="URL",
            default=None,
            help=f"use this {kind} broker, start none "
            f"(env PYTEST_RESOURCES_{kind.upper()}_URL; ini resource_{kind}_url)",
        )
        parser.addini(f"resource_{kind}_url", f"use this {kind} broker", default="")
        parser.addini(
            f"resource_{kind}_image",
            f"container image for {kind} (env PYTEST_RESOURCES_{kind.upper()}_IMAGE)",
            default="",
        )
