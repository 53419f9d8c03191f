"""The process that owns a test session's brokers: alive means the brokers are in use."""

from __future__ import annotations

import os
from typing import NamedTuple


class Owner(NamedTuple):
    pid: int
    #: psutil's create_time, so a recycled pid is not taken for the owner.
    started: float

    @classmethod
    def current(cls) -> Owner:
        import psutil  # on use: importing it costs every pytest start-up ~7 ms

        return cls(os.getpid(), psutil.Process().create_time())

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        pid, _, started = text.partition(":")
        try:
            return cls(int(pid), float(started))
        except ValueError:
            return None

    def label(self) -> str:
        return f"{self.pid}:{self.started}"

    def alive(self) -> bool:
        import psutil  # on use: importing it costs every pytest start-up ~7 ms

        try:
            proc = psutil.Process(self.pid)
            return (
                abs(proc.create_time() - self.started) < 0.5
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.NoSuchProcess:
            return False
