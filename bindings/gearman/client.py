"""The sync :class:`GearmanClient`: python-gearman 2.0.2's client on Python 3.

Every protocol decision (which server a request goes to, which reply belongs
to which request, when a request is resent, what a dead connection means)
is taken by :class:`gearman_proto.ClientSession`; every python-gearman shape
by the kernel (:mod:`gearman._client_kernel`).  This module holds the
methods and their waits, on a runtime (blocking sockets by default).  One
client may be shared by several threads: requests are multiplexed over one
connection per server and every answer reaches the caller that asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import gearman_proto as proto

from . import errors
from ._blocking import BlockingRuntime
from ._client_kernel import ClientKernel, Requests, all_settled, check_many
from ._common import DataEncoder, NoopEncoder
from ._runtime import RuntimeFactory
from ._shapes import HandleStatus, UniqueStatus
from ._sync import connect, connect_first, connect_wanted, deadline_after, wait_connecting
from .connection import GearmanConnection
from .connection_manager import GearmanConnectionManager
from .constants import MAX_UPDATE_BYTES, PRIORITY_NONE, RANDOM_UNIQUE_BYTES

# python-gearman 2.0.2 had these in this module, and code imports them from here.
from .errors import (
    ConnectionError,  # noqa: A004  (python-gearman's name)
    ExceededConnectionAttempts,
    ServerUnavailable,
)
from .job import GearmanJob, GearmanJobRequest, UpdateCallback, UpdatePolicy

if TYPE_CHECKING:  # the type only: the runtimes do the TLS
    import ssl

__all__ = [
    "RANDOM_UNIQUE_BYTES",
    "ConnectionError",
    "ExceededConnectionAttempts",
    "GearmanClient",
    "ServerUnavailable",
]

logger = logging.getLogger("gearman.client")


_ACCEPTED = proto.Goal.ACCEPTED
_FINISHED = proto.Goal.FINISHED


class GearmanClient(GearmanConnectionManager):
    """Submits jobs to one or more gearmand servers and follows them.

    Args:
        host_list: servers, as ``"host"``, ``"host:port"``, ``"[::1]:4730"``
            or ``(host, port)``; jobs are spread over them in turn, and a
            server that fails is skipped with back-off.
        random_unique_bytes: size of the random unique id given to jobs
            submitted without one.
        connect_timeout: seconds allowed for each TCP connect.
        submit_timeout: seconds a submission may wait for JOB_CREATED
            (None: only ``poll_timeout`` limits it).
        status_timeout: default seconds for status queries (None: forever).
        exceptions: ask servers to forward WORK_EXCEPTION (OPTION_REQ
            ``exceptions``); without it a worker exception reaches the
            client as a failure without data.
        client_id: a SET_CLIENT_ID label for this client's connections.
        keepalive: enable TCP keepalive on every connection.
        max_update_bytes: bytes a request keeps of its WORK_DATA,
            WORK_WARNING and WORK_STATUS updates, each counting its payload
            plus 128 (16 MiB by default); older updates are dropped past it
            and counted in ``request.dropped_updates``, so a job that streams without end
            cannot exhaust memory (None: keep everything).
        on_update: ``on_update(request, kind, value)`` for every update
            (``kind`` is ``"data"`` or ``"warning"``, ``value`` decoded) as it
            arrives, instead of keeping it; it runs in the thread, greenlet
            or task that reads, so keep it short.
        ssl_context: TLS on every connection (an ``ssl.SSLContext``): the
            server's certificate and host name are checked as the context
            says, a client certificate comes from its ``load_cert_chain``;
            a failed handshake is never retried in plaintext.
        server_hostname: the name certificates are checked against and sent
            as SNI (default: each server's host), e.g. to reach a server by
            IP address.

    A host list entry may also be python-gearman master's dict with
    ``keyfile``, ``certfile`` and ``ca_certs``: that server is reached over
    TLS with a context built from those files.
    """

    _misuse = errors.InvalidClientState

    data_encoder: type[DataEncoder] = NoopEncoder
    job_class = GearmanJob
    job_request_class = GearmanJobRequest
    #: the I/O runtime (blocking sockets; ``gearman.gevent`` swaps in its own).
    runtime_factory: ClassVar[RuntimeFactory] = BlockingRuntime

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
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(host_list, ssl_context=ssl_context, server_hostname=server_hostname)
        self.random_unique_bytes = random_unique_bytes
        #: python-gearman's per-request server rotation.  The core rotates the
        #: servers here, so this stays empty; code that pops from it still works.
        self.request_to_rotating_connection_queue: dict[GearmanJobRequest, Any] = {}
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
            shared=True,
            keepalive=keepalive,
            connect_timeout=connect_timeout,
            tls=self._tls,
        )
        self._kernel.now = self._io.now

    # --------------------------------------------------------- submission

    def submit_job(
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
        """Submit one job; see :meth:`submit_multiple_jobs` for the waiting rules.

        *epoch* (Unix time, whole seconds) makes it a delayed background job
        (SUBMIT_JOB_EPOCH); *reducer* makes it a map/reduce job
        (SUBMIT_REDUCE_JOB, foreground or background).
        """
        request = self._kernel.build(
            task, data, unique, priority, background, max_retries, epoch, reducer
        )
        with self._io.lock:
            self._submit([request], wait_until_complete, poll_timeout)
        return request

    def submit_multiple_jobs(
        self,
        jobs_to_submit: Iterable[dict[str, Any]],
        background: bool = False,
        wait_until_complete: bool = True,
        max_retries: int = 0,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit several jobs, given as dicts with ``task``, ``data`` and optional
        ``unique``, ``priority``, ``epoch`` and ``reducer``.

        Always waits until each job is accepted (JOB_CREATED) or refused; with
        *wait_until_complete* (and not *background*) also until each ends.
        *poll_timeout* is one budget in seconds for the whole call (None:
        no limit), connects and writes included; requests still waiting
        when it runs out have ``timed_out`` set.  *max_retries* extra sends
        are allowed for a request whose connection dies before JOB_CREATED;
        a request created and then cut off is never resent (``lost`` is set
        instead).
        """
        requests = [
            self._kernel.from_dict(job_info, background, max_retries)
            for job_info in check_many(jobs_to_submit)
        ]
        with self._io.lock:
            return self._submit(requests, wait_until_complete, poll_timeout)

    def submit_multiple_requests(
        self,
        job_requests: Requests,
        wait_until_complete: bool = True,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit prepared :class:`GearmanJobRequest` objects; waits as
        :meth:`submit_multiple_jobs` does.  All submissions to one server
        leave in one write.

        Requests that were never sent, or came back ``UNKNOWN`` undelivered,
        are sent; those still in flight (a wait on them timed out) or
        finished are only waited for, so a batch can be passed again after a
        timeout, as python-gearman's documentation does.  A request ``lost``
        after JOB_CREATED is not sent again (its job may have run): call
        :meth:`GearmanJobRequest.reset` first to run it anew.
        """
        requests = check_many(job_requests)
        with self._io.lock:
            return self._submit(requests, wait_until_complete, poll_timeout, resume=True)

    def _submit(
        self,
        requests: list[GearmanJobRequest],
        wait_until_complete: bool,
        poll_timeout: float | None,
        resume: bool = False,
    ) -> list[GearmanJobRequest]:
        io = self._io
        deadline = deadline_after(io, poll_timeout)
        # Notice connections the server closed while we were idle (a
        # restart), so the jobs go to a fresh connection instead.
        io.refresh()
        self._kernel.submit(requests, self.data_encoder, resume=resume)
        waits = proto.submission_waits(io.now(), deadline, self.submit_timeout, wait_until_complete)
        for goal, until in waits:
            if not self._wait(all_settled(requests, goal), until, requests):
                break
        # Not even accepted in time: not complete either, whatever
        # python-gearman used to report.
        self._kernel.end_wait(requests, waits[-1][0])
        return requests

    def wait_until_jobs_accepted(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request is created or refused; see ``timed_out``."""
        requests = check_many(job_requests)
        with self._io.lock:
            self._wait(
            all_settled(requests, _ACCEPTED), deadline_after(self._io, poll_timeout), requests
        )
            self._kernel.end_wait(requests, _ACCEPTED)
        return requests

    def wait_until_jobs_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request has ended (or is lost); see ``timed_out``."""
        requests = check_many(job_requests)
        with self._io.lock:
            self._wait(
            all_settled(requests, _FINISHED), deadline_after(self._io, poll_timeout), requests
        )
            self._kernel.end_wait(requests, _FINISHED)
        return requests

    def wait_until_any_job_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until at least one request has ended; return those that have.

        An empty list means *poll_timeout* ran out first.
        """
        requests = check_many(job_requests)
        with self._io.lock:
            self._wait(
                lambda: any(r.finished for r in requests),
                deadline_after(self._io, poll_timeout),
                requests,
            )
        return [r for r in requests if r.finished]

    def establish_request_connection(
        self, current_request: GearmanJobRequest
    ) -> GearmanConnection:
        """The connection *current_request* would go out on: the first server in
        rotation that is connected or connects now, skipping those that fail.

        Raises:
            ServerUnavailable: no server of the host list can be reached.
        """
        io = self._io
        with io.lock:
            server = connect_first(io, self._session, deadline_after(io, self.connect_timeout))
        return self._connection_for(server)

    def send_job_request(self, current_request: GearmanJobRequest) -> GearmanJobRequest:
        """Send one request to the next available server (connecting if needed),
        without waiting for an answer.

        Raises:
            ServerUnavailable: no server of the host list can be reached.
            ExceededConnectionAttempts: it was already sent ``max_retries + 1`` times.
        """
        with self._io.lock:
            self._kernel.submit([current_request], self.data_encoder)
            connect_wanted(self._io, self._session, None, self._kernel.connect_errors)
            self._io.flush()
            self._kernel.raise_undelivered(proto.undelivered([current_request]))
        return current_request

    def _create_request_from_dictionary(
        self, job_info: dict[str, Any], background: bool = False, max_retries: int = 0
    ) -> GearmanJobRequest:
        """A :class:`GearmanJobRequest` from a dict with ``task``, ``data`` and
        optional ``unique`` (default: a random one) and ``priority``; not sent."""
        return self._kernel.from_dict(job_info, background, max_retries)

    # -------------------------------------------------------------- status

    def get_job_status(
        self, current_request: GearmanJobRequest, poll_timeout: float | None = None
    ) -> GearmanJobRequest:
        """Refresh ``status`` of a created request (GET_STATUS on its server).

        Works after the job finished (``known`` is then False) and for
        requests created by another client object.  ``timed_out`` tells
        whether the reply came in time.
        """
        return self.get_job_statuses([current_request], poll_timeout)[0]

    def get_job_statuses(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """:meth:`get_job_status` for several requests at once."""
        requests = check_many(job_requests)
        with self._io.lock:
            queries = self._kernel.query_requests(requests)
            self._wait_queries(queries, poll_timeout)
            self._kernel.end_queries(requests, queries)
        return requests

    wait_until_job_statuses_received = get_job_statuses

    def get_status_by_handle(
        self,
        handle: str | bytes,
        host: Any = None,
        poll_timeout: float | None = None,
    ) -> HandleStatus:
        """The status of any job by handle, on *host* (default: the first server).

        Returns ``{'handle', 'known', 'running', 'numerator', 'denominator',
        'timed_out'}``.
        """
        with self._io.lock:
            query = self._kernel.query_handle(handle, host)
            self._wait_queries([query], poll_timeout)
            return self._kernel.handle_status(query)

    def get_status_by_unique(
        self, unique: str | bytes, poll_timeout: float | None = None
    ) -> UniqueStatus:
        """The status of any job by unique id, asked of every reachable server.

        Returns ``{'unique', 'known', 'running', 'numerator', 'denominator',
        'client_count', 'timed_out'}`` (GET_STATUS_UNIQUE).
        """
        with self._io.lock:
            query = self._kernel.query_unique(unique)
            self._wait_queries([query], poll_timeout)
            return self._kernel.unique_status(query, unique)

    # ------------------------------------------------------------- plumbing

    def shutdown(self) -> None:
        """Close every connection; the client can still be used afterwards."""
        with self._io.lock:
            self._io.close_all()

    def _wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object]
    ) -> bool:
        return wait_connecting(
            self._io, self._session, done, deadline, watch, self._kernel.connect_errors
        )

    # python-gearman's poll loop (gearman.connection_manager)
    def _connect_server(self, server: proto.ServerAddress, deadline: float | None) -> None:
        connect(self._io, self._session, server, deadline, self._kernel.connect_errors)

    def _core_connection(self, server: proto.ServerAddress) -> proto.ClientConnection | None:
        return self._session.connections.get(server)

    def _poll(self, done: Callable[[], bool], deadline: float | None) -> None:
        with self._io.lock:
            self._wait(done, deadline, ())

    def _wait_queries(self, queries: list[proto.StatusQuery], poll_timeout: float | None) -> None:
        timeout = self.status_timeout if poll_timeout is None else poll_timeout
        self._wait(
            lambda: all(query.done for query in queries), deadline_after(self._io, timeout), queries
        )

    def __enter__(self) -> GearmanClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

