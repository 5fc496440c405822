"""Client session level: job requests across one or more servers.

Owns: the life of a job request (UNKNOWN -> PENDING -> CREATED -> COMPLETE
/ FAILED, or lost; each move goes through ``_state.JOB_TRANSITIONS``, which
says what is legal), which server a request goes to and which connection
the binding must open for it, resending after a lost connection, routing
JOB_CREATED, ERROR and WORK_* events back to the requests they concern,
status queries by handle and by unique, and when a wait for requests is
over (:class:`Goal`) and whether it timed out.  Does not own: sockets,
waiting, or the clock (``now`` is passed in).

The rules (PROTOCOL.md 4, ANCHORS.md 2.10):
- A request goes to the next server in rotation that is connected, or, if
  the next one is not, waits until the binding has connected it
  (:meth:`ClientSession.connection_wanted`); a failed connect moves it on
  to the next server, and with none left it ends with
  :class:`NoServerAvailable`.
- A request lost before JOB_CREATED is sent again by the session, as a new
  placement, until it has been sent ``max_attempts`` times (then it ends
  with :class:`AttemptsExceeded`); this is always safe.  A connection the
  server broke with bytes that break the protocol puts that server in
  back-off; the requests it cut off go to another server, and when none is
  left (or no attempt is), they end with that :class:`RemoteProtocolError`.
- A foreground request lost after JOB_CREATED is never sent again: a worker
  may already be running it, so it is reported as lost.
- A background request is finished at JOB_CREATED.
- A request stops being tracked at its terminal event, so a long run of
  jobs keeps memory flat.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ._client_connection import ClientConnection
from ._connection import DEFAULT_MAX_PACKET_SIZE, drain
from ._errors import (
    AttemptsExceeded,
    LocalProtocolError,
    NoServerAvailable,
    RemoteProtocolError,
    RequestIgnored,
)
from ._events import (
    ConnectionClosed,
    Event,
    GetStatus,
    GetStatusUnique,
    JobCreated,
    JobStatus,
    JobStatusUnique,
    Priority,
    ServerError,
    SetClientId,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    Unanswered,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
)
from ._servers import ServerAddress, ServerPool
from ._state import JobMove, JobState, next_job_state

__all__ = [
    "ClientSession",
    "Goal",
    "JobRequest",
    "JobState",
    "Loss",
    "StatusQuery",
    "acceptance_deadline",
    "make_submission",
    "settle",
    "undelivered",
]

logger = logging.getLogger("gearman_proto.client")

Submission = SubmitJob | SubmitJobEpoch | SubmitReduceJob

#: why a request could not be delivered (:attr:`JobRequest.delivery_error`).
DeliveryError = AttemptsExceeded | NoServerAvailable | RequestIgnored | RemoteProtocolError


class Goal(enum.Enum):
    """What a caller waits for on a job request.

    ``ACCEPTED``: the server created or refused it (JOB_CREATED or ERROR).
    ``FINISHED``: nothing more will happen to it (complete, failed or lost).
    """

    ACCEPTED = "accepted"
    FINISHED = "finished"


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
        delivery_error: why it could not be delivered, if so: an
            :class:`AttemptsExceeded` (lost before JOB_CREATED on its last
            attempt), a :class:`NoServerAvailable`, a :class:`RequestIgnored`
            (the server does not support it), or the
            :class:`RemoteProtocolError` of the server that cut it off
            (with no attempt or no other server left); else None.
        timed_out: the last wait on it (:func:`settle`) ended before it
            reached its goal.
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
        self.max_attempts = max_attempts
        self.reset()

    def reset(self) -> None:
        """Forget every outcome: back to ``UNKNOWN``, never sent."""
        #: reset after a sending that may still be unanswered (see ``_send``).
        self._reset_after_send = self.__dict__.get("attempts", 0) > 0
        self.state = JobState.UNKNOWN
        self.handle: bytes | None = None
        self.server: ServerAddress | None = None
        self.attempts = 0
        self.result: bytes | None = None
        self.exception: bytes | None = None
        self.error: ServerError | None = None
        self.lost = False
        self.delivery_error: DeliveryError | None = None
        self.timed_out = False
        self.known: bool | None = None
        self.running: bool | None = None
        self.numerator: bytes | None = None
        self.denominator: bytes | None = None
        #: servers still to try, while the request waits for a placement.
        self._candidates: list[ServerAddress] | None = None

    @property
    def background(self) -> bool:
        """Whether only JOB_CREATED will come back."""
        return isinstance(self.submission, SubmitJobEpoch) or self.submission.background

    @property
    def complete(self) -> bool:
        """python-gearman's ``complete``: created (background) or ended (foreground)."""
        if self.background:
            return self.state is JobState.CREATED
        return self.state in _ENDED

    @property
    def placing(self) -> bool:
        """Waiting for the binding to connect a server it can go to."""
        return self._candidates is not None

    def rearm(self) -> bool:
        """Make a request that came back ``UNKNOWN`` without an outcome (lost
        after JOB_CREATED, or undelivered) sendable again, with a fresh attempt
        budget: the caller decided to send it again, knowing that a lost job
        may have run.  Returns :attr:`sendable`; updates heard are kept."""
        if self.state is not JobState.UNKNOWN or self._candidates is not None:
            return False
        if self.lost or self.delivery_error is not None:
            self.lost = False
            self.delivery_error = None
            self.handle = None
            self.attempts = 0
        return True

    @property
    def sendable(self) -> bool:
        """Whether :meth:`ClientSession.submit` takes it: never sent, or back to
        ``UNKNOWN`` without a lost outcome (undeliverable, or :meth:`reset`),
        and not waiting for a placement.  A lost request must be
        :meth:`reset` first: resending it may run the job twice."""
        return self.state is JobState.UNKNOWN and not self.lost and self._candidates is None

    @property
    def accepted(self) -> bool:
        """Not in flight: created, refused, lost, undeliverable, or never sent."""
        return self.state is not JobState.PENDING and self._candidates is None

    @property
    def finished(self) -> bool:
        """Nothing more will happen to it: complete, refused, lost or undeliverable."""
        return self.complete or self.lost or self.delivery_error is not None or (
            self.state is JobState.FAILED
        )

    @property
    def retryable(self) -> bool:
        """Lost before JOB_CREATED with attempts left: the session sends it again."""
        return self.state is JobState.UNKNOWN and not self.lost and self._candidates is not None

    def settled(self, goal: Goal) -> bool:
        """Whether a wait for *goal* has nothing left to wait for on this request."""
        return self.accepted if goal is Goal.ACCEPTED else self.finished

    def reached(self, goal: Goal) -> bool:
        """Whether it got where the caller wanted: created or refused; or complete."""
        if goal is Goal.ACCEPTED:
            return self.state is not JobState.PENDING and self.state is not JobState.UNKNOWN
        return self.complete

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.submission.function!r} state={self.state.value} "
            f"handle={self.handle!r} server={self.server}>"
        )

    # Hooks for subclasses.
    def _on_resend(self) -> None:
        """Called before the session sends it again after its connection died
        before JOB_CREATED; a subclass may replace ``submission`` (the binding
        gives a unique it generated a fresh value: gearmand 1.1.20 may keep the
        first sending as an abandoned job that never runs, and attach a resend
        with the same unique to it)."""

    # Hooks for subclasses: called after the request recorded the event.
    def _on_sent(self) -> None:
        """The submission was queued on the connection to ``server``."""

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


_ENDED = (JobState.COMPLETE, JobState.FAILED)


def make_submission(
    function: bytes,
    payload: bytes,
    unique: bytes = b"",
    *,
    priority: Priority = Priority.NORMAL,
    background: bool = False,
    epoch: int | None = None,
    reducer: bytes | None = None,
) -> Submission:
    """The submission event for a job: SUBMIT_JOB_EPOCH when *epoch* is set
    (always background), SUBMIT_REDUCE_JOB* when *reducer* is, else SUBMIT_JOB*.

    Raises:
        LocalProtocolError: an epoch job with a priority or reducer, a reduce
            job with a priority, or a field the protocol cannot carry.
    """
    if epoch is not None:
        if reducer is not None or priority is not Priority.NORMAL:
            raise LocalProtocolError("an epoch job has normal priority and no reducer")
        return SubmitJobEpoch(function=function, payload=payload, unique=unique, epoch=epoch)
    if reducer is not None:
        if priority is not Priority.NORMAL:
            raise LocalProtocolError("a reduce job has normal priority")
        return SubmitReduceJob(
            function=function,
            payload=payload,
            unique=unique,
            reducer=reducer,
            background=background,
        )
    return SubmitJob(
        function=function,
        payload=payload,
        unique=unique,
        priority=priority,
        background=background,
    )


def settle(requests: Iterable[JobRequest], goal: Goal) -> DeliveryError | None:
    """A wait for *goal* is over: set each request's ``timed_out``; return the
    first delivery error among them (the one to report), or None.

    A request times out when it did not reach the goal: still pending or
    unsent after a wait for acceptance (or lost), not complete after a wait
    for the end.
    """
    failure = None
    for request in requests:
        request.timed_out = not request.reached(goal)
        if failure is None and request.delivery_error is not None:
            failure = request.delivery_error
    return failure


def undelivered(requests: Iterable[JobRequest]) -> DeliveryError | None:
    """The first delivery error among *requests* (the one to report), or None."""
    for request in requests:
        if request.delivery_error is not None:
            return request.delivery_error
    return None


def acceptance_deadline(
    now: float, deadline: float | None, submit_timeout: float | None
) -> float | None:
    """When a wait for JOB_CREATED ends: the caller's *deadline* or *submit_timeout*
    seconds from *now*, whichever comes first (None: never)."""
    if submit_timeout is None:
        return deadline
    limit = now + submit_timeout
    return limit if deadline is None or limit < deadline else deadline


def submission_waits(
    now: float, deadline: float | None, submit_timeout: float | None, until_complete: bool
) -> list[tuple[Goal, float | None]]:
    """The waits a submission makes, in order: ``(goal, until)`` pairs.

    Acceptance (JOB_CREATED) is waited for by :func:`acceptance_deadline`;
    with *until_complete* the end of the job by *deadline* as well.  When
    both waits end at the same time (no *submit_timeout*), one wait for the
    end does: a request that ends was accepted first, and one refused or
    cut off ends there.  The caller stops at the first wait that runs out.
    """
    accepted_by = acceptance_deadline(now, deadline, submit_timeout)
    if not until_complete:
        return [(Goal.ACCEPTED, accepted_by)]
    if accepted_by == deadline:
        return [(Goal.FINISHED, deadline)]
    return [(Goal.ACCEPTED, accepted_by), (Goal.FINISHED, deadline)]


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


@dataclass(slots=True)
class Loss:
    """What a lost connection did to the requests and queries on it.

    Attributes:
        resent: requests lost before JOB_CREATED that the session sends
            again (they wait for a placement).
        undelivered: requests lost before JOB_CREATED on their last
            attempt, or cut off by a protocol error with no other server
            to go to (``delivery_error`` is set).
        lost: created foreground requests whose outcome is now unknown.
        queries: status queries that count the server as failed.
    """

    resent: list[JobRequest] = field(default_factory=list)
    undelivered: list[JobRequest] = field(default_factory=list)
    lost: list[JobRequest] = field(default_factory=list)
    queries: list[StatusQuery] = field(default_factory=list)

    @property
    def changed(self) -> list[Changed]:
        """Everything the loss touched."""
        return [*self.resent, *self.undelivered, *self.lost, *self.queries]


def _awaits(request: JobRequest, submission: Event) -> bool:
    """Whether *request* still waits for the answer to *submission*: not reset
    (and perhaps sent anew) since; a reset request hears nothing of before."""
    return request.submission is submission and request.state is JobState.PENDING


class ClientSession:
    """Job requests over connections to one or more servers.

    The binding submits with :meth:`submit`, opens the connection
    :meth:`connection_wanted` names (reporting it with
    :meth:`connection_made`, or :meth:`connect_failed`), feeds every event of
    a connection to :meth:`receive`, and writes :meth:`data_to_send`.
    Requests lost with a connection are sent again by the session itself.

    Args:
        servers: the server addresses.
        exceptions: ask each connection for WORK_EXCEPTION forwarding
            (OPTION_REQ ``exceptions``), re-sent on every new connection.
        client_id: a SET_CLIENT_ID label for every connection, or None
            (a :class:`LocalProtocolError` here if it is not one).
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
        #: built now, so a client id the protocol cannot carry is refused here
        #: (LocalProtocolError) rather than when a connection comes up.
        self._client_id_event = None if client_id is None else SetClientId(client_id=client_id)
        self.max_packet_size = max_packet_size
        self.connections: dict[ServerAddress, ClientConnection] = {}
        self._awaiting_creation: dict[int, JobRequest] = {}
        self._by_handle: dict[tuple[ServerAddress, bytes], list[JobRequest]] = {}
        self._queries: dict[int, tuple[StatusQuery, ServerAddress]] = {}
        #: requests waiting for a connection, oldest first.
        self._placing: deque[JobRequest] = deque()
        #: status questions waiting for a connection: (query, event, server).
        self._asking: list[tuple[StatusQuery, GetStatus | GetStatusUnique, ServerAddress]] = []

    # --------------------------------------------------------- connections

    def candidates(self, now: float) -> list[ServerAddress]:
        """Servers to try for the next request, best first (see :class:`ServerPool`)."""
        return self.pool.candidates(now)

    def connection_wanted(self, now: float) -> ServerAddress | None:
        """The server the binding should connect to now, or None.

        A request or status query is waiting for it; connect, then report
        :meth:`connection_made` or :meth:`connect_failed`, and ask again.
        """
        for request in self._placing:
            if request._candidates:  # None: reset while it waited
                return request._candidates[0]
        for _query, _event, server in self._asking:
            return server
        return None

    @property
    def wants_connection(self) -> bool:
        """Whether a request or query waits for a connection (see :meth:`connection_wanted`)."""
        return bool(self._placing or self._asking)

    def connection_made(self, server: ServerAddress) -> ClientConnection:
        """A connection to *server* is up: create its protocol state.

        Queues the ``exceptions`` option and the client id if configured,
        then every request and query that was waiting for this server.
        """
        if server in self.connections:
            raise LocalProtocolError(f"{server} already has a connection")
        connection = ClientConnection(max_packet_size=self.max_packet_size)
        if self._client_id_event is not None:
            connection.queue(self._client_id_event)
        if self.exceptions:
            connection.queue(SetOption(option=b"exceptions"))
        self.connections[server] = connection
        self.pool.succeeded(server)
        self._place_waiting()
        if self._asking:
            self._ask_waiting(server, connection)
        return connection

    def connect_failed(self, server: ServerAddress, now: float) -> None:
        """Connecting to *server* failed: put it in back-off.

        Requests waiting for it move on to their next server; those with
        none left end with :class:`NoServerAvailable`.  Queries waiting for
        it count it as failed.
        """
        self.pool.failed(server, now)
        for request in self._placing:
            candidates = request._candidates
            if candidates is not None and server in candidates:
                candidates.remove(server)
        self._place_waiting()
        asking = []
        for entry in self._asking:
            if entry[2] == server:
                entry[0].failed_servers.append(server)
            else:
                asking.append(entry)
        self._asking = asking

    def connection_lost(
        self,
        server: ServerAddress,
        now: float,
        unanswered: Iterable[Event] | None = None,
    ) -> Loss:
        """The connection to *server* died (EOF, error, or the binding gave up).

        Requests waiting for JOB_CREATED there are sent again (or end with
        :class:`AttemptsExceeded` on their last attempt); created foreground
        requests are marked lost; status queries count the server as failed.
        *unanswered* defaults to the connection's own list (a
        :class:`ConnectionClosed` event carries it once the connection has
        closed).  A connection the server dropped before answering anything,
        or broke with bytes that break the protocol, puts the server in
        back-off; one that worked does not (:attr:`ClientConnection.proven`).
        The requests a protocol error cut off end with that error on their
        last attempt, or when no other server is available to resend them.
        """
        loss = Loss()
        connection = self.connections.pop(server, None)
        if connection is None:
            return loss
        self.pool.lost(server, now, proven=connection.proven)
        broken = connection.remote_error
        if unanswered is None:
            unanswered = connection.unanswered
        for event in unanswered:
            if isinstance(event, (SubmitJob, SubmitJobEpoch, SubmitReduceJob)):
                request = self._awaiting_creation.pop(id(event), None)
                if request is not None and _awaits(request, event):
                    request.state = next_job_state(request.state, JobMove.CONNECTION_LOST)
                    if request.attempts >= request.max_attempts:
                        request.delivery_error = broken or AttemptsExceeded(
                            f"{request!r} lost its connection {request.attempts} times "
                            "before the server accepted it",
                            attempts=request.attempts,
                        )
                        loss.undelivered.append(request)
                    else:
                        loss.resent.append(request)
            elif isinstance(event, (GetStatus, GetStatusUnique)):
                entry = self._queries.pop(id(event), None)
                if entry is not None:
                    entry[0].failed_servers.append(server)
                    loss.queries.append(entry[0])
        for key in [key for key in self._by_handle if key[0] == server]:
            for request in self._by_handle.pop(key):
                if request.handle != key[1]:
                    continue  # reset meanwhile: not that job any more
                request.state = next_job_state(request.state, JobMove.CONNECTION_LOST)
                request.lost = True
                loss.lost.append(request)
        resent, loss.resent = loss.resent, []
        for request in resent:
            candidates = self.pool.candidates(now)
            if broken is not None and not candidates:
                # The server that broke the protocol is in back-off and no
                # other is up: its error says more than "no server".
                request.delivery_error = broken
                loss.undelivered.append(request)
            else:
                loss.resent.append(request)
                self._wait_for_placement(request, candidates)
        return loss

    def data_to_send(self) -> dict[ServerAddress, bytes]:
        """Bytes queued per server, one string each (one write per server)."""
        return drain(self.connections)

    # ------------------------------------------------------------ requests

    def submit(
        self, request: JobRequest, now: float, *, server: ServerAddress | None = None
    ) -> None:
        """Send *request*: to *server* if given (it must be connected), else to
        the next server in rotation.

        If that server is not connected yet, the request waits for it (see
        :meth:`connection_wanted`); if no server is available at all, it
        ends at once with ``delivery_error`` set to :class:`NoServerAvailable`.

        Raises:
            AttemptsExceeded: it has been sent ``max_attempts`` times already.
            LocalProtocolError: it is in flight or finished, or *server* has
                no connection.
        """
        # ``sendable``, inlined: this runs once per job.
        if request.state is not JobState.UNKNOWN or request.lost or request._candidates is not None:
            raise LocalProtocolError(f"{request!r} cannot be submitted again")
        if request.attempts >= request.max_attempts:
            raise AttemptsExceeded(
                f"{request!r} lost its connection {request.attempts} times before JOB_CREATED",
                attempts=request.attempts,
            )
        request.delivery_error = None
        if server is not None:
            if server not in self.connections:
                raise LocalProtocolError(f"no connection to {server}")
            self._send(request, server)
            return
        candidates = self.pool.candidates(now)
        if candidates and not self._placing and candidates[0] in self.connections:
            self._send(request, candidates[0])  # the usual case: connected, nobody queued
            return
        self._wait_for_placement(request, candidates)

    def _wait_for_placement(self, request: JobRequest, candidates: list[ServerAddress]) -> None:
        request._candidates = candidates
        self._placing.append(request)
        self._place_waiting()

    def _place_waiting(self) -> None:
        """Send every waiting request whose next server is connected, in order."""
        placing = self._placing
        connections = self.connections
        waiting: deque[JobRequest] = deque()
        while placing:
            request = placing.popleft()
            candidates = request._candidates
            if candidates is None:
                continue  # reset while it waited: no longer to be placed
            if not candidates:
                request._candidates = None
                servers = self.pool.servers
                request.delivery_error = NoServerAvailable(
                    f"no server of {', '.join(map(str, servers))} can be reached"
                    if servers
                    else "the session has no server"
                )
            elif candidates[0] in connections:
                request._candidates = None
                self._send(request, candidates[0])
            else:
                waiting.append(request)
        self._placing = waiting

    def _send(self, request: JobRequest, server: ServerAddress) -> None:
        state = next_job_state(request.state, JobMove.SUBMIT)  # before anything is queued
        if request.attempts:
            request._on_resend()
        if request._reset_after_send and id(request.submission) in self._awaiting_creation:
            # Reset and sent again while its first sending is unanswered: a
            # submission of its own, so each JOB_CREATED finds its sending.
            request.submission = replace(request.submission)
        request._reset_after_send = False
        self.connections[server].queue(request.submission)
        request.attempts += 1
        request.state = state
        request.server = server
        self._awaiting_creation[id(request.submission)] = request
        request._on_sent()

    def query_status(self, request: JobRequest) -> StatusQuery:
        """Ask the server that created *request* for its status (GET_STATUS).

        If that server is not connected, the query waits for it
        (:meth:`connection_wanted`).
        """
        if request.handle is None or request.server is None:
            raise LocalProtocolError(f"{request!r} has no handle yet")
        query = StatusQuery(handle=request.handle, request=request)
        self._ask(query, GetStatus(handle=request.handle), [request.server])
        return query

    def query_handle(
        self, server: ServerAddress, handle: bytes, request: JobRequest | None = None
    ) -> StatusQuery:
        """Ask *server* for the status of *handle* (handles are per server).

        *request*, if given, is a request this session did not submit (one
        built from a handle another client got): its status fields are
        refreshed from the reply as :meth:`query_status` refreshes its own.
        """
        query = StatusQuery(handle=handle, request=request)
        self._ask(query, GetStatus(handle=handle), [server])
        return query

    def query_unique(self, unique: bytes, now: float) -> StatusQuery:
        """Ask every server not in back-off for the job with *unique*
        (GET_STATUS_UNIQUE); none available: the query is done unanswered."""
        query = StatusQuery(unique=unique)
        servers = [s for s in self.pool.servers if self.pool.available(s, now)]
        self._ask(query, GetStatusUnique(unique=unique), servers)
        return query

    def _ask(
        self,
        query: StatusQuery,
        event: GetStatus | GetStatusUnique,
        servers: Iterable[ServerAddress],
    ) -> None:
        for server in servers:
            # One event object per server, so each reply finds its query.
            asked = replace(event)
            query.servers.append(server)
            connection = self.connections.get(server)
            if connection is None:
                self._asking.append((query, asked, server))
                continue
            connection.queue(asked)
            self._queries[id(asked)] = (query, server)

    def _ask_waiting(self, server: ServerAddress, connection: ClientConnection) -> None:
        asking = []
        for query, asked, wanted in self._asking:
            if wanted == server:
                connection.queue(asked)
                self._queries[id(asked)] = (query, server)
            else:
                asking.append((query, asked, wanted))
        self._asking = asking

    def forget(self, request: JobRequest) -> None:
        """Stop tracking *request* (the caller no longer wants its updates)."""
        self._awaiting_creation.pop(id(request.submission), None)
        if request.placing:
            self._placing.remove(request)
            request._candidates = None
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
            + len(self._placing)
            + len(self._asking)
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
        if kind is Unanswered:
            return self._ignored(server, event)  # type: ignore[arg-type]
        if kind is ConnectionClosed:
            closed: ConnectionClosed = event  # type: ignore[assignment]
            return self.connection_lost(server, now, closed.unanswered).changed
        logger.debug("%s: ignoring %r", server, event)
        return []

    def _created(self, server: ServerAddress, event: JobCreated) -> list[Changed]:
        request = self._awaiting_creation.pop(id(event.request), None)
        # _awaits(), inlined: this runs once per job.
        if (
            request is None  # forgotten by the caller
            or request.submission is not event.request  # reset and sent anew
            or request.state is not JobState.PENDING  # reset
        ):
            return []
        request.handle = event.handle
        request.state = next_job_state(request.state, JobMove.JOB_CREATED)
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
            if request.handle != handle:
                continue  # reset meanwhile: it no longer hears about this job
            if kind is WorkData:
                request._on_data(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkWarning:
                request._on_warning(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkStatus:
                request.known = request.running = True
                request.numerator = event.numerator  # type: ignore[attr-defined]
                request.denominator = event.denominator  # type: ignore[attr-defined]
                request._on_status()
            elif kind is WorkComplete:
                request.state = next_job_state(request.state, JobMove.WORK_COMPLETE)
                request.result = event.payload  # type: ignore[attr-defined]
                request._on_result(event.payload)  # type: ignore[attr-defined]
            elif kind is WorkException:
                # Terminal with the exceptions option (PROTOCOL.md 4.4).
                request.state = next_job_state(request.state, JobMove.WORK_EXCEPTION)
                request.exception = event.payload  # type: ignore[attr-defined]
                request._on_exception(event.payload)  # type: ignore[attr-defined]
            else:
                request.state = next_job_state(request.state, JobMove.WORK_FAIL)
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
        if request is None or not _awaits(request, event.request):
            return []
        request.state = next_job_state(request.state, JobMove.ERROR)
        request.error = event
        return [request]

    def _ignored(self, server: ServerAddress, event: Unanswered) -> list[Changed]:
        """*server* passed over a request (it answered a later one): it does not know it.

        A submission fails at once with :class:`RequestIgnored` as its
        ``delivery_error`` (the server will never create it); a status query
        stops waiting for that server's reply, which will not come (it times
        out as any unanswered query, unless other servers answer).
        """
        asked = event.request
        name = _PACKET_NAMES.get(type(asked), type(asked).__name__)
        if isinstance(asked, (SubmitJob, SubmitJobEpoch, SubmitReduceJob)):
            request = self._awaiting_creation.pop(id(asked), None)
            if request is None:
                return []
            request.state = next_job_state(request.state, JobMove.ERROR)
            request.delivery_error = RequestIgnored(
                f"{server} did not answer {name} (it answered a later request): "
                "this server does not support it"
            )
            return [request]
        logger.warning("%s did not answer %s: this server does not support it", server, name)
        if isinstance(asked, (GetStatus, GetStatusUnique)):
            self._queries.pop(id(asked), None)
        return []


#: names of the requests a server may ignore, for messages.
_PACKET_NAMES: dict[type[Event], str] = {
    SubmitJobEpoch: "SUBMIT_JOB_EPOCH",
    SubmitReduceJob: "SUBMIT_REDUCE_JOB",
    GetStatusUnique: "GET_STATUS_UNIQUE",
    SetOption: "OPTION_REQ",
}

_WORK_EVENTS = frozenset({WorkData, WorkWarning, WorkStatus, WorkComplete, WorkFail, WorkException})
_TERMINAL = frozenset({WorkComplete, WorkFail, WorkException})
