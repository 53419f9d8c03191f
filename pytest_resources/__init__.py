"""pytest-resource-guard: find the threads, tasks, descriptors, processes and global state
your tests leak, and components that leak none of them.

Components are imported on first use, so loading the plugin stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .detector.probes.base import Leak
from .errors import ResourceGuardWarning, ResourceLeakError, ResourceLeakWarning

if TYPE_CHECKING:
    from .brokers.base import (
        Broker as Broker,
        BrokerError as BrokerError,
        NoBroker as NoBroker,
    )
    from .components.buffers import (
        BoundedQueue as BoundedQueue,
        Clock as Clock,
        Overflow as Overflow,
        QueueClosedError as QueueClosedError,
        Replay as Replay,
        ReplayBuffer as ReplayBuffer,
        ReplayBufferClosedError as ReplayBufferClosedError,
        ReplayEntry as ReplayEntry,
    )
    from .components.lifecycle import (
        CleanupError as CleanupError,
        CleanupRegistry as CleanupRegistry,
        RegistryClosedError as RegistryClosedError,
    )
    from .components.processes import (
        ProcessExit as ProcessExit,
        ProcessStopError as ProcessStopError,
        ProcessSupervisor as ProcessSupervisor,
        ProcessSupervisorError as ProcessSupervisorError,
    )
    from .components.publishers import (
        BasePublisher as BasePublisher,
        CloseResult as CloseResult,
        ConsolePublisher as ConsolePublisher,
        ConsoleSettings as ConsoleSettings,
        KafkaPublisher as KafkaPublisher,
        KafkaSettings as KafkaSettings,
        PublisherClosedError as PublisherClosedError,
        PublisherConfigError as PublisherConfigError,
        PublishError as PublishError,
        PublisherSettings as PublisherSettings,
        PublisherStartError as PublisherStartError,
        PublishReceipt as PublishReceipt,
        RabbitMQPublisher as RabbitMQPublisher,
        RabbitMQSettings as RabbitMQSettings,
        RedisPublisher as RedisPublisher,
        RedisSettings as RedisSettings,
        create_publisher as create_publisher,
    )
    from .components.queues import (
        DeadLetter as DeadLetter,
        Delivery as Delivery,
        InMemoryMessageQueue as InMemoryMessageQueue,
        ManualClock as ManualClock,
        MessageQueue as MessageQueue,
        MessageQueueClosedError as MessageQueueClosedError,
        MessageQueueUnavailableError as MessageQueueUnavailableError,
        QueueStats as QueueStats,
        RabbitMQMessageQueue as RabbitMQMessageQueue,
        RedisMessageQueue as RedisMessageQueue,
        RetryPolicy as RetryPolicy,
    )
    from .components.state import (
        ApproachingLimit as ApproachingLimit,
        CleanupFailed as CleanupFailed,
        CleanupTriggered as CleanupTriggered,
        EvictionCallback as EvictionCallback,
        FastModeError as FastModeError,
        InvalidLimitsError as InvalidLimitsError,
        LimitExceeded as LimitExceeded,
        ResourceLimits as ResourceLimits,
        ResourceStats as ResourceStats,
        StateAlert as StateAlert,
        StateMonitor as StateMonitor,
    )
    from .components.tasks import (
        BackgroundTaskManager as BackgroundTaskManager,
        FailureHandler as FailureHandler,
        PendingLimitError as PendingLimitError,
        ShutdownStats as ShutdownStats,
        StuckTask as StuckTask,
        TaskFailure as TaskFailure,
        TaskManagerClosedError as TaskManagerClosedError,
        TaskStats as TaskStats,
    )
    from .components.workers import (
        InstanceFactory as InstanceFactory,
        PoolHealth as PoolHealth,
        TaskAbandonedError as TaskAbandonedError,
        TaskContext as TaskContext,
        TaskFailedError as TaskFailedError,
        TaskHandle as TaskHandle,
        TaskHandler as TaskHandler,
        TaskManager as TaskManager,
        TaskPoolClosedError as TaskPoolClosedError,
    )

__version__ = "0.1.0"

_LAZY = {
    # The queues' CloseResult stays in its module: the publishers' owns the top-level name.
    "pytest_resources.components.queues": (
        "DeadLetter",
        "Delivery",
        "InMemoryMessageQueue",
        "ManualClock",
        "MessageQueue",
        "MessageQueueClosedError",
        "MessageQueueUnavailableError",
        "QueueStats",
        "RabbitMQMessageQueue",
        "RedisMessageQueue",
        "RetryPolicy",
    ),
    "pytest_resources.components.workers": (
        "InstanceFactory",
        "PoolHealth",
        "TaskAbandonedError",
        "TaskContext",
        "TaskFailedError",
        "TaskHandle",
        "TaskHandler",
        "TaskManager",
        "TaskPoolClosedError",
    ),
    "pytest_resources.components.publishers": (
        "BasePublisher",
        "CloseResult",
        "ConsolePublisher",
        "ConsoleSettings",
        "KafkaPublisher",
        "KafkaSettings",
        "PublishError",
        "PublishReceipt",
        "PublisherClosedError",
        "PublisherConfigError",
        "PublisherSettings",
        "PublisherStartError",
        "RabbitMQPublisher",
        "RabbitMQSettings",
        "RedisPublisher",
        "RedisSettings",
        "create_publisher",
    ),
    "pytest_resources.components.lifecycle": (
        "CleanupError",
        "CleanupRegistry",
        "RegistryClosedError",
    ),
    "pytest_resources.components.tasks": (
        "BackgroundTaskManager",
        "FailureHandler",
        "PendingLimitError",
        "ShutdownStats",
        "StuckTask",
        "TaskFailure",
        "TaskManagerClosedError",
        "TaskStats",
    ),
    "pytest_resources.brokers.base": ("Broker", "BrokerError", "NoBroker"),
    "pytest_resources.components.buffers": (
        "BoundedQueue",
        "Clock",
        "Overflow",
        "QueueClosedError",
        "Replay",
        "ReplayBuffer",
        "ReplayBufferClosedError",
        "ReplayEntry",
    ),
    "pytest_resources.components.processes": (
        "ProcessExit",
        "ProcessStopError",
        "ProcessSupervisor",
        "ProcessSupervisorError",
    ),
    "pytest_resources.components.state": (
        "ApproachingLimit",
        "CleanupFailed",
        "CleanupTriggered",
        "EvictionCallback",
        "FastModeError",
        "InvalidLimitsError",
        "LimitExceeded",
        "ResourceLimits",
        "ResourceStats",
        "StateAlert",
        "StateMonitor",
    ),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "Leak",
    "ResourceGuardWarning",
    "ResourceLeakError",
    "ResourceLeakWarning",
    "__version__",
    *_MODULE_OF,
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_resources' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
