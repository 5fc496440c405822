"""gearman.trio: python-gearman's three classes for trio, on the same core and kernel.

``GearmanClient``, ``GearmanWorker`` and ``GearmanAdminClient`` have the
blocking binding's methods, arguments, request objects and errors, with
``await`` wherever a call waits and ``async with`` to close them::

    async with gearman.trio.GearmanClient(["localhost:4730"]) as client:
        request = await client.submit_job("reverse", b"Hello World!")

Any number of tasks may share one client.  A worker runs up to
``max_jobs`` jobs at once, each in a task of the nursery its ``work()``
opens; task functions may be plain or ``async``.  Timeouts come from
``poll_timeout`` and from the caller's cancel scopes alike; a cancelled
wait leaves the connection and every other task's request untouched.
Links are trio system tasks, so a client needs no nursery of yours; use one
object within one ``trio.run``.  ``open_stream`` (a coroutine function of
a :class:`gearman_proto.ServerAddress` returning any ``trio.abc.Stream``)
replaces TCP, for TLS or ``trio.testing.memory_stream_pair``.
"""

from __future__ import annotations

from typing import ClassVar

from ._async_admin import AsyncGearmanAdminClient
from ._async_client import AsyncGearmanClient
from ._async_worker import AsyncGearmanWorker
from ._runtime import AsyncRuntimeFactory
from ._trio import OpenStream, TrioRuntime, open_tcp_stream
from .job import GearmanJob, GearmanJobRequest

__all__ = [
    "GearmanAdminClient",
    "GearmanClient",
    "GearmanJob",
    "GearmanJobRequest",
    "GearmanWorker",
    "OpenStream",
    "TrioRuntime",
    "open_tcp_stream",
]


class GearmanClient(AsyncGearmanClient):
    """:class:`gearman.GearmanClient` for trio (see the module's docstring)."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = TrioRuntime


class GearmanWorker(AsyncGearmanWorker):
    """:class:`gearman.GearmanWorker` for trio, running up to ``max_jobs`` jobs at once."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = TrioRuntime


class GearmanAdminClient(AsyncGearmanAdminClient):
    """:class:`gearman.GearmanAdminClient` for trio."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = TrioRuntime
