"""Rule-based tests: ClientConnection and WorkerConnection against small models.

Each machine plays both sides: it makes the connection send requests, plays
a server that answers only in ways gearmand could (PROTOCOL.md sections 4
and 5), and keeps a model of what the connection must know and do.  After
every step the connection's visible state must agree with the model.

The server packets are written with ``encode_packet`` (the grammar is pinned
by ``test_golden.py``); the worker's own GRAB_JOB* and PRE_SLEEP are
compared with literal bytes.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from gearman_proto import (
    RES,
    CanDo,
    CantDo,
    ClientConnection,
    ConnectionClosed,
    ConnectionState,
    EchoReply,
    EchoRequest,
    Event,
    GetStatus,
    GetStatusUnique,
    GrabMode,
    JobAssigned,
    JobCreated,
    JobStatus,
    JobStatusUnique,
    LocalProtocolError,
    NoJob,
    Noop,
    OptionAccepted,
    PacketType,
    Priority,
    RemoteProtocolError,
    ResetAbilities,
    ServerError,
    SetOption,
    SubmitJob,
    UnknownHandle,
    UnknownPacket,
    WorkComplete,
    WorkData,
    WorkerConnection,
    WorkerState,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    encode_packet,
)
from gearman_proto._codec import encode_event

_T = PacketType
MACHINE_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None)

payloads = st.binary(max_size=30)
names = st.sampled_from([b"f", b"g", b"reverse", b""])

#: SUBMIT_JOB type numbers by (priority, background), from PROTOCOL.md section 2.
SUBMIT_TYPE_NUMBERS = {
    (Priority.NORMAL, False): 7,
    (Priority.NORMAL, True): 18,
    (Priority.HIGH, False): 21,
    (Priority.HIGH, True): 32,
    (Priority.LOW, False): 33,
    (Priority.LOW, True): 34,
}
GRAB_PACKETS = {
    GrabMode.PLAIN: b"\x00REQ\x00\x00\x00\x09\x00\x00\x00\x00",
    GrabMode.UNIQ: b"\x00REQ\x00\x00\x00\x1e\x00\x00\x00\x00",
    GrabMode.ALL: b"\x00REQ\x00\x00\x00\x27\x00\x00\x00\x00",
}
PRE_SLEEP = b"\x00REQ\x00\x00\x00\x04\x00\x00\x00\x00"


def server(packet_type: PacketType, *arguments: bytes) -> bytes:
    return encode_packet(RES, packet_type, arguments)


class ClientMachine(RuleBasedStateMachine):
    """A client with submissions, status queries, echoes and options in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.conn = ClientConnection()
        self.pending: deque[Event] = deque()  # requests awaiting their direct answer
        self.open: dict[bytes, int] = {}  # foreground handle -> submissions attached
        self.finished: set[bytes] = set()
        self.handles_issued = 0
        self.dead = False

    # ------------------------------------------------------------ helpers

    def receive(self, data: st.DataObject, packet: bytes) -> list[Event]:
        """Feed *packet*, sometimes in two pieces, and return the events."""
        cut = data.draw(st.integers(0, len(packet)), label="cut")
        events: list[Event] = []
        for piece in (packet[:cut], packet[cut:]):
            if piece:
                self.conn.receive_data(piece)
                events += self.conn.events()
        return events

    def new_handle(self) -> bytes:
        self.handles_issued += 1
        return b"H:vm:%d" % self.handles_issued

    # -------------------------------------------------------------- sends

    @precondition(lambda self: not self.dead)
    @rule(
        function=names,
        payload=payloads,
        unique=st.sampled_from([b"", b"-", b"u1", b"u2"]),
        priority=st.sampled_from(Priority),
        background=st.booleans(),
    )
    def submit(
        self, function: bytes, payload: bytes, unique: bytes, priority: Priority, background: bool
    ) -> None:
        request = SubmitJob(
            function=function,
            payload=payload,
            unique=unique,
            priority=priority,
            background=background,
        )
        wire = self.conn.send(request)
        assert wire[:4] == b"\x00REQ"
        assert int.from_bytes(wire[4:8], "big") == SUBMIT_TYPE_NUMBERS[priority, background]
        self.pending.append(request)

    @precondition(lambda self: not self.dead)
    @rule(data=st.data())
    def get_status(self, data: st.DataObject) -> None:
        known = sorted(self.open.keys() | self.finished)
        handle = data.draw(st.sampled_from([*known, b"H:other:1"]), label="handle")
        request = GetStatus(handle=handle)
        assert self.conn.send(request) == encode_event(request)
        self.pending.append(request)

    @precondition(lambda self: not self.dead)
    @rule(unique=st.sampled_from([b"u1", b"u2", b"x" * 63]))
    def get_status_unique(self, unique: bytes) -> None:
        self.conn.send(GetStatusUnique(unique=unique))
        self.pending.append(GetStatusUnique(unique=unique))

    @precondition(lambda self: not self.dead)
    @rule(payload=payloads)
    def echo(self, payload: bytes) -> None:
        self.conn.send(EchoRequest(payload=payload))
        self.pending.append(EchoRequest(payload=payload))

    @precondition(lambda self: not self.dead)
    @rule(option=st.sampled_from([b"exceptions", b"frobnicate"]))
    def set_option(self, option: bytes) -> None:
        self.conn.send(SetOption(option=option))
        self.pending.append(SetOption(option=option))

    # ------------------------------------------------- server: direct answers

    @precondition(lambda self: not self.dead and self.pending)
    @rule(data=st.data())
    def server_answers_the_oldest_request(self, data: st.DataObject) -> None:
        request = self.pending.popleft()
        expected: Event
        if isinstance(request, SubmitJob):
            outcome = data.draw(st.sampled_from(["new", "coalesce", "queue_error"]))
            if outcome == "queue_error":
                expected = ServerError(
                    code=b"QUEUE_ERROR", text=b"Job queue is full", request=request
                )
                packet = server(_T.ERROR, expected.code, expected.text)
            else:
                existing = sorted(self.open)
                if outcome == "coalesce" and existing:
                    handle = data.draw(st.sampled_from(existing), label="coalesced onto")
                else:
                    handle = self.new_handle()
                expected = JobCreated(handle=handle, request=request)
                packet = server(_T.JOB_CREATED, handle)
                if not request.background:
                    self.open[handle] = self.open.get(handle, 0) + 1
                    self.finished.discard(handle)
        elif isinstance(request, GetStatus):
            known = request.handle in self.open
            expected = JobStatus(
                handle=request.handle,
                known=known,
                running=known,
                numerator=3 * known,
                denominator=10 * known,
                request=request,
            )
            numbers = (b"1", b"1", b"3", b"10") if known else (b"0", b"0", b"0", b"0")
            packet = server(_T.STATUS_RES, request.handle, *numbers)
        elif isinstance(request, GetStatusUnique):
            clients = data.draw(st.integers(0, 5), label="clients")
            expected = JobStatusUnique(
                unique=request.unique,
                known=True,
                running=False,
                numerator=0,
                denominator=0,
                client_count=clients,
                request=request,
            )
            packet = server(
                _T.STATUS_RES_UNIQUE, request.unique, b"1", b"0", b"0", b"0", b"%d" % clients
            )
        elif isinstance(request, EchoRequest):
            expected = EchoReply(payload=request.payload, request=request)
            packet = server(_T.ECHO_RES, request.payload)
        else:
            assert isinstance(request, SetOption)
            if request.option == b"exceptions":
                expected = OptionAccepted(option=request.option, request=request)
                packet = server(_T.OPTION_RES, request.option)
            else:
                expected = ServerError(
                    code=b"UNKNOWN_OPTION",
                    text=b"Server does not recognize given option",
                    request=request,
                )
                packet = server(_T.ERROR, expected.code, expected.text)
        assert self.receive(data, packet) == [expected]

    @precondition(
        lambda self: (
            not self.dead
            and not (self.pending and isinstance(self.pending[0], (SubmitJob, SetOption)))
        )
    )
    @rule(data=st.data(), code=st.sampled_from([b"JOB_NOT_FOUND", b"INVALID_COMMAND"]))
    def server_error_answering_nothing(self, data: st.DataObject, code: bytes) -> None:
        # Echoes and status queries are never answered by an ERROR (PROTOCOL.md 4.1).
        packet = server(_T.ERROR, code, b"text")
        assert self.receive(data, packet) == [ServerError(code=code, text=b"text", request=None)]

    @precondition(lambda self: not self.dead)
    @rule(data=st.data(), packet_type=st.integers(43, 2**32 - 1), body=payloads)
    def server_sends_an_unknown_packet_type(
        self, data: st.DataObject, packet_type: int, body: bytes
    ) -> None:
        header = b"\x00RES" + packet_type.to_bytes(4, "big") + len(body).to_bytes(4, "big")
        events = self.receive(data, header + body)
        assert events == [UnknownPacket(packet_type=packet_type, body=body)]

    # ----------------------------------------------------- server: WORK_*

    @precondition(lambda self: not self.dead and self.open)
    @rule(data=st.data(), kind=st.sampled_from(["data", "warning", "status"]), payload=payloads)
    def server_sends_an_update(self, data: st.DataObject, kind: str, payload: bytes) -> None:
        handle = data.draw(st.sampled_from(sorted(self.open)), label="handle")
        expected: Event
        if kind == "status":
            packet = server(_T.WORK_STATUS, handle, b"1", payload)
            expected = WorkStatus(handle=handle, numerator=b"1", denominator=payload)
        elif kind == "data":
            packet = server(_T.WORK_DATA, handle, payload)
            expected = WorkData(handle=handle, payload=payload)
        else:
            packet = server(_T.WORK_WARNING, handle, payload)
            expected = WorkWarning(handle=handle, payload=payload)
        assert self.receive(data, packet) == [expected]

    @precondition(lambda self: not self.dead and self.open)
    @rule(
        data=st.data(),
        kind=st.sampled_from(["complete", "fail", "fail+nul", "exception"]),
        payload=payloads,
    )
    def server_ends_a_job(self, data: st.DataObject, kind: str, payload: bytes) -> None:
        handle = data.draw(st.sampled_from(sorted(self.open)), label="handle")
        expected: Event
        if kind == "complete":
            packet = server(_T.WORK_COMPLETE, handle, payload)
            expected = WorkComplete(handle=handle, payload=payload)
        elif kind == "exception":
            packet = server(_T.WORK_EXCEPTION, handle, payload)
            expected = WorkException(handle=handle, payload=payload)
        else:
            packet = server(_T.WORK_FAIL, handle + b"\0" * (kind == "fail+nul"))
            expected = WorkFail(handle=handle)
        assert self.receive(data, packet) == [expected]
        self.open[handle] -= 1
        if not self.open[handle]:
            del self.open[handle]
            self.finished.add(handle)

    @precondition(lambda self: not self.dead and self.finished - self.open.keys())
    @rule(data=st.data(), packet_type=st.sampled_from([_T.WORK_DATA, _T.WORK_COMPLETE]))
    def late_packet_for_a_finished_job_is_dropped(
        self, data: st.DataObject, packet_type: PacketType
    ) -> None:
        handle = data.draw(st.sampled_from(sorted(self.finished - self.open.keys())))
        assert self.receive(data, server(packet_type, handle, b"late")) == []

    @precondition(lambda self: not self.dead)
    @rule(data=st.data(), packet_type=st.sampled_from([_T.WORK_DATA, _T.WORK_EXCEPTION]))
    def packet_for_a_handle_never_seen_raises(
        self, data: st.DataObject, packet_type: PacketType
    ) -> None:
        with pytest.raises(UnknownHandle) as raised:
            self.receive(data, server(packet_type, b"H:never:1", b"x"))
        assert raised.value.handle == b"H:never:1"
        assert self.conn.state is ConnectionState.ERROR
        self.dead = True

    @precondition(lambda self: not self.dead)
    @rule()
    def server_closes(self) -> None:
        self.conn.receive_data(b"")
        (closed,) = self.conn.events()
        assert isinstance(closed, ConnectionClosed)
        assert closed.unanswered == tuple(self.pending)
        assert sorted(closed.handles) == sorted(self.open)
        assert not closed.truncated
        assert self.conn.state is ConnectionState.CLOSED
        self.dead = True

    @precondition(lambda self: self.dead)
    @rule()
    def a_dead_connection_stays_dead(self) -> None:
        with pytest.raises(LocalProtocolError):
            self.conn.send(EchoRequest())
        if self.conn.state is ConnectionState.ERROR:
            with pytest.raises(RemoteProtocolError):
                self.conn.next_event()
            with pytest.raises(RemoteProtocolError):
                self.conn.receive_data(b"\x00")
        else:
            assert self.conn.next_event() is None
            with pytest.raises(LocalProtocolError):
                self.conn.receive_data(b"\x00")

    # ---------------------------------------------------------- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.dead:
            return
        assert self.conn.state is ConnectionState.OPEN
        assert self.conn.unanswered == tuple(self.pending)
        assert sorted(self.conn.foreground_handles) == sorted(self.open)
        assert self.conn.buffered == 0


class WorkerMachine(RuleBasedStateMachine):
    """A worker registering functions, taking jobs and reporting on them."""

    def __init__(self) -> None:
        super().__init__()
        self.conn = WorkerConnection()
        self.max_jobs = 1
        self.grab = GRAB_PACKETS[GrabMode.UNIQ]
        self.abilities: set[bytes] = set()
        self.jobs: dict[bytes, JobAssigned] = {}
        self.state = WorkerState.IDLE
        self.accepting = True
        self.pending: deque[EchoRequest] = deque()
        self.handles_issued = 0
        self.ended: list[bytes] = []
        self.closed = False

    @initialize(max_jobs=st.integers(1, 3), grab_mode=st.sampled_from(GrabMode))
    def start(self, max_jobs: int, grab_mode: GrabMode) -> None:
        self.conn = WorkerConnection(max_jobs=max_jobs, grab_mode=grab_mode)
        self.max_jobs = max_jobs
        self.grab = GRAB_PACKETS[grab_mode]

    # ---------------------------------------------------------- the model

    def grab_if_room(self) -> bytes:
        """What the worker must send by itself now (PROTOCOL.md 5.2)."""
        if (
            self.state is WorkerState.IDLE
            and self.accepting
            and self.abilities
            and len(self.jobs) < self.max_jobs
        ):
            self.state = WorkerState.GRABBING
            return self.grab
        return b""

    def wake_on_new_abilities(self) -> None:
        if self.state is WorkerState.SLEEPING and self.abilities:
            self.state = WorkerState.IDLE

    def receive(self, packet: bytes) -> list[Event]:
        self.conn.receive_data(packet)
        return list(self.conn.events())

    # -------------------------------------------------------- registration

    @precondition(lambda self: not self.closed)
    @rule(function=names, timeout=st.none() | st.integers(1, 10**6))
    def can_do(self, function: bytes, timeout: int | None) -> None:
        event = CanDo(function=function, timeout=timeout)
        wire = self.conn.send(event)
        self.abilities.add(function)
        self.wake_on_new_abilities()
        assert wire == encode_event(event) + self.grab_if_room()

    @precondition(lambda self: not self.closed)
    @rule(function=names)
    def cant_do(self, function: bytes) -> None:
        wire = self.conn.send(CantDo(function=function))
        self.abilities.discard(function)
        self.wake_on_new_abilities()
        assert wire == encode_event(CantDo(function=function)) + self.grab_if_room()

    @precondition(lambda self: not self.closed)
    @rule()
    def reset_abilities(self) -> None:
        wire = self.conn.send(ResetAbilities())
        self.abilities.clear()
        self.wake_on_new_abilities()
        assert wire == b"\x00REQ\x00\x00\x00\x03\x00\x00\x00\x00" + self.grab_if_room()

    @precondition(lambda self: not self.closed)
    @rule(accepting=st.booleans())
    def set_accepting(self, accepting: bool) -> None:
        self.conn.accepting = accepting
        self.accepting = accepting
        expected = self.grab_if_room() if accepting else b""
        assert self.conn.data_to_send() == expected

    @precondition(lambda self: not self.closed)
    @rule()
    def wake(self) -> None:
        self.conn.wake()
        if self.state is WorkerState.SLEEPING:
            self.state = WorkerState.IDLE
        assert self.conn.data_to_send() == self.grab_if_room()

    @precondition(lambda self: not self.closed)
    @rule(payload=payloads)
    def echo(self, payload: bytes) -> None:
        request = EchoRequest(payload=payload)
        assert self.conn.send(request) == encode_event(request)
        self.pending.append(request)

    # -------------------------------------------------------------- server

    @precondition(lambda self: not self.closed and self.state is WorkerState.GRABBING)
    @rule()
    def server_has_no_job(self) -> None:
        assert self.receive(server(_T.NO_JOB)) == [NoJob()]
        self.state = WorkerState.SLEEPING
        assert self.conn.data_to_send() == PRE_SLEEP

    @precondition(lambda self: not self.closed)
    @rule()
    def server_sends_noop(self) -> None:
        # NOOP may come at any time; it only matters to a sleeping worker.
        assert self.receive(server(_T.NOOP)) == [Noop()]
        if self.state is WorkerState.SLEEPING:
            self.state = WorkerState.IDLE
        assert self.conn.data_to_send() == self.grab_if_room()

    @precondition(lambda self: not self.closed and self.state is WorkerState.GRABBING)
    @rule(
        kind=st.sampled_from(["plain", "uniq", "all"]),
        function=names,
        unique=st.sampled_from([b"", b"u"]),
        payload=payloads,
    )
    def server_assigns_a_job(
        self, kind: str, function: bytes, unique: bytes, payload: bytes
    ) -> None:
        self.handles_issued += 1
        handle = b"H:vm:%d" % self.handles_issued
        if kind == "plain":
            packet = server(_T.JOB_ASSIGN, handle, function, payload)
            job = JobAssigned(handle=handle, function=function, payload=payload)
        elif kind == "uniq":
            packet = server(_T.JOB_ASSIGN_UNIQ, handle, function, unique, payload)
            job = JobAssigned(handle=handle, function=function, payload=payload, unique=unique)
        else:
            packet = server(_T.JOB_ASSIGN_ALL, handle, function, unique, b"red", payload)
            job = JobAssigned(
                handle=handle, function=function, payload=payload, unique=unique, reducer=b"red"
            )
        assert self.receive(packet) == [job]
        self.jobs[handle] = job
        self.state = WorkerState.IDLE
        assert self.conn.data_to_send() == self.grab_if_room()

    @precondition(lambda self: not self.closed and self.pending)
    @rule()
    def server_answers_an_echo(self) -> None:
        request = self.pending.popleft()
        events = self.receive(server(_T.ECHO_RES, request.payload))
        assert events == [EchoReply(payload=request.payload, request=request)]

    @precondition(lambda self: not self.closed)
    @rule()
    def server_says_job_not_found(self) -> None:
        # The answer to a WORK_* the server did not accept: it pops no request.
        events = self.receive(server(_T.ERROR, b"JOB_NOT_FOUND", b"Job does not exist on server"))
        assert events == [
            ServerError(code=b"JOB_NOT_FOUND", text=b"Job does not exist on server", request=None)
        ]

    # ------------------------------------------------------------ WORK_*

    @precondition(lambda self: not self.closed and self.jobs)
    @rule(data=st.data(), kind=st.sampled_from(["data", "warning", "status"]), payload=payloads)
    def send_an_update(self, data: st.DataObject, kind: str, payload: bytes) -> None:
        handle = data.draw(st.sampled_from(sorted(self.jobs)), label="handle")
        event: Event = {
            "data": WorkData(handle=handle, payload=payload),
            "warning": WorkWarning(handle=handle, payload=payload),
            "status": WorkStatus(handle=handle, numerator=b"1", denominator=b"2"),
        }[kind]
        assert self.conn.send(event) == encode_event(event)

    @precondition(lambda self: not self.closed and self.jobs)
    @rule(data=st.data(), kind=st.sampled_from(["complete", "fail", "exception"]))
    def send_the_end_of_a_job(self, data: st.DataObject, kind: str) -> None:
        handle = data.draw(st.sampled_from(sorted(self.jobs)), label="handle")
        event: Event = {
            "complete": WorkComplete(handle=handle, payload=b"done"),
            "fail": WorkFail(handle=handle),
            "exception": WorkException(handle=handle, payload=b"boom"),
        }[kind]
        wire = self.conn.send(event)
        del self.jobs[handle]
        self.ended.append(handle)
        assert wire == encode_event(event) + self.grab_if_room()

    @precondition(lambda self: not self.closed)
    @rule(data=st.data(), kind=st.sampled_from([WorkData, WorkComplete, WorkFail]))
    def sending_work_for_a_job_not_held_is_refused(
        self, data: st.DataObject, kind: type[WorkData] | type[WorkComplete] | type[WorkFail]
    ) -> None:
        handle = data.draw(st.sampled_from([*self.ended, b"H:never:1"]), label="handle")
        with pytest.raises(LocalProtocolError):
            self.conn.send(kind(handle=handle))
        assert self.conn.data_to_send() == b""

    @precondition(lambda self: not self.closed)
    @rule()
    def server_closes(self) -> None:
        self.conn.receive_data(b"")
        (closed,) = self.conn.events()
        assert closed == ConnectionClosed(unanswered=tuple(self.pending), handles=tuple(self.jobs))
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def a_closed_connection_sends_nothing(self) -> None:
        with pytest.raises(LocalProtocolError):
            self.conn.send(CanDo(function=b"f"))
        with pytest.raises(LocalProtocolError):
            self.conn.wake()
        self.conn.accepting = True
        assert self.conn.data_to_send() == b""
        assert self.conn.next_event() is None

    # ---------------------------------------------------------- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.closed:
            return
        assert self.conn.worker_state is self.state
        assert [job.handle for job in self.conn.jobs] == list(self.jobs)
        assert set(self.conn.abilities) == self.abilities
        assert self.conn.unanswered == tuple(self.pending)

    @invariant()
    def never_grabs_beyond_max_jobs(self) -> None:
        grabbing = self.conn.worker_state is WorkerState.GRABBING
        assert len(self.conn.jobs) + grabbing <= self.max_jobs


ClientMachine.TestCase.settings = MACHINE_SETTINGS
WorkerMachine.TestCase.settings = MACHINE_SETTINGS
TestClientConnection = ClientMachine.TestCase
TestWorkerConnection = WorkerMachine.TestCase
