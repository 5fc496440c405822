"""Connection level, worker role: abilities, the grab loop, the jobs held.

Owns: :class:`WorkerConnection`: which requests a worker may send, the
grab policy (grab while accepting, registered and with room for a job),
making the grab loop's moves (GRAB_JOB*, PRE_SLEEP: PROTOCOL.md 5.2) as
the table of ``_state`` says, the jobs assigned to this connection and the
``WORK_*`` replies for them.  Re-exports :class:`WorkerState`.  Does not
own: the grab loop's states and legal moves (``_state``), what every role
shares (``_connection``), which connections may grab now or the job budget
across servers (``_worker_session``), running a job (the binding), sockets
or clocks.
"""

from __future__ import annotations

from collections.abc import Callable

from ._codec import encode_event
from ._connection import (
    _OPEN,
    _T,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_PACKET_SIZE,
    _Connection,
)
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    CanDo,
    CantDo,
    EchoRequest,
    Event,
    GrabMode,
    JobAssigned,
    NoJob,
    Noop,
    ResetAbilities,
    SetClientId,
    SetOption,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    parsed_factory,
)
from ._state import WORKER_ROWS, Server, We, WorkerMove, WorkerState, worker_move_error
from ._wire import REQ, encode_packet

__all__ = ["WorkerConnection", "WorkerState"]  # WorkerState lives in _state

# Events the decoder builds from values it just parsed (no re-validation).
_parsed_job_assigned = parsed_factory(
    JobAssigned, "handle", "function", "payload", "unique", "reducer"
)
#: events without fields are immutable values: one instance serves every time.
_NOOP = Noop()
_NO_JOB = NoJob()


_GRAB_TYPES = {
    GrabMode.PLAIN: _T.GRAB_JOB,
    GrabMode.UNIQ: _T.GRAB_JOB_UNIQ,
    GrabMode.ALL: _T.GRAB_JOB_ALL,
}
_TERMINAL_WORK = (WorkComplete, WorkFail, WorkException)
_JOB_UPDATES = (WorkData, WorkWarning, WorkStatus)


class WorkerConnection(_Connection):
    """A worker's connection: registers functions, takes jobs, reports on them.

    The connection makes its own grab-loop moves (PROTOCOL.md 5.2): it sends
    GRAB_JOB* when it has at least one ability and room for a job, PRE_SLEEP
    after NO_JOB, GRAB_JOB* again after NOOP and after a job ends, as the
    table ``_state.WORKER_TRANSITIONS`` says.  The binding only writes what
    :meth:`data_to_send` returns.

    Args:
        grab_mode: which GRAB_JOB variant to send (:class:`GrabMode`);
            ``UNIQ`` by default, so jobs carry their unique id.
        max_jobs: how many jobs this connection may hold at once; it grabs
            only while it holds fewer (so it never hoards jobs).

    Sends :class:`CanDo`, :class:`CantDo`, :class:`ResetAbilities`,
    :class:`SetClientId`, the ``Work*`` events for jobs it holds,
    :class:`EchoRequest` and :class:`SetOption`.  Reports
    :class:`JobAssigned`, :class:`NoJob`, :class:`Noop`,
    :class:`EchoReply`, :class:`OptionAccepted`, :class:`ServerError`,
    :class:`UnknownPacket` and :class:`ConnectionClosed`.
    """

    _role = "worker"

    def __init__(
        self,
        *,
        grab_mode: GrabMode = GrabMode.UNIQ,
        max_jobs: int = 1,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, max_line_length=max_line_length)
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self.grab_mode = grab_mode
        self.max_jobs = max_jobs
        self._grab_packet = encode_packet(REQ, _GRAB_TYPES[grab_mode], ())
        self._pre_sleep_packet = encode_packet(REQ, _T.PRE_SLEEP, ())
        self._worker_state = WorkerState.IDLE
        self._accepting = True
        self._abilities: dict[bytes, int | None] = {}
        self._jobs: dict[bytes, JobAssigned] = {}
        self._handlers.update(
            {
                _T.NOOP: self._on_noop,
                _T.NO_JOB: self._on_no_job,
                _T.JOB_ASSIGN: self._on_job_assign,
                _T.JOB_ASSIGN_UNIQ: self._on_job_assign_uniq,
                _T.JOB_ASSIGN_ALL: self._on_job_assign_all,
            }
        )

    @property
    def worker_state(self) -> WorkerState:
        """Where the grab loop stands (:class:`WorkerState`)."""
        return self._worker_state

    @property
    def abilities(self) -> dict[bytes, int | None]:
        """Registered functions and their CAN_DO_TIMEOUT (None: plain CAN_DO)."""
        return dict(self._abilities)

    @property
    def jobs(self) -> tuple[JobAssigned, ...]:
        """Jobs assigned to this connection and not yet ended, oldest first."""
        return tuple(self._jobs.values())

    def holds(self, handle: bytes) -> bool:
        """Whether the job *handle* is assigned to this connection and not ended."""
        return handle in self._jobs

    @property
    def held_jobs(self) -> int:
        """How many jobs this connection holds (``len(jobs)``, without the copy)."""
        return len(self._jobs)

    @property
    def accepting(self) -> bool:
        """Whether the connection grabs new jobs when it has room."""
        return self._accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        if value == self._accepting:
            return  # every move that makes room while accepting grabs on its own
        self._accepting = bool(value)
        if self._accepting:
            self._make(_ON_ROOM, We.ROOM)

    def wake(self) -> None:
        """Grab now if asleep: what a NOOP would do.

        For jobs that no NOOP announces, such as SUBMIT_JOB_EPOCH jobs that
        have come due (PROTOCOL.md 5.2); the binding calls it on a timer.
        """
        self._check_sendable()
        self._make(_ON_WAKE, We.WAKE)

    def _send(self, event: Event) -> None:
        kind = type(event)
        if kind in _TERMINAL_WORK or kind in _JOB_UPDATES:
            handle: bytes = event.handle  # type: ignore[attr-defined]
            if handle not in self._jobs:
                raise LocalProtocolError(
                    f"{kind.__name__} for job {handle!r}, which this connection does not hold"
                )
            self._queue(encode_event(event))
            if kind in _TERMINAL_WORK:
                del self._jobs[handle]
                # self._make(_ON_ROOM, We.ROOM), inlined: this runs once per job.
                try:
                    step = _ON_ROOM[self._worker_state]
                except KeyError:
                    raise worker_move_error(self._worker_state, We.ROOM) from None
                self._worker_state, react = step
                if react is not None:
                    react(self)
        elif kind is CanDo or kind is CantDo or kind is ResetAbilities:
            self._queue(encode_event(event))
            if kind is CanDo:
                self._abilities[event.function] = event.timeout  # type: ignore[attr-defined]
            elif kind is CantDo:
                self._abilities.pop(event.function, None)  # type: ignore[attr-defined]
            else:
                self._abilities.clear()
            if self._abilities:
                self._make(_ON_WAKE, We.WAKE)
            else:
                self._make(_ON_ROOM, We.ROOM)
        elif kind is EchoRequest or kind is SetOption:
            self._queue(encode_event(event))
            self._unanswered.append(event)
        elif kind is SetClientId:
            self._queue(encode_event(event))
        else:
            raise LocalProtocolError(f"a worker connection does not send {kind.__name__}")

    def _make(self, row: _Row, move: We) -> None:
        """Make our own *move* (*row* is its row of the table), then its follow-up."""
        try:
            step = row[self._worker_state]
        except KeyError:
            raise worker_move_error(self._worker_state, move) from None
        self._worker_state, react = step
        if react is not None:
            react(self)

    def _grab_if_room(self) -> None:
        """The GRAB_JOB follow-up, made while accepting, registered, with room, open."""
        if (
            self._accepting
            and self._abilities
            and len(self._jobs) < self.max_jobs
            and self._state is _OPEN
            and not self._eof
        ):
            try:
                step = _ON_GRAB_JOB[self._worker_state]
            except KeyError:
                raise worker_move_error(self._worker_state, We.GRAB_JOB) from None
            self._outbox.append(self._grab_packet)
            self._worker_state, react = step
            if react is not None:
                react(self)

    def _pre_sleep(self) -> None:
        """The PRE_SLEEP follow-up (to NO_JOB), always made (its bytes not after EOF)."""
        try:
            step = _ON_PRE_SLEEP[self._worker_state]
        except KeyError:
            raise worker_move_error(self._worker_state, We.PRE_SLEEP) from None
        if not self._eof:  # a NO_JOB parsed after the server closed: nobody to tell
            self._outbox.append(self._pre_sleep_packet)
        self._worker_state, react = step
        if react is not None:
            react(self)

    def _open_handles(self) -> tuple[bytes, ...]:
        return tuple(self._jobs)

    def _on_noop(self, arguments: list[bytes]) -> None:
        # NOOP may come at any time (PROTOCOL.md 5.2): the table has it everywhere.
        try:
            step = _ON_NOOP[self._worker_state]
        except KeyError:
            raise worker_move_error(self._worker_state, Server.NOOP) from None
        self._worker_state, react = step
        if react is not None:
            react(self)
        self._events.append(_NOOP)

    def _on_no_job(self, arguments: list[bytes]) -> None:
        try:
            step = _ON_NO_JOB[self._worker_state]
        except KeyError:
            raise worker_move_error(self._worker_state, Server.NO_JOB) from None
        self._worker_state, react = step
        if react is not None:
            react(self)
        self._events.append(_NO_JOB)

    def _on_job_assign(self, arguments: list[bytes]) -> None:
        handle, function, payload = arguments
        self._assigned(_parsed_job_assigned(handle, function, payload, None, None))

    def _on_job_assign_uniq(self, arguments: list[bytes]) -> None:
        handle, function, unique, payload = arguments
        self._assigned(_parsed_job_assigned(handle, function, payload, unique, None))

    def _on_job_assign_all(self, arguments: list[bytes]) -> None:
        handle, function, unique, reducer, payload = arguments
        self._assigned(_parsed_job_assigned(handle, function, payload, unique, reducer))

    def _assigned(self, job: JobAssigned) -> None:
        try:
            step = _ON_JOB_ASSIGN[self._worker_state]
        except KeyError:
            raise worker_move_error(self._worker_state, Server.JOB_ASSIGN) from None
        jobs = self._jobs
        if job.handle in jobs:
            raise RemoteProtocolError(f"job {job.handle!r} assigned twice to this connection")
        jobs[job.handle] = job
        self._worker_state, react = step
        if react is not None:
            react(self)
        self._events.append(job)


# The table of ``_state`` by move, each follow-up bound to the method that
# makes it, so a move costs one dict look-up and no dispatch layer.
_Reaction = Callable[[WorkerConnection], None]
_Row = dict[WorkerState, tuple[WorkerState, _Reaction | None]]
_FOLLOW_UPS: dict[We | None, _Reaction | None] = {
    None: None,
    We.GRAB_JOB: WorkerConnection._grab_if_room,
    We.PRE_SLEEP: WorkerConnection._pre_sleep,
}


def _bound_row(move: WorkerMove) -> _Row:
    return {state: (after, _FOLLOW_UPS[then]) for state, (after, then) in WORKER_ROWS[move].items()}


_ON_GRAB_JOB = _bound_row(We.GRAB_JOB)
_ON_PRE_SLEEP = _bound_row(We.PRE_SLEEP)
_ON_WAKE = _bound_row(We.WAKE)
_ON_ROOM = _bound_row(We.ROOM)
_ON_NOOP = _bound_row(Server.NOOP)
_ON_NO_JOB = _bound_row(Server.NO_JOB)
_ON_JOB_ASSIGN = _bound_row(Server.JOB_ASSIGN)
