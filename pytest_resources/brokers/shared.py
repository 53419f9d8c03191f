"""State shared by every process of one test run, and the registry that outlives it.

The session directory (in pytest's shared base temp) holds a lock, one record per started
broker, the owner (the controller, or the only process) and one file per process using
the brokers. A stable registry under the system temp dir points at every session directory
that started a broker, so the next session can stop what a killed one left running.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .owner import Owner

OWNER_FILE = "owner"
USERS = "users"


class SessionDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def claim(self, owner: Owner) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / OWNER_FILE).write_text(owner.label())

    def owner(self) -> Owner | None:
        try:
            return Owner.parse((self.path / OWNER_FILE).read_text())
        except OSError:
            return None

    def data_dir(self, kind: str) -> Path:
        return self.path / kind

    def _record(self, kind: str) -> Path:
        return self.path / f"{kind}.json"

    def read(self, kind: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._record(kind).read_text())
        except (OSError, ValueError):
            return None
        return data

    def write(self, kind: str, record: dict[str, Any]) -> None:
        self._record(kind).write_text(json.dumps(record))

    def drop(self, kind: str) -> None:
        self._record(kind).unlink(missing_ok=True)
        shutil.rmtree(self.data_dir(kind), ignore_errors=True)

    def kinds(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.json"))

    def join(self, user: Owner) -> None:
        users = self.path / USERS
        users.mkdir(parents=True, exist_ok=True)
        (users / user.label()).touch()

    def leave(self, user: Owner) -> bool:
        """Forget ``user``; True when no live user is left (the caller stops the brokers)."""
        users = self.path / USERS
        (users / user.label()).unlink(missing_ok=True)
        for entry in users.glob("*") if users.exists() else ():
            other = Owner.parse(entry.name)
            if other is not None and other.alive():
                return False
        return True


def registry_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"pytest-resources-{os.getuid()}"


def _entry(session: SessionDir) -> Path:
    digest = hashlib.sha1(str(session.path).encode()).hexdigest()[:16]
    return registry_dir() / f"{digest}.json"


def register(session: SessionDir, owner: Owner) -> None:
    registry_dir().mkdir(parents=True, exist_ok=True)
    _entry(session).write_text(json.dumps({"session": str(session.path), "owner": owner.label()}))


def unregister(session: SessionDir) -> None:
    _entry(session).unlink(missing_ok=True)


def stale_sessions() -> Iterator[tuple[Path, SessionDir]]:
    """Registry entries whose owner is gone, with the session directory they name."""
    root = registry_dir()
    if not root.is_dir():
        return
    for entry in root.glob("*.json"):
        try:
            data = json.loads(entry.read_text())
            owner = Owner.parse(str(data["owner"]))
            path = Path(data["session"])
        except (OSError, ValueError, KeyError):
            entry.unlink(missing_ok=True)
            continue
        if owner is None or not owner.alive():
            yield entry, SessionDir(path)
