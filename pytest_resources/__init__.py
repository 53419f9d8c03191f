"""pytest-resource-guard: find the threads, tasks, descriptors, processes and global state
your tests leak, and components that leak none of them. (PYTEST_DONT_REWRITE: see
_skip_assertion_rewriting.)

Components are imported on first use, so loading the plugin stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The one table of public names: type checkers read these imports, and at run time
    # __getattr__ reads this block to import each name from its module on first use.
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
    from .detector.probes.base import Leak as Leak
    from .errors import (
        ResourceGuardWarning as ResourceGuardWarning,
        ResourceLeakError as ResourceLeakError,
        ResourceLeakWarning as ResourceLeakWarning,
    )

__version__ = "0.1.0"


def _skip_assertion_rewriting() -> None:
    """pytest rewrites the asserts of every module of a plugin's distribution, which sends
    each import of ours through its import hook (a second path search, its own cache file):
    ~110 M instructions of every run's start-up for an installed plugin, more than the plugin's
    own. Our asserts are invariants that never fail in a user's run; they need no rewriting.
    So this package is taken off the hook's list as soon as it is imported: the modules after
    this one load the usual way. Through private attributes, checked: if pytest changes them,
    the modules are rewritten as before, only slower (tests/plugin/test_startup.py).
    PYTEST_DONT_REWRITE in this module's docstring keeps a later session that marks the package
    again (pytester's in-process runs) from warning that it was imported before rewriting."""
    for finder in sys.meta_path:
        if type(finder).__name__ != "AssertionRewritingHook":
            continue
        marked = getattr(finder, "_must_rewrite", None)
        cache = getattr(finder, "_marked_for_rewrite_cache", None)
        if isinstance(marked, set) and isinstance(cache, dict) and __name__ in marked:
            marked.discard(__name__)
            cache.clear()


_skip_assertion_rewriting()


@functools.cache
def _module_of() -> dict[str, str]:
    """Name -> module, read from the ``TYPE_CHECKING`` imports above on first use, so that
    ``import pytest_resources`` imports no component (and not pytest)."""
    import ast

    with open(__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    table = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.name: f"{__name__}.{node.module}"
        for node in table.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return ["__version__", *_module_of()]
    module = _module_of().get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(["__version__", *_module_of()])
