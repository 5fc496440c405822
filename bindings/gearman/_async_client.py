"""The async :class:`AsyncGearmanClient`: the sync client's API with ``await``.

The same methods, arguments, :class:`GearmanJobRequest` objects, errors and
``data_encoder`` as :class:`gearman.GearmanClient`; every call that waits is
a coroutine.  Decisions are the core's (:class:`gearman_proto.ClientSession`),
shapes the kernel's (:mod:`gearman._client_kernel`); this module holds the
methods and their waits on an async runtime, which a runtime's module
(``gearman.trio``, ``gearman.asyncio``) chooses.  Any number of tasks may
share one client: requests are multiplexed over one connection per server
and every answer reaches the task that asked.  Cancelling a task (a cancel
scope, ``asyncio.timeout``) ends its wait only; its requests stay known to
the session, and nothing else is disturbed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import gearman_proto as proto

from . import errors
from ._async import connect_first, connect_wanted, deadline_after, wait_connecting
from ._client_kernel import ClientKernel, Requests, all_settled, check_many
from ._common import DataEncoder, NoopEncoder
from ._runtime import AsyncRuntimeFactory
from ._shapes import HandleStatus, UniqueStatus
from .connection import GearmanConnection
from .connection_manager import AsyncGearmanConnectionManager
from .constants import MAX_UPDATE_BYTES, PRIORITY_NONE, RANDOM_UNIQUE_BYTES
from .job import GearmanJob, GearmanJobRequest, UpdateCallback, UpdatePolicy

if TYPE_CHECKING:  # the type only: the runtime does the TLS
    import ssl

__all__ = ["AsyncGearmanClient"]

logger = logging.getLogger("gearman.client")

_ACCEPTED = proto.Goal.ACCEPTED
_FINISHED = proto.Goal.FINISHED

#: seconds :meth:`AsyncGearmanClient.aclose` lets queued bytes go out.
CLOSE_GRACE = 1.0


class AsyncGearmanClient(AsyncGearmanConnectionManager):
    """Submits jobs and follows them, from any number of tasks at once.

    Arguments as :class:`gearman.GearmanClient` (``ssl_context`` and
    ``server_hostname`` included), plus *open_stream*: how a link's stream
    is opened (the runtime's default: TCP; not with TLS).  Use it with
    ``async with``, or call :meth:`aclose`.
    """

    _misuse = errors.InvalidClientState

    data_encoder: type[DataEncoder] = NoopEncoder
    job_class = GearmanJob
    job_request_class = GearmanJobRequest
    #: the async runtime; set by each runtime's module.
    runtime_factory: ClassVar[AsyncRuntimeFactory]

    def __init__(
        self,
        host_list: Any = None,
        random_unique_bytes: int = RANDOM_UNIQUE_BYTES,
        *,
        connect_timeout: float | None = 5.0,
        submit_timeout: float | None = None,
        status_timeout: float | None = None,
        exceptions: bool = False,
        client_id: str | bytes | None = None,
        keepalive: bool = True,
        max_update_bytes: int | None = MAX_UPDATE_BYTES,
        on_update: UpdateCallback | None = None,
        open_stream: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(
            host_list,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            open_stream=open_stream,
        )
        self.random_unique_bytes = random_unique_bytes
        self.connect_timeout = connect_timeout
        self.submit_timeout = submit_timeout
        self.status_timeout = status_timeout
        self.keepalive = keepalive
        self._kernel = ClientKernel(
            self.servers,
            job_class=self.job_class,
            job_request_class=self.job_request_class,
            random_unique_bytes=random_unique_bytes,
            exceptions=exceptions,
            client_id=client_id,
            connection_for=self._connection_for,
            updates=UpdatePolicy(max_update_bytes, on_update),
        )
        self._session = self._kernel.session
        self._io = type(self).runtime_factory(
            self._kernel.receive,
            keepalive=keepalive,
            connect_timeout=connect_timeout,
            open_stream=open_stream,
            tls=self._tls,
        )
        self._kernel.now = self._io.now

    # --------------------------------------------------------- submission

    async def submit_job(
        self,
        task: str | bytes,
        data: Any,
        unique: str | bytes | None = None,
        priority: str | None = PRIORITY_NONE,
        background: bool = False,
        wait_until_complete: bool = True,
        max_retries: int = 0,
        poll_timeout: float | None = None,
        *,
        epoch: int | None = None,
        reducer: str | bytes | None = None,
    ) -> GearmanJobRequest:
        """Submit one job; see :meth:`gearman.GearmanClient.submit_job`."""
        request = self._kernel.build(
            task, data, unique, priority, background, max_retries, epoch, reducer
        )
        await self._submit([request], wait_until_complete, poll_timeout)
        return request

    async def submit_multiple_jobs(
        self,
        jobs_to_submit: Iterable[dict[str, Any]],
        background: bool = False,
        wait_until_complete: bool = True,
        max_retries: int = 0,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit several jobs given as dicts; see
        :meth:`gearman.GearmanClient.submit_multiple_jobs`."""
        requests = [
            self._kernel.from_dict(job_info, background, max_retries)
            for job_info in check_many(jobs_to_submit)
        ]
        return await self._submit(requests, wait_until_complete, poll_timeout)

    async def submit_multiple_requests(
        self,
        job_requests: Requests,
        wait_until_complete: bool = True,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit prepared requests; all submissions to one server leave in one write."""
        return await self._submit(
            check_many(job_requests), wait_until_complete, poll_timeout, resume=True
        )

    async def _submit(
        self,
        requests: list[GearmanJobRequest],
        wait_until_complete: bool,
        poll_timeout: float | None,
        resume: bool = False,
    ) -> list[GearmanJobRequest]:
        io = self._io
        deadline = deadline_after(io, poll_timeout)
        self._kernel.submit(requests, self.data_encoder, resume=resume)
        waits = proto.submission_waits(io.now(), deadline, self.submit_timeout, wait_until_complete)
        for goal, until in waits:
            if not await self._wait(all_settled(requests, goal), until, requests):
                break
        self._kernel.end_wait(requests, waits[-1][0])
        return requests

    async def wait_until_jobs_accepted(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request is created or refused; see ``timed_out``."""
        requests = check_many(job_requests)
        await self._wait(
            all_settled(requests, _ACCEPTED), deadline_after(self._io, poll_timeout), requests
        )
        self._kernel.end_wait(requests, _ACCEPTED)
        return requests

    async def wait_until_jobs_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request has ended (or is lost); see ``timed_out``."""
        requests = check_many(job_requests)
        await self._wait(
            all_settled(requests, _FINISHED), deadline_after(self._io, poll_timeout), requests
        )
        self._kernel.end_wait(requests, _FINISHED)
        return requests

    async def wait_until_any_job_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until at least one request has ended; return those that have."""
        requests = check_many(job_requests)
        await self._wait(
            lambda: any(r.finished for r in requests),
            deadline_after(self._io, poll_timeout),
            requests,
        )
        return [r for r in requests if r.finished]

    async def establish_request_connection(
        self, current_request: GearmanJobRequest
    ) -> GearmanConnection:
        """See :meth:`gearman.GearmanClient.establish_request_connection`."""
        io = self._io
        server = await connect_first(io, self._session, deadline_after(io, self.connect_timeout))
        return self._connection_for(server)

    async def send_job_request(self, current_request: GearmanJobRequest) -> GearmanJobRequest:
        """Send one request (connecting if needed) without waiting for an answer."""
        self._kernel.submit([current_request], self.data_encoder)
        await connect_wanted(self._io, self._session, None, self._kernel.connect_errors)
        self._io.flush()
        self._kernel.raise_undelivered(proto.undelivered([current_request]))
        return current_request

    def _create_request_from_dictionary(
        self, job_info: dict[str, Any], background: bool = False, max_retries: int = 0
    ) -> GearmanJobRequest:
        """A request from a job dict, not sent."""
        return self._kernel.from_dict(job_info, background, max_retries)

    # -------------------------------------------------------------- status

    async def get_job_status(
        self, current_request: GearmanJobRequest, poll_timeout: float | None = None
    ) -> GearmanJobRequest:
        """Refresh ``status`` of a created request (GET_STATUS on its server)."""
        return (await self.get_job_statuses([current_request], poll_timeout))[0]

    async def get_job_statuses(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """:meth:`get_job_status` for several requests at once."""
        requests = check_many(job_requests)
        queries = self._kernel.query_requests(requests)
        await self._wait_queries(queries, poll_timeout)
        self._kernel.end_queries(requests, queries)
        return requests

    wait_until_job_statuses_received = get_job_statuses

    async def get_status_by_handle(
        self, handle: str | bytes, host: Any = None, poll_timeout: float | None = None
    ) -> HandleStatus:
        """The status of any job by handle; see
        :meth:`gearman.GearmanClient.get_status_by_handle`."""
        query = self._kernel.query_handle(handle, host)
        await self._wait_queries([query], poll_timeout)
        return self._kernel.handle_status(query)

    async def get_status_by_unique(
        self, unique: str | bytes, poll_timeout: float | None = None
    ) -> UniqueStatus:
        """The status of any job by unique id, asked of every reachable server."""
        query = self._kernel.query_unique(unique)
        await self._wait_queries([query], poll_timeout)
        return self._kernel.unique_status(query, unique)

    # ------------------------------------------------------------- plumbing

    async def shutdown(self) -> None:
        """Close every connection; the client can still be used afterwards."""
        await self._io.aclose(0)

    async def aclose(self) -> None:
        """Let queued bytes go out (briefly), then close every connection."""
        await self._io.aclose(CLOSE_GRACE)

    async def _wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object]
    ) -> bool:
        return await wait_connecting(
            self._io, self._session, done, deadline, watch, self._kernel.connect_errors
        )

    async def _wait_queries(
        self, queries: list[proto.StatusQuery], poll_timeout: float | None
    ) -> None:
        timeout = self.status_timeout if poll_timeout is None else poll_timeout
        await self._wait(
            lambda: all(query.done for query in queries), deadline_after(self._io, timeout), queries
        )

    async def __aenter__(self) -> AsyncGearmanClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
