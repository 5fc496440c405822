"""State enums and transition tables: a worker's grab loop, a job request's life.

Owns: :class:`WorkerState` and :data:`WORKER_TRANSITIONS` (the GRAB_JOB /
NO_JOB / PRE_SLEEP / NOOP / JOB_ASSIGN life of one worker connection),
:class:`JobState` and :data:`JOB_TRANSITIONS` (the life of one job
request; :data:`JOB_ROWS` is the same table by move), and the pure
look-ups :func:`next_worker_state` and :func:`next_job_state`.  Does not
own: parsing or I/O, deciding when a move happens, or the worker's grab
policy (room for a job, ``accepting``, having abilities): the connections
and sessions do that and consult these tables.

Every table is ``(state, what happened) -> next state``; a pair that is
not in the table is the error (STYLE.md section 4).  The worker table is
keyed by who spoke: :class:`We` for this side's moves (a missing entry is a
:class:`LocalProtocolError`), :class:`Server` for the server's (a
:class:`RemoteProtocolError`).  Being data, the tables are walked whole by
``tests/core/test_state_tables.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "JOB_ROWS",
    "JOB_TRANSITIONS",
    "WORKER_ROWS",
    "WORKER_TRANSITIONS",
    "JobMove",
    "JobState",
    "Server",
    "We",
    "WorkerMove",
    "WorkerState",
    "WorkerStep",
    "next_job_state",
    "next_worker_state",
    "worker_move_error",
]


# ------------------------------------------------------------ worker loop


class WorkerState(enum.Enum):
    """Where a worker connection's grab loop stands.

    ``IDLE``: no GRAB_JOB outstanding and not asleep (no abilities yet, no
    room for another job, or not accepting).  ``GRABBING``: a GRAB_JOB* is
    waiting for JOB_ASSIGN* or NO_JOB.  ``SLEEPING``: PRE_SLEEP sent,
    waiting for a NOOP.
    """

    IDLE = "idle"
    GRABBING = "grabbing"
    SLEEPING = "sleeping"

    # The connection looks a (state, move) pair up for every packet of its
    # grab loop; Enum.__hash__ is Python code (hash of the name), identity is
    # equivalent for singletons and stays in C.
    __hash__ = object.__hash__


class We(enum.Enum):
    """What the worker connection does on its own (a missing entry: LocalProtocolError)."""

    #: send GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL.
    GRAB_JOB = "GRAB_JOB"
    #: send PRE_SLEEP.
    PRE_SLEEP = "PRE_SLEEP"
    #: stop sleeping without a NOOP: ``wake()`` (epoch jobs come due with no
    #: NOOP, PROTOCOL.md 5.2), or an ability registered while asleep (a
    #: sleeping worker is woken only by new submissions, not for jobs already
    #: queued under a function it just registered).
    WAKE = "wake"
    #: something that may let us take a job changed: a job ended, ``accepting``
    #: turned on, an ability came or went.
    ROOM = "room"

    __hash__ = object.__hash__


class Server(enum.Enum):
    """What the server sent on a worker connection (a missing entry: RemoteProtocolError)."""

    NOOP = "NOOP"
    NO_JOB = "NO_JOB"
    #: JOB_ASSIGN, JOB_ASSIGN_UNIQ or JOB_ASSIGN_ALL.
    JOB_ASSIGN = "JOB_ASSIGN"

    __hash__ = object.__hash__


WorkerMove = We | Server
#: the next state, and the move this side makes right after (None: nothing).
#: A follow-up GRAB_JOB is made only if the grab policy allows it (accepting,
#: an ability, room for a job, the connection open); a follow-up PRE_SLEEP
#: always is.
WorkerStep = tuple[WorkerState, We | None]

_IDLE = WorkerState.IDLE
_GRABBING = WorkerState.GRABBING
_SLEEPING = WorkerState.SLEEPING

#: moves legal in every state, which change nothing unless a row below says
#: otherwise: NOOP may come at any time, also between GRAB_JOB and its answer
#: (PROTOCOL.md 5.2, 9.20), and matters only asleep; WAKE and ROOM make an
#: idle worker try to grab, and a grabbing one wait for its answer.
_ANY_STATE = (Server.NOOP, We.WAKE, We.ROOM)

_WORKER_RULES: dict[tuple[WorkerState, WorkerMove], WorkerStep] = {
    (_IDLE, We.GRAB_JOB): (_GRABBING, None),
    (_IDLE, We.ROOM): (_IDLE, We.GRAB_JOB),
    (_IDLE, We.WAKE): (_IDLE, We.GRAB_JOB),
    (_GRABBING, Server.JOB_ASSIGN): (_IDLE, We.GRAB_JOB),  # grab again if room is left
    (_GRABBING, Server.NO_JOB): (_IDLE, We.PRE_SLEEP),  # NO_JOB is answered by PRE_SLEEP
    (_IDLE, We.PRE_SLEEP): (_SLEEPING, None),
    (_SLEEPING, Server.NOOP): (_IDLE, We.GRAB_JOB),
    (_SLEEPING, We.WAKE): (_IDLE, We.GRAB_JOB),
}

#: ``(state, move) -> (next state, follow-up move)`` for one worker connection.
WORKER_TRANSITIONS: Mapping[tuple[WorkerState, WorkerMove], WorkerStep] = {
    **{(state, move): (state, None) for state in WorkerState for move in _ANY_STATE},
    **_WORKER_RULES,
}

#: :data:`WORKER_TRANSITIONS` by move: ``move -> {state: step}``, so the
#: connection pays one dict look-up per move on its hot path.
WORKER_ROWS: Mapping[WorkerMove, Mapping[WorkerState, WorkerStep]] = {
    move: {state: step for (state, m), step in WORKER_TRANSITIONS.items() if m is move}
    for move in (*We, *Server)
}


def worker_move_error(state: WorkerState, move: WorkerMove) -> ProtocolError:
    """The error for *move* where the table has no entry (raise it)."""
    legal = ", ".join(s.value for s in WORKER_ROWS[move]) or "never"
    if isinstance(move, Server):
        return RemoteProtocolError(
            f"{move.value} from the server while the worker connection is {state.value} "
            f"(expected only while {legal})"
        )
    return LocalProtocolError(
        f"the worker connection cannot make its {move.value} move while {state.value} "
        f"(only while {legal})"
    )


def next_worker_state(state: WorkerState, move: WorkerMove) -> WorkerStep:
    """``(next state, follow-up move)`` after *move* in *state*.

    Raises:
        LocalProtocolError: *move* is one of ours (:class:`We`) and not legal
            in *state*.
        RemoteProtocolError: *move* is the server's (:class:`Server`) and
            not legal in *state*.
    """
    step = WORKER_TRANSITIONS.get((state, move))
    if step is None:
        raise worker_move_error(state, move)
    return step


# ----------------------------------------------------------- job requests


class JobState(str, enum.Enum):
    """Where a job request stands; members equal python-gearman's ``JOB_*`` strings."""

    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    CREATED = "CREATED"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return repr(self.value)


class JobMove(enum.Enum):
    """What happens to a job request, as the client session sees it."""

    #: the request is sent on a connection.
    SUBMIT = "submit"
    #: JOB_CREATED answered it.
    JOB_CREATED = "JOB_CREATED"
    #: the server answered the submission with an ERROR packet, or passed
    #: over it in silence (``Unanswered``: it does not support it).
    ERROR = "ERROR"
    WORK_COMPLETE = "WORK_COMPLETE"
    WORK_FAIL = "WORK_FAIL"
    WORK_EXCEPTION = "WORK_EXCEPTION"
    #: the connection it travelled on ended (EOF, error, or abandoned).
    CONNECTION_LOST = "connection lost"

    # The session looks a move's row up for every transition: identity hashes
    # in C, Enum.__hash__ runs Python code (as for the worker enums above).
    __hash__ = object.__hash__


_J = JobState

#: ``(state, move) -> next state`` for one job request.  A request lost
#: before JOB_CREATED goes back to UNKNOWN and may be sent again; one lost
#: after it goes to UNKNOWN as *lost* (a worker may be running it: never
#: resent).  A background request ends at CREATED.
JOB_TRANSITIONS: Mapping[tuple[JobState, JobMove], JobState] = {
    (_J.UNKNOWN, JobMove.SUBMIT): _J.PENDING,
    (_J.PENDING, JobMove.JOB_CREATED): _J.CREATED,
    (_J.PENDING, JobMove.ERROR): _J.FAILED,
    (_J.PENDING, JobMove.CONNECTION_LOST): _J.UNKNOWN,
    (_J.CREATED, JobMove.WORK_COMPLETE): _J.COMPLETE,
    (_J.CREATED, JobMove.WORK_FAIL): _J.FAILED,
    (_J.CREATED, JobMove.WORK_EXCEPTION): _J.FAILED,
    (_J.CREATED, JobMove.CONNECTION_LOST): _J.UNKNOWN,  # lost
}


#: :data:`JOB_TRANSITIONS` by move: ``move -> ((state, next state), ...)``.
#: The session moves a request through it with ``is``: JobState is a ``str``
#: enum (python-gearman's strings), so hashing a member runs Python code.
JOB_ROWS: Mapping[JobMove, tuple[tuple[JobState, JobState], ...]] = {
    move: tuple((state, after) for (state, m), after in JOB_TRANSITIONS.items() if m is move)
    for move in JobMove
}


def next_job_state(state: JobState, happened: JobMove) -> JobState:
    """The state a job request in *state* moves to when *happened* happens.

    The session applies a move only after the connection has vetted the
    server's packet, so a pair missing from :data:`JOB_TRANSITIONS` is the
    session's own mistake.  *state* may be python-gearman's plain string for
    a state (code assigns ``request.state = JOB_CREATED``): it is looked up
    by equality, as in the table itself.

    Raises:
        LocalProtocolError: *happened* is not legal in *state*.
    """
    row = JOB_ROWS[happened]
    for before, after in row:
        if state is before:  # the session's own states: no hashing, no str compare
            return after
    for before, after in row:
        if state == before:
            return after
    raise LocalProtocolError(f"a {state} job request cannot take {happened.value}")
