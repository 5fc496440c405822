"""gearman.asyncio: python-gearman's three classes for asyncio, on the same core and kernel.

The async API of :mod:`gearman.trio` (same methods, ``await``, ``async
with``, ``max_jobs``), on asyncio's streams; standard library only, and any
asyncio event loop (uvloop included)::

    async with gearman.asyncio.GearmanClient(["localhost:4730"]) as client:
        request = await client.submit_job("reverse", b"Hello World!")

Any number of tasks (``asyncio.gather``) may share one client.  Timeouts
come from ``poll_timeout`` and from cancellation alike
(``asyncio.wait_for``, ``asyncio.timeout``); a cancelled wait leaves the
connection and every other task's request untouched.  Use one object
within one event loop.  ``open_stream`` (a coroutine function of a
:class:`gearman_proto.ServerAddress` returning ``(StreamReader,
StreamWriter)``) replaces TCP, for TLS or other transports.
"""

from __future__ import annotations

from typing import ClassVar

from ._async_admin import AsyncGearmanAdminClient
from ._async_client import AsyncGearmanClient
from ._async_worker import AsyncGearmanWorker
from ._asyncio import AsyncioRuntime, OpenStream, open_tcp_stream
from ._runtime import AsyncRuntimeFactory
from .job import GearmanJob, GearmanJobRequest

__all__ = [
    "AsyncioRuntime",
    "GearmanAdminClient",
    "GearmanClient",
    "GearmanJob",
    "GearmanJobRequest",
    "GearmanWorker",
    "OpenStream",
    "open_tcp_stream",
]


class GearmanClient(AsyncGearmanClient):
    """:class:`gearman.GearmanClient` for asyncio (see the module's docstring)."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = AsyncioRuntime


class GearmanWorker(AsyncGearmanWorker):
    """:class:`gearman.GearmanWorker` for asyncio, running up to ``max_jobs`` jobs at once."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = AsyncioRuntime


class GearmanAdminClient(AsyncGearmanAdminClient):
    """:class:`gearman.GearmanAdminClient` for asyncio."""

    runtime_factory: ClassVar[AsyncRuntimeFactory] = AsyncioRuntime
