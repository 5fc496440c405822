"""The client's kernel: everything python-gearman-shaped about a client, no I/O.

Owns: building :class:`GearmanJobRequest` objects from python-gearman's
arguments and dicts, the collection checks, submitting through
:class:`gearman_proto.ClientSession` with the one error map, the wait
conditions and their end (``timed_out``, the errors a wait raises), and the
status dictionaries.  Shared by the sync and the async facades; imports no
I/O library and never waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import gearman_proto as proto

from . import errors
from ._common import (
    DataEncoder,
    invalid_type,
    invalid_value,
    map_error,
    name_bytes,
    random_unique,
    text,
)
from ._runtime import Failures
from ._shapes import HandleStatus, QueryStatus, UniqueStatus
from .connection import server_of
from .constants import PRIORITY_NONE
from .job import GearmanJob, GearmanJobRequest, UpdatePolicy

__all__ = ["ClientKernel", "all_settled", "check_many"]

T = TypeVar("T")

Requests = Sequence[GearmanJobRequest] | set[GearmanJobRequest]


def check_many(items: Iterable[T]) -> list[T]:
    """python-gearman's guard: several jobs come as a list, tuple or set."""
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise invalid_type(
            errors.InvalidClientState,
            f"expected a list, tuple or set, got {type(items).__name__}",
        )
    return list(items)


def all_settled(requests: list[GearmanJobRequest], goal: proto.Goal) -> Callable[[], bool]:
    """A check that a wait for *goal* has nothing left to wait for, called after each read.

    Settling is final while a wait lasts, so the requests already seen to
    settle are not looked at again: a wait for N pipelined jobs costs O(N)
    checks in all, not O(N) per read.  Each check reads the property that
    :meth:`gearman_proto.JobRequest.settled` picks for *goal* itself, a call
    less per check on the path every job takes.
    """
    passed = 0
    count = len(requests)
    accepting = goal is proto.Goal.ACCEPTED

    def done() -> bool:
        nonlocal passed
        while passed < count:
            request = requests[passed]
            if not (request.accepted if accepting else request.finished):
                return False
            passed += 1
        return True

    return done


class ClientKernel:
    """A client's core session and python-gearman's shapes around it.

    Args:
        servers: the parsed host list.
        job_class, job_request_class: the classes requests are built with.
        random_unique_bytes: size of generated unique ids.
        exceptions, client_id: see :class:`gearman.GearmanClient`.
        connection_for: the client's connection object of a server, which
            becomes ``job.connection`` when a request is sent there.
        updates: what requests keep of streamed updates.
    """

    def __init__(
        self,
        servers: Sequence[proto.ServerAddress],
        *,
        job_class: type[GearmanJob],
        job_request_class: type[GearmanJobRequest],
        random_unique_bytes: int,
        exceptions: bool,
        client_id: str | bytes | None,
        connection_for: Callable[[proto.ServerAddress], Any],
        updates: UpdatePolicy,
    ) -> None:
        self.servers = servers
        self.connection_for = connection_for
        self.updates = updates
        self.job_class = job_class
        self.job_request_class = job_request_class
        self.random_unique_bytes = random_unique_bytes
        _check_unique_size(random_unique_bytes)
        try:
            self.session = proto.ClientSession(
                servers,
                exceptions=exceptions,
                client_id=None if client_id is None else name_bytes(client_id, "client_id"),
            )
        except proto.ProtocolError as error:  # a client id the protocol cannot carry
            raise map_error(error) from error
        #: the runtime's clock, set by the facade once its runtime exists.
        self.now: Callable[[], float] = _no_clock
        #: why servers failed to connect, filled by the facade's connects.
        self.connect_errors: Failures = {}

    # ------------------------------------------------------------ requests

    def build(
        self,
        task: str | bytes,
        data: Any,
        unique: str | bytes | None = None,
        priority: str | None = PRIORITY_NONE,
        background: bool = False,
        max_retries: int = 0,
        epoch: int | None = None,
        reducer: str | bytes | None = None,
    ) -> GearmanJobRequest:
        """A request for one job, not sent; a missing unique gets a random one."""
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
        if not unique:
            request._generated_unique_bytes = self.random_unique_bytes
        return request

    def from_dict(
        self, job_info: dict[str, Any], background: bool = False, max_retries: int = 0
    ) -> GearmanJobRequest:
        """A request from python-gearman's job dict (``task``, ``data``, optional
        ``unique``, ``priority``, ``epoch``, ``reducer``)."""
        return self.build(
            job_info["task"],
            job_info["data"],
            job_info.get("unique"),
            job_info.get("priority", PRIORITY_NONE),
            background,
            max_retries,
            job_info.get("epoch"),
            job_info.get("reducer"),
        )

    def submit(
        self,
        requests: Iterable[GearmanJobRequest],
        encoder: type[DataEncoder],
        *,
        resume: bool = False,
    ) -> None:
        """Hand each request to the session, which places it on a server.

        A request that came back ``UNKNOWN`` (undelivered, or lost after
        JOB_CREATED) is sent again with a fresh attempt budget, as
        python-gearman resent every ``UNKNOWN`` request it was given: the
        caller asked (:meth:`gearman_proto.JobRequest.rearm`).  With *resume*
        (``submit_multiple_requests``), requests that cannot be sent (in
        flight or finished) are left as they are, to be waited for:
        python-gearman's way of resubmitting a batch after a timeout.
        Without it they are an error.  Every request is built
        (payload encoded, fields checked) before the first is handed on, so
        a bad one among several sends none.

        Raises python-gearman's errors (a request in flight or finished:
        :class:`InvalidClientState`; a field the protocol cannot carry:
        :class:`InvalidClientValue`; a payload or name of the wrong type:
        :class:`InvalidClientType`).
        """
        session = self.session
        batch = []
        for request in requests:
            if type(request.state) is str:  # python-gearman code assigns the strings
                request.state = proto.JobState(request.state)
            if request.rearm():
                batch.append(request)
            elif not resume:
                raise errors.InvalidClientState(f"{request!r} cannot be submitted again")
        connection_for = self.connection_for
        updates = self.updates
        try:
            for request in batch:
                request._prepare(encoder, connection_for, updates)
            now = self.now()
            for request in batch:
                session.submit(request, now)
        except proto.ProtocolError as error:
            raise map_error(error) from error

    def end_wait(self, requests: list[GearmanJobRequest], goal: proto.Goal) -> None:
        """A wait for *goal* is over: set ``timed_out``, raise what could not be delivered.

        Raises:
            ExceededConnectionAttempts: a request lost its connection on its
                last attempt before JOB_CREATED.
            ServerUnavailable: no server could take a request.
        """
        failure = proto.settle(requests, goal)
        if failure is not None:
            self.raise_undelivered(failure)

    def raise_undelivered(self, failure: proto.ProtocolError | None) -> None:
        """Raise a request's delivery error (see :func:`gearman_proto.undelivered`)
        as python-gearman's error, if there is one; ``ServerUnavailable`` says
        why the servers failed to connect (a refusal, a TLS handshake)."""
        if failure is None:
            return
        error = map_error(failure)
        if isinstance(error, errors.ServerUnavailable) and self.connect_errors:
            reasons = "; ".join(str(reason) for reason in self.connect_errors.values())
            error = errors.ServerUnavailable(f"{error} ({reasons})")
        raise error from failure

    # -------------------------------------------------------------- status

    def query_requests(self, requests: list[GearmanJobRequest]) -> list[proto.StatusQuery]:
        """GET_STATUS for each created request, on the server that created it.

        A request this client did not submit (built by hand around a
        :class:`GearmanJob` with a ``connection`` and a ``handle``, as
        python-gearman code does) is asked about on the server its job names.
        """
        targets: list[tuple[proto.ServerAddress, bytes] | None] = []
        for request in requests:
            if request.server is not None and request.handle is not None:
                targets.append(None)
                continue
            job = request.gearman_job
            if job.connection is None or job.handle is None:
                raise errors.InvalidClientState(f"{request!r} has no job handle yet")
            targets.append((server_of(job.connection), name_bytes(job.handle, "handle")))
        session = self.session
        return [
            session.query_status(request) if target is None
            else session.query_handle(*target, request)
            for request, target in zip(requests, targets, strict=True)
        ]

    def query_handle(self, handle: str | bytes, host: Any) -> proto.StatusQuery:
        """GET_STATUS for *handle* on *host* (default: the first server)."""
        if host is not None:
            server = server_of(host)
        elif self.servers:
            server = self.servers[0]
        else:
            raise errors.ServerUnavailable("the client's host list names no server")
        try:
            return self.session.query_handle(server, name_bytes(handle, "handle"))
        except proto.ProtocolError as error:
            raise map_error(error) from error

    def query_unique(self, unique: str | bytes) -> proto.StatusQuery:
        """GET_STATUS_UNIQUE on every server."""
        try:
            return self.session.query_unique(name_bytes(unique, "unique"), self.now())
        except proto.ProtocolError as error:
            raise map_error(error) from error

    def end_queries(
        self, requests: list[GearmanJobRequest], queries: list[proto.StatusQuery]
    ) -> None:
        """Status waits are over: ``timed_out`` per request; raise if no server answered."""
        for query in queries:
            _check_reached(query)
        for request, query in zip(requests, queries, strict=True):
            request.timed_out = not query.answered

    def handle_status(self, query: proto.StatusQuery) -> HandleStatus:
        """python-gearman's status dict for a handle query."""
        return {"handle": text(query.handle or b""), **_query_status(query)}

    def unique_status(self, query: proto.StatusQuery, unique: str | bytes) -> UniqueStatus:
        """The status dict for a unique query (*unique* as the caller gave it)."""
        return {"unique": unique, "client_count": query.client_count, **_query_status(query)}

    def receive(
        self, server: proto.ServerAddress, event: proto.Event
    ) -> list[proto.JobRequest | proto.StatusQuery]:
        """The runtime's sink: one event read from *server*; returns the requests
        and status queries it changed."""
        return self.session.receive(server, event, self.now())


def _check_unique_size(size: int) -> None:
    """Generated uniques (hex: two characters a byte) must be ones the core sends;
    it says so now rather than at every submission."""
    misuse = errors.InvalidClientState
    if type(size) is not int:
        raise invalid_type(misuse, f"random_unique_bytes must be an int, not {size!r}")
    if size < 0:
        raise invalid_value(misuse, f"random_unique_bytes must be >= 0, not {size}")
    try:
        proto.SubmitJob(function=b"", unique=b"0" * (2 * size))
    except proto.ProtocolError as error:
        raise invalid_value(misuse, f"random_unique_bytes={size}: {error}") from error


def _query_status(query: proto.StatusQuery) -> QueryStatus:
    _check_reached(query)
    return {
        "known": query.known,
        "running": query.running,
        "numerator": query.numerator,
        "denominator": query.denominator,
        "timed_out": not query.answered,
    }


def _check_reached(query: proto.StatusQuery) -> None:
    if query.servers and len(query.failed_servers) == len(query.servers) and not query.replies:
        servers = ", ".join(str(server) for server in query.servers)
        raise errors.ServerUnavailable(f"cannot reach {servers}")


def _no_clock() -> float:
    raise RuntimeError("the kernel has no clock: the facade sets one")
