"""``python -m pytest_resources.brokers.fake_server PORT``: fakeredis over TCP, in its own process.

Run as a separate process so the fake, like a real broker, can be shared by xdist workers and
leaves no server thread inside the test process.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", int(argv[0])), server_type="redis")
    server.daemon_threads = True
    server.serve_forever()  # until SIGTERM


if __name__ == "__main__":
    main(sys.argv[1:])
