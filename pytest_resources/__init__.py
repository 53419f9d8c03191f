"""pytest-resource-guard: find the threads, tasks, descriptors, processes and global state
your tests leak."""

from __future__ import annotations

from .errors import ResourceGuardWarning, ResourceLeakError, ResourceLeakWarning
from .probes.base import Leak

__version__ = "0.1.0"

__all__ = [
    "Leak",
    "ResourceGuardWarning",
    "ResourceLeakError",
    "ResourceLeakWarning",
    "__version__",
]
