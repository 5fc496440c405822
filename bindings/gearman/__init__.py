"""gearman: python-gearman 2.0.2's API on Python 3, on the gearman_proto core.

``GearmanClient``, ``GearmanWorker`` and ``GearmanAdminClient`` keep the
names, signatures and module paths of python-gearman 2.0.2 (plus what its
Python 3 forks added), with blocking sockets.  ``gearman.gevent`` has the
same classes cooperative under gevent; ``gearman.trio`` and
``gearman.asyncio`` have them with ``await`` (import those modules
explicitly: each needs its own event loop library).
"""

from __future__ import annotations

import logging

from .admin_client import GearmanAdminClient
from .client import GearmanClient
from .connection_manager import DataEncoder, NoopEncoder
from .constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
)
from .job import GearmanJob, GearmanJobRequest
from .worker import GearmanWorker

__version__ = "2.0.2"

__all__ = [
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
    "DataEncoder",
    "GearmanAdminClient",
    "GearmanClient",
    "GearmanJob",
    "GearmanJobRequest",
    "GearmanWorker",
    "NoopEncoder",
    "NullHandler",
    "gearman_root_logger",
]

NullHandler = logging.NullHandler
#: the package's root logger, silent unless the application configures logging.
gearman_root_logger = logging.getLogger("gearman")
gearman_root_logger.addHandler(NullHandler())
