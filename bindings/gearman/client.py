"""The blocking :class:`GearmanClient`: python-gearman 2.0.2's client on Python 3.

Every protocol decision (which reply belongs to which request, when a
request may be resent, what a dead connection means) is taken by
:class:`gearman_proto.ClientSession`; this module connects sockets, writes,
reads and waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import gearman_proto as proto

from . import errors
from ._blocking import Link, Pump, deadline_after, earliest, open_socket
from ._common import (
    DataEncoder,
    NoopEncoder,
    map_error,
    name_bytes,
    parse_host_list,
    random_unique,
    text,
)
from .connection_manager import GearmanConnectionManager
from .constants import PRIORITY_NONE
from .job import GearmanJob, GearmanJobRequest

__all__ = ["RANDOM_UNIQUE_BYTES", "GearmanClient"]

logger = logging.getLogger("gearman.client")

RANDOM_UNIQUE_BYTES = 16
#: seconds without looking at the sockets after which a submission first
#: checks them for connections the server closed meanwhile.  A close within
#: this time of the last look races with the write either way.
IDLE_CHECK_AFTER = 0.001

Requests = Sequence[GearmanJobRequest] | set[GearmanJobRequest]


T = TypeVar("T")


def _check_many(items: Iterable[T]) -> list[T]:
    """python-gearman's guard: several jobs come as a list, tuple or set."""
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise TypeError(f"expected a list, tuple or set, got {type(items).__name__}")
    return list(items)


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
    """

    data_encoder: type[DataEncoder] = NoopEncoder
    job_class = GearmanJob
    job_request_class = GearmanJobRequest

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
    ) -> None:
        super().__init__(host_list)
        self.random_unique_bytes = random_unique_bytes
        self.connect_timeout = connect_timeout
        self.submit_timeout = submit_timeout
        self.status_timeout = status_timeout
        self.keepalive = keepalive
        self._session = proto.ClientSession(
            self.servers,
            exceptions=exceptions,
            client_id=None if client_id is None else name_bytes(client_id, "client_id"),
        )
        self._pump = Pump(self._on_event)
        self._losses = 0  # connections lost so far: a wait then looks for requests to resend

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
        job = self.job_class(
            None, None, task, unique or random_unique(self.random_unique_bytes), data
        )
        request = self.job_request_class(
            job,
            initial_priority=priority,
            background=background,
            max_attempts=max_retries + 1,
            epoch=epoch,
            reducer=reducer,
        )
        self.submit_multiple_requests(
            [request], wait_until_complete=wait_until_complete, poll_timeout=poll_timeout
        )
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
        no limit); requests still waiting when it runs out have ``timed_out``
        set.  *max_retries* extra sends are allowed for a request whose
        connection dies before JOB_CREATED; a request created and then cut
        off is never resent (``lost`` is set instead).
        """
        requests = [
            self._create_request_from_dictionary(job_info, background, max_retries)
            for job_info in _check_many(jobs_to_submit)
        ]
        return self.submit_multiple_requests(
            requests, wait_until_complete=wait_until_complete, poll_timeout=poll_timeout
        )

    def submit_multiple_requests(
        self,
        job_requests: Requests,
        wait_until_complete: bool = True,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit prepared :class:`GearmanJobRequest` objects; waits as
        :meth:`submit_multiple_jobs` does.  All submissions to one server
        leave in one write."""
        requests = _check_many(job_requests)
        deadline = deadline_after(poll_timeout)
        # Notice connections the server closed while we were idle (a
        # restart), so the jobs go to a fresh connection instead.  Straight
        # after a wait there was no idle time: skip the system call.
        if self._pump.idle_for(IDLE_CHECK_AFTER):
            self._pump.run_once(0)
        losses = self._losses
        for request in requests:
            request.timed_out = False
            self.send_job_request(request, flush=False)
        self._pump.flush()
        accepted = self._wait_accepted(requests, deadline, losses)
        if wait_until_complete and accepted:
            # Lost connections were looked at by the wait for acceptance.
            self._wait_complete(requests, deadline, self._losses)
        elif wait_until_complete:
            # The deadline ran out before every job was even created: those
            # jobs are not complete, whatever python-gearman used to report.
            for request in requests:
                request.timed_out = not request.complete
        return requests

    def wait_until_jobs_accepted(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request is created or refused; see ``timed_out``."""
        requests = _check_many(job_requests)
        self._wait_accepted(requests, deadline_after(poll_timeout))
        return requests

    def wait_until_jobs_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until each request has ended (or is lost); see ``timed_out``."""
        requests = _check_many(job_requests)
        self._wait_complete(requests, deadline_after(poll_timeout))
        return requests

    def wait_until_any_job_completed(
        self, job_requests: Requests, poll_timeout: float | None = None
    ) -> list[GearmanJobRequest]:
        """Wait until at least one request has ended; return those that have.

        An empty list means *poll_timeout* ran out first.
        """
        requests = _check_many(job_requests)
        self._wait(
            requests,
            deadline_after(poll_timeout),
            lambda: any(_finished(r) for r in requests),
        )
        return [r for r in requests if _finished(r)]

    def send_job_request(
        self, current_request: GearmanJobRequest, *, flush: bool = True
    ) -> GearmanJobRequest:
        """Send one request to the next available server (connecting if needed).

        Raises:
            ServerUnavailable: no server of the host list can be reached.
            ExceededConnectionAttempts: it was already sent ``max_retries + 1`` times.
        """
        current_request._prepare(self.data_encoder)
        for server in self._session.candidates(time.monotonic()):
            if self._connection_to(server) is None:
                continue
            try:
                self._session.submit(current_request, server)
            except proto.ProtocolError as error:
                raise map_error(error) from error
            current_request.gearman_job.connection = server
            if flush:
                self._pump.flush()
            return current_request
        raise errors.ServerUnavailable(f"no server of {self._hosts()} can be reached")

    def _create_request_from_dictionary(
        self, job_info: dict[str, Any], background: bool = False, max_retries: int = 0
    ) -> GearmanJobRequest:
        """A :class:`GearmanJobRequest` from a dict with ``task``, ``data`` and
        optional ``unique`` (default: a random one) and ``priority``; not sent."""
        unique = job_info.get("unique") or random_unique(self.random_unique_bytes)
        job = self.job_class(None, None, job_info["task"], unique, job_info["data"])
        return self.job_request_class(
            job,
            initial_priority=job_info.get("priority", PRIORITY_NONE),
            background=background,
            max_attempts=max_retries + 1,
            epoch=job_info.get("epoch"),
            reducer=job_info.get("reducer"),
        )

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
        requests = _check_many(job_requests)
        queries = []
        for request in requests:
            if request.server is None or request.handle is None:
                raise errors.InvalidClientState(f"{request!r} has no job handle yet")
            if self._connection_to(request.server) is None:
                raise errors.ServerUnavailable(f"cannot reach {request.server}")
            queries.append(self._session.query_status(request))
        self._wait_queries(queries, poll_timeout)
        for request, query in zip(requests, queries, strict=True):
            request.timed_out = not query.answered
        return requests

    wait_until_job_statuses_received = get_job_statuses

    def get_status_by_handle(
        self,
        handle: str | bytes,
        host: Any = None,
        poll_timeout: float | None = None,
    ) -> dict[str, Any]:
        """The status of any job by handle, on *host* (default: the first server).

        Returns ``{'handle', 'known', 'running', 'numerator', 'denominator',
        'timed_out'}``.
        """
        server = parse_host_list(host)[0] if host is not None else self.servers[0]
        if self._connection_to(server) is None:
            raise errors.ServerUnavailable(f"cannot reach {server}")
        query = self._session.query_handle(server, name_bytes(handle, "handle"))
        self._wait_queries([query], poll_timeout)
        return self._status_dict(query, handle=text(query.handle or b""))

    def get_status_by_unique(
        self, unique: str | bytes, poll_timeout: float | None = None
    ) -> dict[str, Any]:
        """The status of any job by unique id, asked of every reachable server.

        Returns ``{'unique', 'known', 'running', 'numerator', 'denominator',
        'client_count', 'timed_out'}`` (GET_STATUS_UNIQUE).
        """
        for server in self.servers:
            self._connection_to(server)
        if not self._pump.links:
            raise errors.ServerUnavailable(f"no server of {self._hosts()} can be reached")
        query = self._session.query_unique(name_bytes(unique, "unique"))
        self._wait_queries([query], poll_timeout)
        status = self._status_dict(query, unique=unique)
        status["client_count"] = query.client_count
        return status

    # ------------------------------------------------------------- plumbing

    def shutdown(self) -> None:
        """Close every connection; the client can still be used afterwards."""
        for server in list(self._pump.links):
            link = self._pump.links[server]
            self._pump.remove(link)
            self._session.connection_lost(server, time.monotonic())

    def _hosts(self) -> str:
        return ", ".join(str(server) for server in self.servers)

    def _connection_to(self, server: proto.ServerAddress) -> Link | None:
        link = self._pump.links.get(server)
        if link is not None:
            return link
        try:
            sock = open_socket(server, timeout=self.connect_timeout, keepalive=self.keepalive)
        except errors.ConnectionError as error:
            logger.warning("%s", error)
            self._session.connect_failed(server, time.monotonic())
            return None
        link = Link(server, sock, self._session.connection_made(server))
        self._pump.add(link)
        return link

    def _on_event(self, link: Link, event: proto.Event) -> None:
        if type(event) is proto.ConnectionClosed:
            self._losses += 1
        self._session.receive(link.server, event, time.monotonic())

    def _resubmit(self, requests: Iterable[GearmanJobRequest]) -> None:
        """Send again the requests a lost connection took before JOB_CREATED."""
        for request in requests:
            if request.retryable:
                if request.attempts >= request.max_attempts:
                    raise errors.ExceededConnectionAttempts(
                        f"{request!r} lost its connection {request.attempts} times "
                        "before the server accepted it"
                    )
                self.send_job_request(request, flush=False)
        self._pump.flush()

    def _wait(
        self,
        requests: Iterable[GearmanJobRequest],
        deadline: float | None,
        done: Callable[[], bool],
        losses: int = -1,
    ) -> bool:
        """Read until *done*; everything queued was written before the call.

        Requests that lost their connection are sent again first if a
        connection was lost since *losses* (``_losses`` when the caller
        sent them; the default -1 always looks).
        """
        while True:
            if losses != self._losses:
                losses = self._losses
                self._resubmit(requests)
            if done():
                return True
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            if not self._pump.links:
                raise errors.ServerUnavailable(f"lost every connection to {self._hosts()}")
            self._pump.run_once(timeout)

    def _wait_accepted(
        self, requests: list[GearmanJobRequest], deadline: float | None, losses: int = -1
    ) -> bool:
        submit_deadline = (
            deadline
            if self.submit_timeout is None
            else earliest(deadline, deadline_after(self.submit_timeout))
        )
        done = self._wait(requests, submit_deadline, _all_of(requests, _accepted), losses)
        for request in requests:
            request.timed_out = not _accepted(request) or request.lost
        return done

    def _wait_complete(
        self, requests: list[GearmanJobRequest], deadline: float | None, losses: int = -1
    ) -> bool:
        done = self._wait(requests, deadline, _all_of(requests, _finished), losses)
        for request in requests:
            request.timed_out = not request.complete
        return done

    def _wait_queries(self, queries: list[proto.StatusQuery], poll_timeout: float | None) -> None:
        timeout = self.status_timeout if poll_timeout is None else poll_timeout
        deadline = deadline_after(timeout)
        while True:
            self._pump.flush()
            if all(query.done for query in queries):
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            if not self._pump.links:
                return
            self._pump.run_once(remaining)

    @staticmethod
    def _status_dict(query: proto.StatusQuery, **key: Any) -> dict[str, Any]:
        return {
            **key,
            "known": query.known,
            "running": query.running,
            "numerator": query.numerator,
            "denominator": query.denominator,
            "timed_out": not query.answered,
        }

    def __enter__(self) -> GearmanClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _all_of(
    requests: list[GearmanJobRequest], test: Callable[[GearmanJobRequest], bool]
) -> Callable[[], bool]:
    """A check that every request passes *test*, for a wait to call after each read.

    *test* must stay true once true while the wait lasts (acceptance and
    completion do), so the requests already seen to pass are not looked at
    again: a wait for N pipelined jobs costs O(N) checks in all, not O(N)
    per read.
    """
    passed = 0

    def done() -> bool:
        nonlocal passed
        count = len(requests)
        while passed < count and test(requests[passed]):
            passed += 1
        return passed == count

    return done


def _accepted(request: GearmanJobRequest) -> bool:
    """Created, refused or lost: not waiting for JOB_CREATED, not to be resent."""
    return request.state is not _PENDING and not request.retryable


def _finished(request: GearmanJobRequest) -> bool:
    """Nothing more will happen to it (a finished request is never retryable)."""
    return request.finished


_PENDING = proto.JobState.PENDING
