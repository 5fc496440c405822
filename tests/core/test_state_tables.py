"""The transition tables of ``_state``, walked whole, and the worker connection against them.

STYLE.md section 4: a state machine is a table ``(state, what happened) ->
next state`` and a missing entry is the error, ``LocalProtocolError`` for
our moves and ``RemoteProtocolError`` for the server's.  The pure look-ups
are checked on every pair; the worker connection is then driven with bytes
and must do exactly what the table (plus its grab policy: accepting, an
ability, room for a job) says, including the bytes it answers with.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gearman_proto as gp
import gearman_proto._client_session as session_module
import gearman_proto._state as state_module
import gearman_proto._worker_connection as worker_module
from gearman_proto import (
    REQ,
    RES,
    CanDo,
    CantDo,
    JobAssigned,
    JobState,
    LocalProtocolError,
    NoJob,
    Noop,
    PacketType,
    ProtocolError,
    RemoteProtocolError,
    WorkComplete,
    WorkerConnection,
    WorkerState,
    encode_packet,
)
from gearman_proto._state import (
    JOB_ROWS,
    JOB_TRANSITIONS,
    WORKER_ROWS,
    WORKER_TRANSITIONS,
    JobMove,
    Server,
    We,
    WorkerMove,
    next_job_state,
    next_worker_state,
    worker_move_error,
)

_T = PacketType

WORKER_MOVES: list[WorkerMove] = [*We, *Server]
WORKER_PAIRS = list(itertools.product(WorkerState, WORKER_MOVES))
JOB_PAIRS = list(itertools.product(JobState, JobMove))

GRAB_JOB_UNIQ = b"\x00REQ\x00\x00\x00\x1e\x00\x00\x00\x00"
PRE_SLEEP = b"\x00REQ\x00\x00\x00\x04\x00\x00\x00\x00"
NOOP = b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"
NO_JOB = b"\x00RES\x00\x00\x00\x0a\x00\x00\x00\x00"


# ------------------------------------------------------------ pure tables


@settings(max_examples=25, deadline=None)
@given(pairs=st.permutations(WORKER_PAIRS))
def test_every_worker_pair_follows_the_table_or_raises(
    pairs: list[tuple[WorkerState, WorkerMove]],
) -> None:
    # Every example walks every pair, in a different order each time.
    for state, move in pairs:
        expected = WORKER_TRANSITIONS.get((state, move))
        if expected is None:
            error = LocalProtocolError if isinstance(move, We) else RemoteProtocolError
            with pytest.raises(error, match=move.value):
                next_worker_state(state, move)
            assert state not in WORKER_ROWS[move]
        else:
            assert next_worker_state(state, move) == expected
            assert WORKER_ROWS[move][state] == expected


@settings(max_examples=25, deadline=None)
@given(pairs=st.permutations(JOB_PAIRS))
def test_every_job_pair_follows_the_table_or_raises(
    pairs: list[tuple[JobState, JobMove]],
) -> None:
    for state, happened in pairs:
        expected = JOB_TRANSITIONS.get((state, happened))
        if expected is None:
            with pytest.raises(LocalProtocolError, match=happened.value):
                next_job_state(state, happened)
        else:
            assert next_job_state(state, happened) is expected


@settings(max_examples=200, deadline=None)
@given(moves=st.lists(st.sampled_from(list(JobMove)), max_size=8))
def test_a_job_request_walks_its_table_until_a_move_is_refused(moves: list[JobMove]) -> None:
    state = JobState.UNKNOWN
    for happened in moves:
        expected = JOB_TRANSITIONS.get((state, happened))
        if expected is None:
            with pytest.raises(LocalProtocolError):
                next_job_state(state, happened)
            return
        state = next_job_state(state, happened)
        assert isinstance(state, JobState)


def test_the_job_table_is_the_documented_life_cycle() -> None:
    j, m = JobState, JobMove
    assert dict(JOB_TRANSITIONS) == {
        (j.UNKNOWN, m.SUBMIT): j.PENDING,
        (j.PENDING, m.JOB_CREATED): j.CREATED,
        (j.PENDING, m.ERROR): j.FAILED,
        (j.PENDING, m.CONNECTION_LOST): j.UNKNOWN,
        (j.CREATED, m.WORK_COMPLETE): j.COMPLETE,
        (j.CREATED, m.WORK_FAIL): j.FAILED,
        (j.CREATED, m.WORK_EXCEPTION): j.FAILED,
        (j.CREATED, m.CONNECTION_LOST): j.UNKNOWN,
    }
    # finished requests take no further move
    assert not [pair for pair in JOB_TRANSITIONS if pair[0] in (j.COMPLETE, j.FAILED)]


def test_job_rows_are_the_table_by_move() -> None:
    regrouped = {(state, move): after for move, row in JOB_ROWS.items() for state, after in row}
    assert regrouped == dict(JOB_TRANSITIONS)
    assert set(JOB_ROWS) == set(JobMove)


@pytest.mark.parametrize(("state", "happened"), JOB_PAIRS)
def test_python_gearmans_plain_strings_move_as_their_states(
    state: JobState, happened: JobMove
) -> None:
    # Code may assign ``request.state = JOB_CREATED``: a str equal to the member.
    plain = str(state.value)
    assert type(plain) is str
    expected = JOB_TRANSITIONS.get((state, happened))
    if expected is None:
        with pytest.raises(LocalProtocolError, match=happened.value):
            next_job_state(plain, happened)  # type: ignore[arg-type]
    else:
        assert next_job_state(plain, happened) is expected


def test_job_states_equal_python_gearmans_strings() -> None:
    assert JobState.PENDING == "PENDING"
    assert str(JobState.CREATED) == "CREATED"
    assert f"{JobState.COMPLETE:>9}" == " COMPLETE"
    assert repr(JobState.FAILED) == "'FAILED'"
    assert {"UNKNOWN": 1}[JobState.UNKNOWN] == 1


def test_worker_rows_are_the_table_by_move() -> None:
    regrouped = {
        (state, move): step for move, row in WORKER_ROWS.items() for state, step in row.items()
    }
    assert regrouped == dict(WORKER_TRANSITIONS)


def test_noop_wake_and_room_are_legal_in_every_state() -> None:
    for move in (Server.NOOP, We.WAKE, We.ROOM):
        assert set(WORKER_ROWS[move]) == set(WorkerState)


def test_every_follow_up_is_legal_where_it_is_made() -> None:
    # A follow-up is made from the state its step leads to: it must not be
    # an error there, or the connection would fail on its own move.
    for (state, move), (after, then) in WORKER_TRANSITIONS.items():
        if then is not None:
            assert (after, then) in WORKER_TRANSITIONS, (state, move)


def test_worker_move_errors_say_where_the_move_is_legal() -> None:
    error = worker_move_error(WorkerState.SLEEPING, Server.NO_JOB)
    assert isinstance(error, RemoteProtocolError)
    assert str(error) == (
        "NO_JOB from the server while the worker connection is sleeping "
        "(expected only while grabbing)"
    )
    error = worker_move_error(WorkerState.GRABBING, We.GRAB_JOB)
    assert isinstance(error, LocalProtocolError)
    assert "GRAB_JOB" in str(error)
    assert "only while idle" in str(error)


# ------------------------------------------ the client session against the table

A = gp.ServerAddress("a", 1)
B = gp.ServerAddress("b", 2)


def res(packet_type: PacketType, *arguments: bytes) -> bytes:
    return encode_packet(RES, packet_type, arguments)


class Watched(gp.JobRequest):
    """A request that records every change of its state, however it is made."""

    def __init__(self, submission: gp.SubmitJob, **kwargs: int) -> None:
        self.changes: list[tuple[JobState, JobState]] = []
        super().__init__(submission, **kwargs)

    @property  # type: ignore[override]
    def state(self) -> JobState:
        return self._watched

    @state.setter
    def state(self, value: JobState) -> None:
        if hasattr(self, "_watched"):
            self.changes.append((self._watched, value))
        self._watched = value


def feed(session: gp.ClientSession, server: gp.ServerAddress, data: bytes) -> None:
    connection = session.connections[server]
    connection.receive_data(data)
    for event in connection.events():
        session.receive(server, event, 0.0)


def created(*, background: bool = False) -> tuple[gp.ClientSession, Watched]:
    """A session with one request, sent to A and created there as H:1."""
    session = gp.ClientSession([A, B])
    session.connection_made(A)
    request = Watched(gp.SubmitJob(function=b"f", background=background), max_attempts=2)
    session.submit(request, 0.0, server=A)
    feed(session, A, res(_T.JOB_CREATED, b"H:1"))
    return session, request


def refused() -> Watched:
    session = gp.ClientSession([A])
    session.connection_made(A)
    request = Watched(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0, server=A)
    feed(session, A, res(_T.ERROR, b"QUEUE_ERROR", b"full"))
    return request


def resent() -> Watched:
    # Lost before JOB_CREATED, sent again on B, lost there on its last attempt.
    session = gp.ClientSession([A, B])
    session.connection_made(A)
    request = Watched(gp.SubmitJob(function=b"f"), max_attempts=2)
    session.submit(request, 0.0, server=A)
    session.connection_lost(A, 0.0)
    session.connection_made(B)
    session.connection_lost(B, 0.0)
    return request


def ended(packet: bytes) -> Watched:
    session, request = created()
    feed(session, A, packet)
    return request


def lost_after_creation() -> Watched:
    session, request = created()
    feed(session, A, b"")
    return request


#: every life a request can have in the session, and the states it goes through.
LIVES = {
    "complete": (
        lambda: ended(res(_T.WORK_COMPLETE, b"H:1", b"r")),
        ["PENDING", "CREATED", "COMPLETE"],
    ),
    "fail": (lambda: ended(res(_T.WORK_FAIL, b"H:1")), ["PENDING", "CREATED", "FAILED"]),
    "exception": (
        lambda: ended(res(_T.WORK_EXCEPTION, b"H:1", b"e")),
        ["PENDING", "CREATED", "FAILED"],
    ),
    "background": (lambda: created(background=True)[1], ["PENDING", "CREATED"]),
    "refused": (refused, ["PENDING", "FAILED"]),
    "resent": (resent, ["PENDING", "UNKNOWN", "PENDING", "UNKNOWN"]),
    "lost": (lost_after_creation, ["PENDING", "CREATED", "UNKNOWN"]),
}


@pytest.mark.parametrize("life", LIVES)
def test_every_state_change_the_session_makes_is_in_the_table(
    monkeypatch: pytest.MonkeyPatch, life: str
) -> None:
    made: list[tuple[JobState, JobMove]] = []

    def recorded(state: JobState, happened: JobMove) -> JobState:
        made.append((state, happened))
        return next_job_state(state, happened)

    monkeypatch.setattr(session_module, "next_job_state", recorded)
    live, states = LIVES[life]
    request = live()
    # Every change of state was a move of the table, looked up as the session made it.
    assert [after for _, after in request.changes] == states
    assert len(made) == len(request.changes)
    for (before, after), (state, happened) in zip(request.changes, made, strict=True):
        assert state is before
        assert JOB_TRANSITIONS[before, happened] is after


def test_the_session_makes_every_move_of_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    made: set[tuple[JobState, JobMove]] = set()

    def recorded(state: JobState, happened: JobMove) -> JobState:
        made.add((state, happened))
        return next_job_state(state, happened)

    monkeypatch.setattr(session_module, "next_job_state", recorded)
    for live, _ in LIVES.values():
        live()
    assert made == set(JOB_TRANSITIONS)  # no row of the table is dead


@pytest.mark.parametrize("move", list(JobMove))
def test_a_job_move_taken_out_of_the_table_becomes_an_error(
    monkeypatch: pytest.MonkeyPatch, move: JobMove
) -> None:
    monkeypatch.setitem(state_module.JOB_ROWS, move, ())  # type: ignore[index]
    lives = [live for live, _ in LIVES.values()]
    with pytest.raises(LocalProtocolError, match=move.value):
        _live_all(lives)


def _live_all(lives: list[Callable[[], Watched]]) -> None:
    for live in lives:
        live()


# ------------------------------------------- the connection, bytes in and out


@dataclass
class Walk:
    """A worker connection and a model built on the table alone, moved in step."""

    max_jobs: int = 1
    conn: WorkerConnection = field(init=False)
    state: WorkerState = WorkerState.IDLE
    accepting: bool = True
    abilities: set[bytes] = field(default_factory=set)
    held: list[bytes] = field(default_factory=list)
    issued: int = 0

    def __post_init__(self) -> None:
        self.conn = WorkerConnection(max_jobs=self.max_jobs)

    # the model: the table, and the grab policy of WorkerConnection's docstring

    def follow(self, then: We | None) -> bytes:
        if then is We.GRAB_JOB:
            if not (self.accepting and self.abilities and len(self.held) < self.max_jobs):
                return b""
            out = GRAB_JOB_UNIQ
        elif then is We.PRE_SLEEP:
            out = PRE_SLEEP
        else:
            assert then is None
            return b""
        self.state, after = WORKER_TRANSITIONS[self.state, then]
        return out + self.follow(after)

    def step(self, move: WorkerMove) -> bytes | type[ProtocolError]:
        """The bytes the model expects after *move*, or the error it expects."""
        found = WORKER_TRANSITIONS.get((self.state, move))
        if found is None:
            return LocalProtocolError if isinstance(move, We) else RemoteProtocolError
        self.state, then = found
        return self.follow(then)

    # the actions, each applied to the connection and to the model

    def do(self, action: str) -> None:
        getattr(self, f"do_{action}")()

    def receive(self, move: Server, data: bytes, event: object) -> None:
        expected = self.step(move)
        self.conn.receive_data(data)
        if expected is RemoteProtocolError:
            with pytest.raises(RemoteProtocolError, match=move.value):
                self.conn.next_event()
            raise Dead
        assert self.conn.next_events() == [event]
        assert self.conn.data_to_send() == expected

    def do_noop(self) -> None:
        self.receive(Server.NOOP, NOOP, Noop())

    def do_no_job(self) -> None:
        self.receive(Server.NO_JOB, NO_JOB, NoJob())

    def do_job_assign(self) -> None:
        self.issued += 1
        handle = b"H:vm:%d" % self.issued
        packet = encode_packet(RES, _T.JOB_ASSIGN_UNIQ, (handle, b"f", b"u", b"x"))
        if (self.state, Server.JOB_ASSIGN) in WORKER_TRANSITIONS:
            self.held.append(handle)  # held before the follow-up grab looks for room
        job = JobAssigned(handle=handle, function=b"f", payload=b"x", unique=b"u")
        self.receive(Server.JOB_ASSIGN, packet, job)

    def local(self, move: We, before: bytes, act: object) -> None:
        expected = self.step(move)
        assert isinstance(expected, bytes)  # these moves are legal everywhere
        assert self.conn.data_to_send() == before + expected, act

    def do_wake(self) -> None:
        self.conn.wake()
        self.local(We.WAKE, b"", "wake")

    def do_room(self) -> None:
        # accepting turned on is a change of room; turning it off is no move
        self.conn.accepting = False
        self.accepting = self.conn.accepting = True
        self.local(We.ROOM, b"", "accepting")

    def do_stop_accepting(self) -> None:
        self.accepting = self.conn.accepting = False
        assert self.conn.data_to_send() == b""

    def do_finish(self) -> None:
        if not self.held:
            return
        handle = self.held.pop(0)
        self.conn.queue(WorkComplete(handle=handle))
        wire = encode_packet(REQ, _T.WORK_COMPLETE, (handle, b""))
        self.local(We.ROOM, wire, "finish")

    def abilities_changed(self, wire: bytes) -> None:
        # the policy: a change that leaves an ability wakes, any other is room
        self.local(We.WAKE if self.abilities else We.ROOM, wire, "abilities")

    def do_can_do(self) -> None:
        self.conn.queue(CanDo(function=b"f"))
        self.abilities.add(b"f")
        self.abilities_changed(encode_packet(REQ, _T.CAN_DO, (b"f",)))

    def do_cant_do(self) -> None:
        self.conn.queue(CantDo(function=b"f"))
        self.abilities.discard(b"f")
        self.abilities_changed(encode_packet(REQ, _T.CANT_DO, (b"f",)))

    def check(self) -> None:
        assert self.conn.worker_state is self.state
        assert [job.handle for job in self.conn.jobs] == self.held


class Dead(Exception):
    """The walk ended with the connection failed, as the model said it would."""


ACTIONS = [
    "noop",
    "no_job",
    "job_assign",
    "wake",
    "room",
    "stop_accepting",
    "finish",
    "can_do",
    "cant_do",
]

#: actions that put a fresh connection in each state.
REACH = {
    WorkerState.IDLE: ["stop_accepting", "can_do"],
    WorkerState.GRABBING: ["can_do"],
    WorkerState.SLEEPING: ["can_do", "no_job"],
}
#: the action that makes each move from outside the connection.
MAKES = {
    Server.NOOP: "noop",
    Server.NO_JOB: "no_job",
    Server.JOB_ASSIGN: "job_assign",
    We.WAKE: "wake",
    We.ROOM: "room",
}


@pytest.mark.parametrize(("state", "move"), list(itertools.product(REACH, MAKES)))
def test_the_connection_follows_the_table_in_every_state(
    state: WorkerState, move: WorkerMove
) -> None:
    walk = Walk()
    for action in REACH[state]:
        walk.do(action)
    walk.check()
    assert walk.conn.worker_state is state
    try:
        walk.do(MAKES[move])
    except Dead:
        assert (state, move) not in WORKER_TRANSITIONS
        return
    assert (state, move) in WORKER_TRANSITIONS
    walk.check()


@settings(max_examples=300, deadline=None)
@given(
    max_jobs=st.integers(1, 3),
    actions=st.lists(st.sampled_from(ACTIONS), max_size=40),
)
def test_any_walk_agrees_with_the_table(max_jobs: int, actions: list[str]) -> None:
    walk = Walk(max_jobs=max_jobs)
    for action in actions:
        try:
            walk.do(action)
        except Dead:
            return
        walk.check()


def act(conn: WorkerConnection, action: str) -> None:
    """Make *action* on a bare connection (for the tests that change its table)."""
    if action == "can_do":
        conn.send(CanDo(function=b"f"))
    elif action == "wake":
        conn.wake()
    elif action == "room":
        conn.accepting = False
        conn.accepting = True
    elif action == "finish":
        conn.send(WorkComplete(handle=conn.jobs[0].handle))
    else:
        packets = {
            "noop": NOOP,
            "no_job": NO_JOB,
            "job_assign": encode_packet(RES, _T.JOB_ASSIGN, (b"H:1", b"f", b"x")),
        }
        conn.receive_data(packets[action])
        conn.next_events()


@pytest.mark.parametrize(
    ("row", "trigger", "error"),
    [
        ("_ON_GRAB_JOB", ["can_do"], LocalProtocolError),
        ("_ON_PRE_SLEEP", ["can_do", "no_job"], LocalProtocolError),
        ("_ON_WAKE", ["wake"], LocalProtocolError),
        ("_ON_ROOM", ["room"], LocalProtocolError),
        ("_ON_ROOM", ["can_do", "job_assign", "finish"], LocalProtocolError),
        ("_ON_NOOP", ["noop"], RemoteProtocolError),
        ("_ON_NO_JOB", ["can_do", "no_job"], RemoteProtocolError),
        ("_ON_JOB_ASSIGN", ["can_do", "job_assign"], RemoteProtocolError),
    ],
)
def test_a_move_taken_out_of_the_table_becomes_its_error(
    monkeypatch: pytest.MonkeyPatch, row: str, trigger: list[str], error: type[ProtocolError]
) -> None:
    monkeypatch.setattr(worker_module, row, {})
    conn = WorkerConnection()
    *before, last = trigger
    for action in before:
        act(conn, action)
    with pytest.raises(error):
        act(conn, last)


def test_a_row_without_a_follow_up_makes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # The behaviour is in the table, not in the handlers: rows that name no
    # follow-up leave NO_JOB unanswered and do not grab again after a job.
    grabbing, idle, sleeping = WorkerState.GRABBING, WorkerState.IDLE, WorkerState.SLEEPING
    monkeypatch.setattr(worker_module, "_ON_NO_JOB", {grabbing: (sleeping, None)})
    monkeypatch.setattr(worker_module, "_ON_JOB_ASSIGN", {grabbing: (idle, None)})
    conn = WorkerConnection(max_jobs=2)
    act(conn, "can_do")
    conn.data_to_send()
    act(conn, "no_job")
    assert (conn.worker_state, conn.data_to_send()) == (sleeping, b"")
    conn.wake()
    assert conn.data_to_send() == GRAB_JOB_UNIQ
    act(conn, "job_assign")
    assert (conn.worker_state, conn.data_to_send()) == (idle, b"")


@pytest.mark.parametrize(
    ("row", "trigger", "state"),
    [
        ("_ON_GRAB_JOB", ["can_do"], WorkerState.GRABBING),
        ("_ON_PRE_SLEEP", ["can_do", "no_job"], WorkerState.SLEEPING),
    ],
)
def test_a_follow_up_named_after_our_own_move_is_made(
    monkeypatch: pytest.MonkeyPatch, row: str, trigger: list[str], state: WorkerState
) -> None:
    # Today GRAB_JOB and PRE_SLEEP lead nowhere further; a row that says
    # otherwise is obeyed all the same.
    made: list[WorkerState] = []
    steps = {
        start: (state, lambda conn: made.append(conn.worker_state))
        for start in getattr(worker_module, row)
    }
    monkeypatch.setattr(worker_module, row, steps)
    conn = WorkerConnection()
    for action in trigger:
        act(conn, action)
    assert made == [state]
