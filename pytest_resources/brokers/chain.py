"""The provider chain: explicit URL → hook → container → local process → fakeredis → none.

A ``Provisioner`` resolves each broker kind once per process. Brokers it starts are shared by
every process of the test run through the session directory: the first process to need one
starts it under the lock, the others attach, and the last one to leave stops them all.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from . import container, fake, process
from .base import Broker, BrokerError, Kind, Launch, NoBroker, Progress, Unavailable
from .kinds import KIND_SPECS
from .owner import Owner
from .shared import SessionDir, register, stale_sessions, unregister
from .wire import free_ports, wait_ready

if TYPE_CHECKING:
    from .settings import BrokerSettings

#: An explicit URL may point at a service that is still starting; it gets this long.
URL_WAIT = 10.0
#: A broker another process started gets this long to answer before it is replaced.
ATTACH_WAIT = 5.0

HookUrl = Callable[[str], "str | None"]


@dataclass(frozen=True)
class _Started:
    broker: Broker
    stop: dict[str, Any]


class Provisioner:
    """Resolves brokers for one process and stops the shared ones when the last user leaves."""

    def __init__(
        self,
        settings: BrokerSettings,
        session: SessionDir,
        hook: HookUrl,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.session = session
        self._hook = hook
        self._progress = progress
        self._me = Owner.current()
        self._joined = False
        self._results: dict[str, Broker | NoBroker | BrokerError] = {}

    @property
    def resolved(self) -> dict[str, Broker | NoBroker | BrokerError]:
        return dict(self._results)

    def broker(self, kind: str) -> Broker:
        """The broker for ``kind``; raises NoBroker or BrokerError (the same one every time)."""
        if kind not in self._results:
            try:
                self._results[kind] = self._resolve(KIND_SPECS[kind])
            except (NoBroker, BrokerError) as exc:
                self._results[kind] = exc
        result = self._results[kind]
        if isinstance(result, Exception):
            raise result
        return result

    def _resolve(self, kind: Kind) -> Broker:
        reasons: list[str] = []
        explicit = self.settings.urls.get(kind.name)
        if explicit is not None:
            return self._given(kind, explicit.value, "url", explicit.origin, reasons)
        reasons.append("url: not set")
        if self.settings.mode == "off":
            raise NoBroker(kind.name, [*reasons, "brokers off (--resource-brokers=off)"])
        hooked = self._hook(kind.name)
        if hooked is not None:
            try:
                url = kind.parse_url(hooked)
            except ValueError as exc:
                raise BrokerError(f"pytest_resources_broker_url hook: {exc}") from None
            return self._given(kind, url, "hook", "pytest_resources_broker_url hook", reasons)
        reasons.append("hook: no plugin answered")
        return self._shared(kind, reasons)

    def _given(
        self, kind: Kind, url: str, provider: str, origin: str, reasons: list[str]
    ) -> Broker:
        try:
            took = wait_ready(lambda t: kind.check(url, t), URL_WAIT)
        except (OSError, TimeoutError) as exc:
            raise BrokerError(f"{origin}={url}: no {kind.name} broker answered ({exc})") from None
        return Broker(kind.name, url, provider, origin, tuple(reasons), ready_seconds=took)

    def _shared(self, kind: Kind, reasons: list[str]) -> Broker:
        with self.session.locked():
            if not self._joined:
                self.session.join(self._me)
                self._joined = True
            record = self.session.read(kind.name)
            if record is not None:
                broker = Broker(
                    **{**record["broker"], "passed_over": tuple(record["broker"]["passed_over"])}
                )
                try:
                    kind.check(broker.url, ATTACH_WAIT)
                    return broker
                except OSError:
                    _stop(record)  # dead or hung: replace it
                    self.session.drop(kind.name)
            for provider in self._providers(kind, reasons):
                try:
                    started = self._start(kind, provider, tuple(reasons))
                except Unavailable as exc:
                    reasons.append(f"{provider}: {exc}")
                    continue
                self.session.write(kind.name, {"broker": started.broker._asdict(), **started.stop})
                register(self.session, self.session.owner() or self._me)
                return started.broker
        raise NoBroker(kind.name, reasons)

    def _providers(self, kind: Kind, reasons: list[str]) -> list[str]:
        out = []
        for provider in self.settings.providers:
            if provider == "fake" and kind.name != "redis":
                continue
            if provider == "fake" and self.settings.mode != "auto":
                reasons.append(f"fake: not used in mode {self.settings.mode}")
                continue
            out.append(provider)
        return out

    def _start(self, kind: Kind, provider: str, passed: tuple[str, ...]) -> _Started:
        ports = free_ports(kind.ports)
        url = kind.url(ports[0])
        data_dir = self.session.data_dir(kind.name)
        shutil.rmtree(data_dir, ignore_errors=True)
        if provider == "container":
            return self._in_container(kind, ports, url, passed)
        if provider == "process":
            binary = kind.binary()
            launch, detail = kind.launch(binary, ports, str(data_dir)), binary
        else:
            launch, detail = fake.launch(ports[0]), "fakeredis TCP server"
        self._progress(f"starting {kind.name}: {detail} …")
        spawned = process.spawn(launch, data_dir)
        try:
            took = wait_ready(
                lambda t: kind.check(url, t),
                self.settings.timeout,
                lambda: process.exit_reason(spawned),
                self._waiting(kind.name),
            )
        except (OSError, TimeoutError) as exc:
            process.stop(spawned)
            raise Unavailable(f"{detail} did not answer: {exc}") from None
        broker = Broker(kind.name, url, provider, detail, passed, provider == "fake", took)
        self._progress(f"{kind.name} ready in {took:.1f}s")
        return _Started(broker, {"process": asdict(spawned)})

    def _in_container(
        self, kind: Kind, ports: list[int], url: str, passed: tuple[str, ...]
    ) -> _Started:
        with container.docker_client() as client:
            container.sweep(client)
        image = self.settings.image(kind.name)
        launch: Launch = kind.container(image, ports)
        # Ryuk belongs to one process; a container shared by xdist workers must outlive it.
        ryuk = self.settings.ryuk and not self._shared_by_workers()
        self._progress(f"starting {kind.name}: container {image} …")
        cid = container.start(image, launch, self.session.owner() or self._me, ryuk, self._progress)
        try:
            took = wait_ready(
                lambda t: kind.check(url, t),
                self.settings.timeout,
                lambda: container.status(cid),
                self._waiting(kind.name),
            )
        except (OSError, TimeoutError, Unavailable) as exc:
            container.remove(cid)
            raise Unavailable(f"container {image} did not answer: {exc}") from None
        detail = f"{image}, host network, ryuk {'on' if ryuk else 'off'}"
        self._progress(f"{kind.name} ready in {took:.1f}s")
        return _Started(
            Broker(kind.name, url, "container", detail, passed, False, took), {"container": cid}
        )

    def _shared_by_workers(self) -> bool:
        owner = self.session.owner()
        return owner is not None and owner.pid != self._me.pid

    def _waiting(self, kind: str) -> Callable[[float], None]:
        return lambda seconds: self._progress(f"still starting {kind} ({seconds:.0f}s) …")

    def finish(self) -> None:
        """Leave the session; the last process to leave stops every shared broker."""
        container.close_reaper()
        if not self._joined:
            return
        with self.session.locked():
            if self.session.leave(self._me):
                teardown(self.session)


def _stop(record: dict[str, Any]) -> None:
    if "process" in record:
        process.stop(process.Spawned(**record["process"]))
    if "container" in record:
        container.remove(record["container"])


def teardown(session: SessionDir) -> None:
    """Stop every broker the session directory records, remove their data, unregister."""
    for kind in session.kinds():
        record = session.read(kind)
        if record is not None:
            _stop(record)
        session.drop(kind)
    unregister(session)


def sweep_stale() -> list[str]:
    """Stop what killed sessions left running; return the session directories cleaned."""
    cleaned = []
    for entry, session in stale_sessions():
        if session.path.is_dir():
            with contextlib.suppress(OSError):
                teardown(session)
        entry.unlink(missing_ok=True)
        cleaned.append(str(session.path))
    return cleaned
