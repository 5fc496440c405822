"""gearman.gevent: python-gearman's three classes, cooperative under gevent.

``GearmanClient``, ``GearmanWorker`` and ``GearmanAdminClient`` are the
blocking binding's classes, API and semantics exactly, on gevent's own
sockets: they cooperate with other greenlets with or without
``gevent.monkey.patch_all()``.  One client may be shared by any number of
greenlets; each ``submit_job`` waits only for its own request.  A worker
runs up to ``max_jobs`` jobs at once, each in its own greenlet, and asks
for a job only when it has room.  ``gevent.Timeout`` and ``poll_timeout``
both bound every wait; a greenlet timed out or killed mid-wait leaves the
client usable and every other greenlet's request untouched.
"""

from __future__ import annotations

from typing import ClassVar

from ._gevent import GeventRuntime
from ._runtime import RuntimeFactory
from .admin_client import GearmanAdminClient as _SyncAdminClient
from .client import GearmanClient as _SyncClient
from .job import GearmanJob, GearmanJobRequest
from .worker import GearmanWorker as _SyncWorker

__all__ = [
    "GearmanAdminClient",
    "GearmanClient",
    "GearmanJob",
    "GearmanJobRequest",
    "GearmanWorker",
    "GeventRuntime",
]


class GearmanClient(_SyncClient):
    """:class:`gearman.GearmanClient` on gevent, shareable by many greenlets."""

    runtime_factory: ClassVar[RuntimeFactory] = GeventRuntime


class GearmanWorker(_SyncWorker):
    """:class:`gearman.GearmanWorker` on gevent, running up to ``max_jobs`` jobs at once."""

    runtime_factory: ClassVar[RuntimeFactory] = GeventRuntime


class GearmanAdminClient(_SyncAdminClient):
    """:class:`gearman.GearmanAdminClient` on gevent."""

    runtime_factory: ClassVar[RuntimeFactory] = GeventRuntime
