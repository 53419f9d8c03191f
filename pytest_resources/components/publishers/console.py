"""``ConsolePublisher``: events as lines on standard output, for development and demos."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from .base import BasePublisher, PublishReceipt
from .config import ConsoleSettings

__all__ = ["ConsolePublisher"]


class ConsolePublisher(BasePublisher[ConsoleSettings]):
    """Writes each event as one line, ``key`` and headers first when given, and flushes.

    The stream is looked up at each publish, so redirected or captured output (pytest's
    ``capsys``) receives it. Confirmed means written and flushed.
    """

    def __init__(self, settings: ConsoleSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None:
            settings = ConsoleSettings()
        elif not isinstance(settings, ConsoleSettings):
            settings = ConsoleSettings.from_mapping(settings)
        super().__init__(settings)

    def _target(self) -> str:
        return f"console {self.settings.stream}"

    async def _open(self) -> None:
        return None

    async def _send(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt:
        stream = sys.stdout if self.settings.stream == "stdout" else sys.stderr
        prefix = "".join(f"{name}={value} " for name, value in (headers or {}).items())
        if key is not None:
            prefix = f"[{key}] {prefix}"
        stream.write(f"{prefix}{body.decode(errors='replace')}\n")
        stream.flush()
        return PublishReceipt(self._target())

    async def _shutdown(self) -> None:
        return None

    async def _abort(self) -> None:
        return None
