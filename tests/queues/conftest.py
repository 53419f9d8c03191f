from __future__ import annotations

import pytest
from queues.queue_helpers import Harness

from pytest_resources.fixtures.queues import QueueFactory


@pytest.fixture
def harness(message_queue_factory: QueueFactory) -> Harness:
    return Harness(message_queue_factory)
