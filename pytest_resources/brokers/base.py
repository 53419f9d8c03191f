"""Records shared by every provider: the resolved broker, a launch recipe, the errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple, Protocol

KINDS = ("redis", "rabbitmq", "kafka")
#: Providers a session may start, in the default order (URL and the hook always come first).
STARTED_PROVIDERS = ("container", "process", "fake")

Progress = Callable[[str], None]
#: How a broker line marks a fake.
FAKE = "[FAKE: not a real Redis]"


# Records are NamedTuples: a frozen dataclass costs every pytest start-up ~1 ms to generate.


class Broker(NamedTuple):
    """A broker that answered its protocol's handshake, and how it was found."""

    kind: str
    url: str
    #: ``url``, ``hook``, ``container``, ``process`` or ``fake``.
    provider: str
    #: What served it: the URL's source, the image, the binary path.
    detail: str
    #: ``"link: why"`` for every link tried before the one that served.
    passed_over: tuple[str, ...] = ()
    fake: bool = False
    ready_seconds: float | None = None

    def describe(self) -> str:
        took = "" if self.ready_seconds is None else f", ready in {self.ready_seconds:.1f}s"
        line = f"{self.kind}: {self.provider} ({self.detail}) at {self.url}{took}"
        if self.fake:
            line += f" {FAKE}"
        if self.passed_over:
            line += "; passed over: " + "; ".join(self.passed_over)
        return line


class Launch(NamedTuple):
    """How to start one broker: argv (argv[0] looked up on PATH) and extra environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = MappingProxyType({})


class Unavailable(Exception):
    """This link cannot serve the broker; the chain moves on and shows the reason."""


class BrokerError(Exception):
    """A broker the user asked for explicitly does not work: an error, never a fallback."""


class NoBroker(Exception):
    """Every link was passed over; ``reasons`` lists why, one ``"link: why"`` each."""

    def __init__(self, kind: str, reasons: Sequence[str]) -> None:
        self.kind = kind
        self.reasons = tuple(reasons)
        super().__init__(f"no {kind} broker: " + "; ".join(self.reasons))


class Kind(Protocol):
    """What the chain needs to know about one broker kind."""

    name: str
    #: The command that makes a local binary of this broker available.
    provide: str
    #: Free ports the launch recipe takes (the first is the client port).
    ports: int
    default_image: str

    def parse_url(self, url: str) -> str:
        """Validate a user URL and return it normalised; raise ValueError if malformed."""
        ...

    def url(self, port: int) -> str:
        """The URL of a broker this session started on 127.0.0.1:port."""
        ...

    def check(self, url: str, timeout: float) -> None:
        """One handshake; raise OSError (or ProtocolError) unless the broker answers."""
        ...

    def binary(self) -> str:
        """The local server binary; raise Unavailable when there is none."""
        ...

    def launch(self, binary: str, ports: Sequence[int], data_dir: str) -> Launch:
        """The command that serves on ``ports[0]`` at 127.0.0.1, keeping state in data_dir."""
        ...

    def container(self, image: str, ports: Sequence[int]) -> Launch:
        """The same inside ``image`` on the host network (empty argv: keep the image's own)."""
        ...


class ProtocolError(OSError):
    """Something answered, but not with this broker's protocol."""
