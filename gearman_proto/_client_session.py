"""Client session level: job requests across one or more servers.

Owns: the life of a job request (UNKNOWN -> PENDING -> CREATED -> COMPLETE
/ FAILED, or lost), which server a request goes to, routing JOB_CREATED,
ERROR and WORK_* events back to the requests they concern, status queries
by handle and by unique, and what a dead connection does to the requests
that travelled on it.  Does not own: sockets, waiting, or the clock (``now``
is passed in).

The rules (PROTOCOL.md 4, ANCHORS.md 2.10):
- A request lost before JOB_CREATED may be sent again, elsewhere, until it
  has been sent ``max_attempts`` times; this is always safe.
- A foreground request lost after JOB_CREATED is never sent again: a worker
  may already be running it, so it is reported as lost.
- A background request is finished at JOB_CREATED.
- A request stops being tracked at its terminal event, so a long run of
  jobs keeps memory flat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ._client_connection import ClientConnection
from ._connection import DEFAULT_MAX_PACKET_SIZE, drain
from ._errors import AttemptsExceeded, LocalProtocolError
from ._events import (
    ConnectionClosed,
    Event,
    GetStatus,
    GetStatusUnique,
    JobCreated,
    JobStatus,
    JobStatusUnique,
    ServerError,
    SetClientId,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
)
from ._servers import ServerAddress, ServerPool
from ._state import JobState

__all__ = ["ClientSession", "JobRequest", "JobState", "StatusQuery"]

logger = logging.getLogger("gearman_proto.client")

Submission = SubmitJob | SubmitJobEpoch | SubmitReduceJob


class JobRequest:
    """One submission and everything the server said about it.

    Attributes:
        submission: the :class:`SubmitJob` (or epoch / reduce) event.
        state: :class:`JobState`.
        handle: the job handle once created, else None.
        server: the server it was last sent to, else None.
        attempts: how many times it was sent; max_attempts: the cap.
        result: the WORK_COMPLETE payload; exception: the WORK_EXCEPTION
            payload; error: the :class:`ServerError` that refused it.
        lost: the connection died after JOB_CREATED, so the outcome of this
            foreground job is unknown (it is never resubmitted).
        known, running, numerator, denominator: the latest status (from
            WORK_STATUS or a status query); numerator and denominator are
            bytes exactly as the worker sent them.

    Subclasses (the bindings' request classes) may override the ``_on_*``
    hooks to decode payloads; each hook is called after the state moved.
    """

    def __init__(self, submission: Submission, *, max_attempts: int = 1) -> None:
        if not isinstance(submission, (SubmitJob, SubmitJobEpoch, SubmitReduceJob)):
            raise LocalProtocolError(f"not a submission: {submission!r}")
        if max_attempts < 1:
            raise LocalProtocolError("max_attempts must be at least 1")
        self.submission: Submission = submission
        self.state = JobState.UNKNOWN
        self.handle: bytes | None = None
        self.server: ServerAddress | None = None
        self.attempts = 0
        self.max_attempts = max_attempts
        self.result: bytes | None = None
        self.exception: bytes | None = None
        self.error: ServerError | None = None
        self.lost = False
        self.known: bool | None = None
        self.running: bool | None = None
        self.numerator: bytes | None = None
        self.denominator: bytes | None = None

    @property
    def background(self) -> bool:
        """Whether only JOB_CREATED will come back."""
        return isinstance(self.submission, SubmitJobEpoch) or self.submission.background

    @property
    def complete(self) -> bool:
        """python-gearman's ``complete``: created (background) or ended (foreground)."""
        if self.background:
            return self.state is JobState.CREATED
        return self.state in (JobState.COMPLETE, JobState.FAILED)

    @property
    def finished(self) -> bool:
        """Nothing more will happen to it: complete, refused, or lost."""
        return self.complete or self.lost or self.state is JobState.FAILED

    @property
    def retryable(self) -> bool:
        """Lost before JOB_CREATED with attempts left: safe to send again."""
        return self.state is JobState.UNKNOWN and not self.lost and self.attempts > 0

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.submission.function!r} state={self.state.value} "
            f"handle={self.handle!r} server={self.server}>"
        )

    # Hooks for subclasses: called after the request recorded the event.
    def _on_created(self) -> None:
        """JOB_CREATED arrived: ``handle`` and ``server`` are set."""

    def _on_data(self, payload: bytes) -> None:
        """WORK_DATA arrived."""

    def _on_warning(self, payload: bytes) -> None:
        """WORK_WARNING arrived."""

    def _on_status(self) -> None:
        """Status fields changed (WORK_STATUS or a status reply)."""

    def _on_result(self, payload: bytes) -> None:
        """WORK_COMPLETE arrived."""

    def _on_exception(self, payload: bytes) -> None:
        """WORK_EXCEPTION arrived."""


class StatusQuery:
    """A status question by handle (one server) or by unique (every server).

    Attributes:
        handle / unique: what was asked (the other is None).
        servers: the servers asked; replies: the replies so far.
        known, running, numerator, denominator: from the first reply with
            ``known`` set (or the last reply if none knows the job).
        client_count: for unique queries, attached foreground clients.
        request: the :class:`JobRequest` whose status this refreshes, if any.
    """

    def __init__(
        self,
        *,
        handle: bytes | None = None,
        unique: bytes | None = None,
        request: JobRequest | None = None,
    ) -> None:
        self.handle = handle
        self.unique = unique
        self.request = request
        self.servers: list[ServerAddress] = []
        self.replies: list[JobStatus | JobStatusUnique] = []
        self.failed_servers: list[ServerAddress] = []
        self.known = False
        self.running = False
        self.numerator = 0
        self.denominator = 0
        self.client_count = 0

    @property
    def done(self) -> bool:
        """Every server asked has replied or gone away."""
        return len(self.replies) + len(self.failed_servers) >= len(self.servers)

    @property
    def answered(self) -> bool:
        """At least one server replied (a status is available)."""
        return bool(self.replies)

    def _record(self, reply: JobStatus | JobStatusUnique) -> None:
        self.replies.append(reply)
        if self.known and not reply.known:
            return
        self.known = reply.known
        self.running = reply.running
        self.numerator = reply.numerator
        self.denominator = reply.denominator
        if isinstance(reply, JobStatusUnique):
            self.client_count = reply.client_count


Changed = JobRequest | StatusQuery


class ClientSession:
    """Job requests over connections to one or more servers.

    The binding connects where :meth:`candidates` says, reports each
    connection with :meth:`connection_made` (and failures with
    :meth:`connect_failed`), sends with :meth:`submit`, feeds every event of
    a connection to :meth:`receive`, and writes :meth:`data_to_send`.

    Args:
        servers: the server addresses.
        exceptions: ask each connection for WORK_EXCEPTION forwarding
            (OPTION_REQ ``exceptions``), re-sent on every new connection.
        client_id: a SET_CLIENT_ID label for every connection, or None.
        pool: the :class:`ServerPool` (default: one over *servers*).
        max_packet_size: the per-connection receive limit.
    """

    def __init__(
        self,
        servers: Sequence[ServerAddress],
        *,
        exceptions: bool = False,
        client_id: bytes | None = None,
        pool: ServerPool | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        self.pool = pool or ServerPool(servers)
        self.exceptions = exceptions
        self.client_id = client_id
        self.max_packet_size = max_packet_size
        self.connections: dict[ServerAddress, ClientConnection] = {}
        self._awaiting_creation: dict[int, JobRequest] = {}
        self._by_handle: dict[tuple[ServerAddress, bytes], list[JobRequest]] = {}
        self._queries: dict[int, tuple[StatusQuery, ServerAddress]] = {}

    # --------------------------------------------------------- connections

    def candidates(self, now: float) -> list[ServerAddress]:
        """Servers to try for the next request, best first (see :class:`ServerPool`)."""
        return self.pool.candidates(now)

    def connection_made(self, server: ServerAddress) -> ClientConnection:
        """A connection to *server* is up: create its protocol state.

        Queues the ``exceptions`` option and the client id if configured.
        """
        if server in self.connections:
            raise LocalProtocolError(f"{server} already has a connection")
        connection = ClientConnection(max_packet_size=self.max_packet_size)
        if self.client_id is not None:
            connection.queue(SetClientId(client_id=self.client_id))
        if self.exceptions:
            connection.queue(SetOption(option=b"exceptions"))
        self.connections[server] = connection
        self.pool.succeeded(server)
        return connection

    def connect_failed(self, server: ServerAddress, now: float) -> None:
        """Connecting to *server* failed: put it in back-off."""
        self.pool.failed(server, now)

    def connection_lost(
        self,
        server: ServerAddress,
        now: float,
        unanswered: Iterable[Event] | None = None,
    ) -> list[Changed]:
        """The connection to *server* died (EOF, error, or the binding gave up).

        Requests waiting for JOB_CREATED there fall back to ``UNKNOWN`` and
        may be sent again; created foreground requests are marked lost;
        status queries count the server as failed.  *unanswered* defaults to
        the connection's own list (a :class:`ConnectionClosed` event carries
        it once the connection has closed).  Returns what changed.
        """
        connection = self.connections.pop(server, None)
        if connection is not None:
            self.pool.lost(server, now)
        changed: list[Changed] = []
        if connection is None:
            return changed
        if unanswered is None:
            unanswered = connection.unanswered
        for event in unanswered:
            if isinstance(event, (SubmitJob, SubmitJobEpoch, SubmitReduceJob)):
                request = self._awaiting_creation.pop(id(event), None)
                if request is not None:
                    request.state = JobState.UNKNOWN
                    changed.append(request)
            elif isinstance(event, (GetStatus, GetStatusUnique)):
                entry = self._queries.pop(id(event), None)
                if entry is not None:
                    entry[0].failed_servers.append(server)
                    changed.append(entry[0])
        for key in [key for key in self._by_handle if key[0] == server]:
            for request in self._by_handle.pop(key):
                request.state = JobState.UNKNOWN
                request.lost = True
                changed.append(request)
        return changed

    def data_to_send(self) -> dict[ServerAddress, bytes]:
        """Bytes queued per server, one string each (one write per server)."""
        return drain(self.connections)

    # ------------------------------------------------------------ requests

    def submit(self, request: JobRequest, server: ServerAddress) -> None:
        """Send *request* on the connection to *server*.

        Raises:
            AttemptsExceeded: it has been sent ``max_attempts`` times already.
            LocalProtocolError: it is in flight or finished, or *server* has
                no connection.
        """
        if request.state is not JobState.UNKNOWN or request.lost:
            raise LocalProtocolError(f"{request!r} cannot be submitted again")
        if request.attempts >= request.max_attempts:
            raise AttemptsExceeded(
                f"{request!r} lost its connection {request.attempts} times before JOB_CREATED",
                attempts=request.attempts,
            )
        connection = self.connections.get(server)
        if connection is None:
            raise LocalProtocolError(f"no connection to {server}")
        connection.queue(request.submission)
        request.attempts += 1
        request.state = JobState.PENDING
        request.server = server
        self._awaiting_creation[id(request.submission)] = request

    def query_status(self, request: JobRequest) -> StatusQuery:
        """Ask the server that created *request* for its status (GET_STATUS)."""
        if request.handle is None or request.server is None:
            raise LocalProtocolError(f"{request!r} has no handle yet")
        query = StatusQuery(handle=request.handle, request=request)
        self._ask(query, GetStatus(handle=request.handle), [request.server])
        return query

    def query_handle(self, server: ServerAddress, handle: bytes) -> StatusQuery:
        """Ask *server* for the status of *handle* (handles are per server)."""
        query = StatusQuery(handle=handle)
        self._ask(query, GetStatus(handle=handle), [server])
        return query

    def query_unique(self, unique: bytes) -> StatusQuery:
        """Ask every connected server for the job with *unique* (GET_STATUS_UNIQUE)."""
        query = StatusQuery(unique=unique)
        self._ask(query, GetStatusUnique(unique=unique), list(self.connections))
        return query

    def _ask(
        self,
        query: StatusQuery,
        event: GetStatus | GetStatusUnique,
        servers: Iterable[ServerAddress],
    ) -> None:
        for server in servers:
            connection = self.connections.get(server)
            if connection is None:
                raise LocalProtocolError(f"no connection to {server}")
            # One event object per server, so each reply finds its query.
            asked = replace(event)
            connection.queue(asked)
            query.servers.append(server)
            self._queries[id(asked)] = (query, server)

    def forget(self, request: JobRequest) -> None:
        """Stop tracking *request* (the caller no longer wants its updates)."""
        self._awaiting_creation.pop(id(request.submission), None)
        if request.server is not None and request.handle is not None:
            key = (request.server, request.handle)
            waiting = self._by_handle.get(key)
            if waiting and request in waiting:
                waiting.remove(request)
                if not waiting:
                    del self._by_handle[key]

    @property
    def tracked(self) -> int:
        """How many requests and queries the session still follows (leak check)."""
        return (
            len(self._awaiting_creation)
            + sum(len(v) for v in self._by_handle.values())
            + len(self._queries)
        )

    # -------------------------------------------------------------- events

    def receive(self, server: ServerAddress, event: Event, now: float) -> list[Changed]:
        """Apply one event read from *server*'s connection; return what changed."""
        kind = type(event)
        if kind is JobCreated:
            return self._created(server, event)  # type: ignore[arg-type]
        if kind in _WORK_EVENTS:
            return self._work(server, event)
        if kind is JobStatus or kind is JobStatusUnique:
            return self._status(event)  # type: ignore[arg-type]
        if kind is ServerError:
            return self._error(event)  # type: ignore[arg-type]
        if kind is ConnectionClosed:
            assert isinstance(event, ConnectionClosed)
            return self.connection_lost(server, now, event.unanswered)
        logger.debug("%s: ignoring %r", server, event)
        return []

    def _created(self, server: ServerAddress, event: JobCreated) -> list[Changed]:
        request = self._awaiting_creation.pop(id(event.request), None)
        if request is None:  # forgotten by the caller
            return []
        request.handle = event.handle
        request.state = JobState.CREATED
        if not request.background:
            self._by_handle.setdefault((server, event.handle), []).append(request)
        request._on_created()
        return [request]

    def _work(self, server: ServerAddress, event: Event) -> list[Changed]:
        handle: bytes = event.handle  # type: ignore[attr-defined]
        key = (server, handle)
        requests = self._by_handle.get(key)
        if not requests:
            return []
        kind = type(event)
        if kind in _TERMINAL:
            del self._by_handle[key]
        for request in requests:
            if kind is WorkData:
                request._on_data(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkWarning:
                request._on_warning(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkStatus:
                assert isinstance(event, WorkStatus)
                request.known = request.running = True
                request.numerator, request.denominator = event.numerator, event.denominator
                request._on_status()
            elif kind is WorkComplete:
                request.state = JobState.COMPLETE
                request.result = event.payload  # type: ignore[attr-defined]
                request._on_result(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkException:
                # Terminal with the exceptions option (PROTOCOL.md 4.4).
                request.state = JobState.FAILED
                request.exception = event.payload  # type: ignore[attr-defined]
                request._on_exception(event.payload)  # type: ignore[attr-defined]
            else:
                request.state = JobState.FAILED
        return list(requests)

    def _status(self, event: JobStatus | JobStatusUnique) -> list[Changed]:
        entry = self._queries.pop(id(event.request), None)
        if entry is None:
            return []
        query = entry[0]
        query._record(event)
        request = query.request
        if request is not None:
            request.known, request.running = event.known, event.running
            request.numerator = b"%d" % event.numerator
            request.denominator = b"%d" % event.denominator
            request._on_status()
        return [query]

    def _error(self, event: ServerError) -> list[Changed]:
        if event.request is None:
            logger.warning("server error %r: %r", event.code, event.text)
            return []
        request = self._awaiting_creation.pop(id(event.request), None)
        if request is None:
            return []
        request.state = JobState.FAILED
        request.error = event
        return [request]


_WORK_EVENTS = frozenset({WorkData, WorkWarning, WorkStatus, WorkComplete, WorkFail, WorkException})
_TERMINAL = frozenset({WorkComplete, WorkFail, WorkException})
