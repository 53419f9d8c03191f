"""The hook a user's plugin or conftest implements to provide a broker itself."""

from __future__ import annotations

import pytest


@pytest.hookspec(firstresult=True)
def pytest_resources_broker_url(config: pytest.Config, kind: str) -> str | None:
    """Return the URL of a running broker of ``kind`` (``redis``, ``rabbitmq``, ``kafka``).

    Called once per process that needs the broker, after an explicit URL option and before
    any broker is started; return None to let the chain go on. Whatever you start here you
    also stop (``config.add_cleanup``). Kafka URLs are ``host:port[,host:port]``.

    >>> def pytest_resources_broker_url(config, kind):
    ...     if kind == "redis":
    ...         return os.environ.get("MY_CI_REDIS")
    ...     return None
    """
    return None
