"""Brokers in containers through testcontainers, on the host network (only 127.0.0.1 is used).

Docker must answer a ping within two seconds first; every container is labelled with the
session that owns it so the session end, or the next session, can remove what was left.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .base import Launch, Progress, Unavailable
from .owner import Owner

PING_TIMEOUT = 2.0
MANAGED = "org.pytest-resources.managed"
OWNER = "org.pytest-resources.owner"
MESSAGE_LIMIT = 200
INSTALL_HINT = "pip install 'pytest-resource-guard[containers]'"


@contextlib.contextmanager
def docker_client(timeout: float = PING_TIMEOUT) -> Iterator[Any]:
    """A docker SDK client that answered a ping within ``timeout``; closed afterwards."""
    # Our own ping first: the SDK leaves its socket unclosed when the daemon is absent (a
    # ResourceWarning in some later test), and without a daemon we need not import it at all.
    ping_daemon(timeout)
    try:
        # requests and urllib3 add warnings filters on import; keep the user's filters as
        # they were (a changed filter counts as an env leak of whichever test imported them).
        with warnings.catch_warnings():
            import docker  # type: ignore[import-untyped]
    except ImportError:
        raise Unavailable(f"the docker SDK is not installed ({INSTALL_HINT})") from None
    try:
        client = docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise Unavailable(f"no Docker daemon answered within {timeout:g}s ({exc})") from None
    try:
        try:
            client.ping()
        except Exception as exc:  # the SDK raises requests' and docker's errors alike
            raise Unavailable(f"Docker did not answer a ping within {timeout:g}s ({exc})") from None
        yield client
    finally:
        client.close()


def ping_daemon(timeout: float) -> None:
    """``GET /_ping`` on the daemon named by ``DOCKER_HOST`` (default: the local socket)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = parts.path
        elif parts.scheme in ("tcp", "http") and parts.hostname:
            sock = socket.socket(socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET)
            address = (parts.hostname, parts.port or 2375)
        else:
            return  # https and ssh need the SDK's own handshake: let it ping
        with sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        raise Unavailable(
            f"no Docker daemon answered within {timeout:g}s at {host} ({exc})"
        ) from None
    if not reply.startswith(b"HTTP/1.") or b" 200 " not in reply.split(b"\r\n", 1)[0] + b" ":
        raise Unavailable(f"Docker at {host} did not answer its ping: {reply[:40]!r}")


def sweep(client: Any) -> list[str]:
    """Remove labelled containers whose owning session is gone; return their ids."""
    removed = []
    for found in client.containers.list(all=True, filters={"label": f"{MANAGED}=true"}):
        owner = Owner.parse(found.labels.get(OWNER, ""))
        if (owner is None or not owner.alive()) and _remove(client, found.id):
            removed.append(found.id)
    return removed


def remove(container_id: str) -> None:
    """Remove one container by id; a missing container or daemon is not an error."""
    with contextlib.suppress(Unavailable), docker_client(timeout=10.0) as client:
        _remove(client, container_id)


def _remove(client: Any, container_id: str) -> bool:
    import docker

    try:
        client.containers.get(container_id).remove(force=True)
    except docker.errors.NotFound:
        return False
    return True


def start(image: str, launch: Launch, owner: Owner, ryuk: bool, progress: Progress) -> str:
    """Start ``launch`` in ``image`` on the host network; return the container id."""
    try:
        with warnings.catch_warnings():
            # 4.15 moved modules to testcontainers.community; old paths warn on import.
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.core.config import testcontainers_config
            from testcontainers.core.container import DockerContainer
    except ImportError:
        raise Unavailable(f"testcontainers is not installed ({INSTALL_HINT})") from None
    testcontainers_config.ryuk_disabled = not ryuk
    with docker_client() as client:
        if not client.images.list(name=image):
            progress(f"pulling {image} (not present locally) …")
    kwargs: dict[str, Any] = {
        "network_mode": "host",
        "labels": {MANAGED: "true", OWNER: owner.label()},
    }
    if launch.argv:
        kwargs["entrypoint"] = [launch.argv[0]]
    container = DockerContainer(image, **kwargs)
    if launch.argv[1:]:
        container.with_command(list(launch.argv[1:]))
    for key, value in launch.env.items():
        container.with_env(key, value)
    try:
        container.start()
    except Exception as exc:  # pulls, Ryuk and the daemon fail with many error types
        with contextlib.suppress(Exception):
            container.stop()
        text = _short(exc)
        if ryuk and "ryuk" in text.lower():
            raise Unavailable(
                f"testcontainers' Ryuk ({testcontainers_config.ryuk_image}) did not start "
                f"({text}); set resource_broker_ryuk = false to run without it"
            ) from None
        raise Unavailable(f"image {image} did not start ({text})") from None
    finally:
        container.get_docker_client().client.close()
    return str(container.get_wrapped_container().id)


def status(container_id: str) -> str | None:
    """None while the container runs; otherwise its state and the end of its logs."""
    with docker_client(timeout=10.0) as client:
        found = client.containers.get(container_id)
        if found.status in ("created", "running"):
            return None
        logs = found.logs(tail=20).decode(errors="replace").strip()
        return f"the container is {found.status}; its log ends with: {logs or '(empty)'}"


def close_reaper() -> None:
    """Close testcontainers' Ryuk connection if it was opened (it is a session-long socket)."""
    import sys

    module = sys.modules.get("testcontainers.core.container")
    if module is not None:
        module.Reaper.delete_instance()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"
