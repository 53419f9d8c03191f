"""The broker kinds by name: how each is reached, started and checked (its own module)."""

from __future__ import annotations

from . import kafka, rabbitmq, redis
from .base import Kind

KIND_SPECS: dict[str, Kind] = {k.name: k for k in (redis.KIND, rabbitmq.KIND, kafka.KIND)}
