"""What the fuzz targets share: input decoding, legal local moves, contract checks.

Each target file beside this one instruments ``gearman_proto`` and hands one of
the ``fuzz_*`` functions below to atheris.  Inputs are read front to back
with two methods of ``atheris.FuzzedDataProvider``: ``ConsumeUInt(n)``
(n bytes, little-endian) and ``ConsumeBytes(n)``.  ``PlainProvider`` does the
same without atheris, so inputs replay in plain pytest.

Input layouts (``step`` 0 feeds the stream at once, else ``step`` bytes at a time):

- packets: ``step:u8`` then server bytes.
- admin_replies: ``count:u8``, ``count`` request bytes, ``step:u8``, server bytes.
- client, worker, admin: a script of ops until the input ends (the worker
  starts with a config byte).  Each op is ``u8 % len(ops)`` of
  ``("feed", "next", "drain", "eof", *moves)``: ``feed`` is ``length:u16`` and
  that many server bytes; ``next`` takes one event, ``drain`` all of them;
  ``eof`` feeds ``b""``; a move takes an argument byte, and an argument byte
  >= 0x80 usually means "literal bytes follow" (see the move).
  ``Script`` writes such inputs.

The contract checked on top of "no other exception": receiving raises only
``RemoteProtocolError``; a move raises ``LocalProtocolError`` exactly when
it is illegal; after a remote error the state is ERROR and ``next_event``,
``receive_data`` and ``send`` keep failing; ``buffered`` stays within
``MAX_PACKET + 12`` plus what was fed since the last drain; every event is
an ``Event`` and answers the oldest unanswered request; ``Work*`` events
name foreground jobs; the worker's grab loop neither stalls nor grabs
twice; bytes sent are well-formed requests, and none after EOF.  Chunking
must not matter: the packet reader agrees with a reference parser,
``admin_replies`` with itself fed whole, and each script, rerun taking all
events after every feed op, gives the same result with its feeds whole or
cut into 1-16 byte chunks.
"""

from __future__ import annotations

import dataclasses
import operator
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from gearman_proto import (
    LAYOUTS,
    REQ,
    RES,
    AdminCommand,
    AdminConnection,
    AdminError,
    AdminOk,
    AdminRequest,
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
    JobsReply,
    JobStatus,
    JobStatusUnique,
    LocalProtocolError,
    NoJob,
    Noop,
    OptionAccepted,
    PacketTooLarge,
    PacketType,
    PidReply,
    Priority,
    PriorityStatusReply,
    ProtocolError,
    RemoteProtocolError,
    ResetAbilities,
    ServerError,
    SetClientId,
    SetOption,
    StatusReply,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    Unanswered,
    UniqueJobsReply,
    UnknownPacket,
    VerboseReply,
    VersionReply,
    WorkComplete,
    WorkData,
    WorkerConnection,
    WorkersReply,
    WorkerState,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    decode_body,
    encode_packet,
)
from gearman_proto._buffer import ReceiveBuffer

try:
    import atheris
except ImportError:  # replaying inputs in pytest needs no atheris
    atheris = None

MAX_PACKET = 4096
MAX_LINE = 512
HEADER = struct.Struct(">4sII")
#: what ``buffered`` may hold after a full drain (plus what is fed after it)
BUFFER_BOUND = max(MAX_PACKET + HEADER.size, MAX_LINE)
T = PacketType
E = TypeVar("E", bound=Event)
R = TypeVar("R")


class ContractViolation(AssertionError):
    """The core broke its contract; atheris reports it as a crash."""


def check(condition: object, message: str, *args: object) -> None:
    """Raise ContractViolation unless *condition*; *message* % *args* is built lazily."""
    if not condition:
        raise ContractViolation(message % args if args else message)


# ------------------------------------------------------------------ input


class Provider(Protocol):
    def ConsumeUInt(self, size: int) -> int: ...
    def ConsumeBytes(self, count: int) -> bytes: ...
    def remaining_bytes(self) -> int: ...


class PlainProvider:
    """The front-consuming part of ``atheris.FuzzedDataProvider``, in Python."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytearray(data)
        self._pos = 0

    def extend(self, data: bytes) -> None:
        """Append input (``record_session.py`` drives a live session this way)."""
        self._data += data

    def remaining_bytes(self) -> int:
        return len(self._data) - self._pos

    def ConsumeBytes(self, count: int) -> bytes:
        taken = bytes(self._data[self._pos : self._pos + max(count, 0)])
        self._pos += len(taken)
        return taken

    def ConsumeUInt(self, size: int) -> int:
        return int.from_bytes(self.ConsumeBytes(size), "little")


def provider(data: bytes) -> Provider:
    return atheris.FuzzedDataProvider(data) if atheris else PlainProvider(data)


def chunked(stream: bytes, step: int) -> Iterator[bytes]:
    if not step:
        yield stream
        return
    for start in range(0, len(stream), step):
        yield stream[start : start + step]


class Script:
    """Writes an op-script input: the inverse of ``Driver.step``."""

    def __init__(self, driver: type[Driver[Any]], config: bytes = b"") -> None:
        self._ops = {name: index for index, name in enumerate(driver.ops())}
        self.data = bytearray(config)

    def op(self, name: str, payload: bytes = b"") -> bytes:
        encoded = bytes([self._ops[name]]) + payload
        self.data += encoded
        return encoded

    def feed(self, data: bytes) -> bytes:
        return b"".join(
            self.op("feed", struct.pack("<H", len(part)) + part)
            for part in (data[i : i + 0xFFFF] for i in range(0, len(data), 0xFFFF))
        )

    def move(self, name: str, arg: int, literal: bytes | None = None) -> bytes:
        """A move; *literal* (at most 127 bytes) sets the 0x80 flag of *arg*."""
        if literal is None:
            return self.op(name, bytes([arg]))
        assert len(literal) < 0x80
        return self.op(name, bytes([arg | 0x80, len(literal)]) + literal)


# ------------------------------------------------------- outgoing requests


def parse_requests(data: bytes, *, text: bool = False) -> list[int | bytes]:
    """Split what a connection sent into packet types (and admin lines if *text*)."""
    items: list[int | bytes] = []
    pos = 0
    while pos < len(data):
        if text and data[pos] != 0:
            end = data.find(b"\r\n", pos)
            check(end >= 0, "admin command without CRLF: %r", data[pos:])
            items.append(data[pos:end])
            pos = end + 2
            continue
        check(len(data) - pos >= HEADER.size, "truncated header sent: %r", data[pos:])
        magic, packet_type, size = HEADER.unpack_from(data, pos)
        body = data[pos + HEADER.size : pos + HEADER.size + size]
        check(len(body) == size, "truncated packet sent: %r", data[pos:])
        check(magic == REQ and packet_type in LAYOUTS, "bad request sent: %r", data[pos:])
        check(REQ in LAYOUTS[T(packet_type)].magics, "%s sent as request", T(packet_type).name)
        decode_body(packet_type, body)  # the argument count fits the layout
        items.append(packet_type)
        pos += HEADER.size + size
    return items


# --------------------------------------------------------------- drivers


FUNCTIONS = (b"reverse", b"bgfunc", b"g", b"f")
UNIQUES = (b"", b"-", b"u1", b"u2")
PAYLOADS = (b"", b"test", b"hello\0world\xff", b"probe")
PRIORITIES = (Priority.NORMAL, Priority.HIGH, Priority.LOW, Priority.NORMAL)
#: canonical valid arguments of each admin command (none where omitted)
ADMIN_ARGS: dict[AdminCommand, tuple[bytes, ...]] = {
    AdminCommand.CANCEL_JOB: (b"H:vm:1",),
    AdminCommand.CREATE_FUNCTION: (b"f",),
    AdminCommand.DROP_FUNCTION: (b"f",),
    AdminCommand.MAXQUEUE: (b"f", b"1"),
}
#: how many words each command takes (PROTOCOL.md 8.2), inclusive
ADMIN_ARITY = dict.fromkeys(AdminCommand, (0, 0)) | {
    AdminCommand.CANCEL_JOB: (1, 1),
    AdminCommand.CREATE_FUNCTION: (1, 1),
    AdminCommand.DROP_FUNCTION: (1, 1),
    AdminCommand.MAXQUEUE: (1, 4),
    AdminCommand.SHUTDOWN: (0, 1),
}
COMMANDS = tuple(AdminCommand)
#: the requests an ERROR packet can answer
ERROR_ANSWERS = (SubmitJob, SubmitJobEpoch, SubmitReduceJob, SetOption)
REPLY_TYPES: dict[AdminCommand, type[Event]] = {
    AdminCommand.STATUS: StatusReply,
    AdminCommand.PRIORITY_STATUS: PriorityStatusReply,
    AdminCommand.WORKERS: WorkersReply,
    AdminCommand.SHOW_JOBS: JobsReply,
    AdminCommand.SHOW_UNIQUE_JOBS: UniqueJobsReply,
    AdminCommand.VERSION: VersionReply,
    AdminCommand.GETPID: PidReply,
    AdminCommand.VERBOSE: VerboseReply,
}


def admin_request(index: int) -> AdminRequest | EchoRequest:
    """One of the valid requests of an admin connection, by index (mod 14)."""
    index %= len(COMMANDS) + 1
    if index == len(COMMANDS):
        return EchoRequest(payload=b"probe")
    command = COMMANDS[index]
    return AdminRequest(command=command, arguments=ADMIN_ARGS.get(command, ()))


C = TypeVar("C", ClientConnection, WorkerConnection, AdminConnection)


def same(requests: Sequence[Event], expected: Sequence[Event]) -> bool:
    """The very request objects we sent, in order."""
    return len(requests) == len(expected) and all(map(operator.is_, requests, expected))


class Driver(Generic[C]):
    """Runs an op script against one connection and checks the contract."""

    moves: tuple[str, ...] = ("echo", "option", "client_id", "foreign", "send_failed")
    answers: tuple[type[Event], ...] = (EchoReply, OptionAccepted)
    #: events this role never sends
    foreign: tuple[Event, ...] = (CanDo(function=b"f"), WorkFail(handle=b"h"), NoJob())

    def __init__(self, fdp: Provider) -> None:
        self.fdp = fdp
        self.conn: C = self.connect()
        self.pending: deque[Event] = deque()  # requests sent, not yet answered
        self.events: list[Event] = []
        self.outbox: list[bytes] = []  # bytes sent, for a live session to write
        self.error: ProtocolError | None = None
        self.eof = self.closed = self.failed_locally = False
        #: None: feed as the script says; else feed *split* bytes at a time
        #: (0: all at once), taking every event after each second chunk and the last
        self.split: int | None = None
        self.undrained = 0  # bytes fed since next_event() last returned None

    @classmethod
    def ops(cls) -> tuple[str, ...]:
        return ("feed", "next", "drain", "eof", *cls.moves)

    def connect(self) -> C:
        raise NotImplementedError

    # -- running

    def run(self) -> None:
        while self.fdp.remaining_bytes() and self.error is None:
            self.step()
        self.finish()

    def step(self) -> None:
        ops = self.ops()
        op = ops[self.fdp.ConsumeUInt(1) % len(ops)]
        if op == "feed":
            self.feed(self.fdp.ConsumeBytes(self.fdp.ConsumeUInt(2)))
        elif op == "next":
            self.next()
        elif op == "drain":
            self.drain()
        elif op == "eof":
            self.feed(b"")
        else:
            getattr(self, "move_" + op)(self.fdp.ConsumeUInt(1))

    def finish(self) -> None:
        """Drain, then close the stream and drain again (checks ConnectionClosed)."""
        self.feed(b"")
        self.drain()

    # -- receiving

    def feed(self, data: bytes) -> None:
        if self.error is not None or self.eof:
            return
        if self.split is None:
            self.receive(data)
            return
        chunks = list(chunked(data, self.split)) if data else [b""]
        for index, chunk in enumerate(chunks):
            if self.error is None:
                self.receive(chunk)
                if index % 2 or index == len(chunks) - 1:
                    self.drain()

    def receive(self, data: bytes) -> None:
        try:
            self.conn.receive_data(data)
        except ProtocolError as error:  # parsing failed already; events before it remain
            self.check_allowed(error)
            check(self.conn.state is ConnectionState.ERROR, "%s after %r", self.conn.state, error)
            self.drain()
            check(
                self.error is error, "receive_data() raised %r, next_event() %r", error, self.error
            )
            return
        self.eof = not data
        self.undrained += len(data)
        self.check_buffered()

    def drain(self) -> None:
        while self.next():
            pass

    def next(self) -> bool:
        """Take one event; False when there is none (or the connection failed)."""
        if self.error is not None:
            return False
        try:
            event = self.conn.next_event()
        except ProtocolError as error:
            self.check_allowed(error)
            self.remote_failed(error)
            return False
        self.sent(self.conn.data_to_send())
        if event is None:
            self.undrained = 0
            self.check_buffered()
            if self.eof:
                check(self.closed, "EOF fed and drained, but no ConnectionClosed")
                check(self.conn.state is ConnectionState.CLOSED, "%s after EOF", self.conn.state)
            elif self.conn.state is ConnectionState.OPEN:
                self.settled()
            return False
        check(isinstance(event, Event), "next_event() returned %r", event)
        check(not self.closed, "%r after ConnectionClosed", event)
        self.events.append(event)
        if isinstance(event, ConnectionClosed):
            check(self.eof, "ConnectionClosed without EOF")
            self.closed = True
            self.on_closed(event)
        elif isinstance(event, (Unanswered, *self.answers)):
            # Unanswered: a later request's reply showed the server passed it over.
            self.answer(event)
        elif isinstance(event, ServerError):
            self.on_server_error(event)
        elif isinstance(event, UnknownPacket):
            check(event.packet_type > max(T), "%r for a known type", event)
        else:
            self.on_event(event)
        return True

    def check_buffered(self) -> None:
        buffered = self.conn.buffered
        check(
            buffered <= BUFFER_BOUND + self.undrained,
            "%s bytes buffered (limit %s, %s bytes fed since the last drain)",
            buffered,
            MAX_PACKET,
            self.undrained,
        )

    def check_allowed(self, error: ProtocolError) -> None:
        remote = isinstance(error, RemoteProtocolError)
        check(remote or self.failed_locally, "%r escaped while receiving", error)

    def remote_failed(self, error: ProtocolError) -> None:
        """The connection failed with *error*: it must stay failed, with that error."""
        check(self.conn.state is ConnectionState.ERROR, "%s after %r", self.conn.state, error)
        self.error = error
        for call in (self.conn.next_event, lambda: self.conn.receive_data(b"\0RES")):
            try:
                call()
            except type(error):
                continue
            raise ContractViolation(f"a dead connection accepted {call}")
        try:
            self.conn.send(EchoRequest())
        except LocalProtocolError:
            return
        raise ContractViolation("a dead connection sent")

    def answer(self, event: Event) -> None:
        request = getattr(event, "request", None)
        check(self.pending, "%r answers no request", event)
        check(request is self.pending[0], "%r does not answer %r", event, self.pending[0])
        self.pending.popleft()

    def on_server_error(self, event: ServerError) -> None:
        """ERROR stands in for JOB_CREATED or OPTION_RES (PROTOCOL.md 4.1), except
        JOB_NOT_FOUND, which answers a WORK_* packet: a packet without a reply."""
        head = self.pending[0] if self.pending else None
        answers = isinstance(head, ERROR_ANSWERS) and event.code != b"JOB_NOT_FOUND"
        check((event.request is not None) == answers, "%r with %r unanswered", event, head)
        if answers:
            self.answer(event)

    def on_closed(self, event: ConnectionClosed) -> None:
        check(same(event.unanswered, self.pending), "%r, unanswered %r", event, self.pending)
        self.pending.clear()

    def on_event(self, event: Event) -> None:
        raise ContractViolation(f"unexpected {event!r} on a {type(self.conn).__name__}")

    def settled(self) -> None:
        """Checks once every buffered byte is parsed and every event taken."""
        unanswered = self.conn.unanswered
        check(same(unanswered, self.pending), "unanswered %r, not %r", unanswered, self.pending)

    # -- local moves

    def sendable(self) -> bool:
        return self.conn.state is ConnectionState.OPEN and not self.eof

    def attempt(self, move: Callable[[], R], legal: bool) -> R | None:
        """Make a move: it must raise LocalProtocolError exactly when it is illegal."""
        try:
            result = move()
        except LocalProtocolError:
            check(not legal, "a legal move raised LocalProtocolError")
            return None
        check(legal, "an illegal move was accepted")
        self.sent(self.conn.data_to_send())
        return result

    def send(self, build: Callable[[], E], args_ok: bool = True) -> E | None:
        def move() -> E:
            event = build()
            self.sent(self.conn.send(event))
            return event

        return self.attempt(move, args_ok and self.sendable())

    def sent(self, data: bytes) -> None:
        if data:
            check(not self.eof, "%r sent after the server closed", data)
            self.outbox.append(data)
            self.on_sent(parse_requests(data, text=isinstance(self.conn, AdminConnection)))

    def on_sent(self, items: list[int | bytes]) -> None:
        pass

    def literal(self, arg: int, default: Sequence[bytes]) -> bytes:
        """Literal bytes (arg >= 0x80: length byte then bytes) or default[arg]."""
        if arg & 0x80:
            return self.fdp.ConsumeBytes(self.fdp.ConsumeUInt(1) & 0x7F)
        return default[arg % len(default)]

    def move_echo(self, arg: int) -> None:
        payload = self.literal(arg, PAYLOADS)
        if event := self.send(lambda: EchoRequest(payload=payload)):
            self.pending.append(event)

    def move_option(self, arg: int) -> None:
        option = self.literal(arg, (b"exceptions", b"frobnicate"))
        if event := self.send(lambda: SetOption(option=option)):
            self.pending.append(event)

    def move_client_id(self, arg: int) -> None:
        client_id = self.literal(arg, (b"fuzz", b""))
        self.send(lambda: SetClientId(client_id=client_id), args_ok=_name_field(client_id))

    def move_foreign(self, arg: int) -> None:
        self.send(lambda: self.foreign[arg % len(self.foreign)], args_ok=False)

    def move_send_failed(self, arg: int) -> None:
        """The binding could not write: allowed while open, fails the connection."""
        if self.conn.state is ConnectionState.OPEN:
            self.conn.send_failed()
            self.failed_locally = True
            self.drain()  # events parsed before, then the error
            check(isinstance(self.error, LocalProtocolError), "send_failed() did not fail")


def _plain_field(value: bytes, limit: int = 1 << 30) -> bool:
    return b"\0" not in value and len(value) <= limit


def _name_field(value: bytes, limit: int = 1 << 30) -> bool:
    """A function name or client id: no NUL, TAB, LF or CR (they would forge admin lines)."""
    return _plain_field(value, limit) and not any(byte in value for byte in b"\t\n\r")


class ClientDriver(Driver[ClientConnection]):
    moves = ("submit", "status", "status_unique", *Driver.moves)
    answers = (JobStatus, JobStatusUnique, *Driver.answers)

    def __init__(self, fdp: Provider) -> None:
        super().__init__(fdp)
        self.foreground: Counter[bytes] = Counter()
        self.handles: deque[bytes] = deque(maxlen=8)

    def connect(self) -> ClientConnection:
        return ClientConnection(max_packet_size=MAX_PACKET, max_line_length=MAX_LINE)

    def move_submit(self, arg: int) -> None:
        """arg bits: 0-1 priority, 2 background, 3-4 kind, 5-6 unique, 7 function."""
        function, unique = FUNCTIONS[arg >> 7], UNIQUES[(arg >> 5) & 3]
        background, kind = bool(arg & 4), (arg >> 3) & 3
        kwargs: dict[str, object]
        if kind == 2:
            kind_class: Callable[..., Event] = SubmitJobEpoch
            kwargs = {"payload": b"p"}
        elif kind == 3:
            kind_class, kwargs = SubmitReduceJob, {"reducer": b"r", "background": background}
        else:
            kind_class = SubmitJob
            kwargs = {"payload": PAYLOADS[kind], "priority": PRIORITIES[arg & 3]}
            kwargs["background"] = background
        event = self.send(lambda: kind_class(function=function, unique=unique, **kwargs))
        if event:
            self.pending.append(event)

    def move_status(self, arg: int) -> None:
        handle = self.literal(arg, self.handles or (b"H:vm:1",))
        if event := self.send(lambda: GetStatus(handle=handle), _plain_field(handle, 63)):
            self.pending.append(event)

    def move_status_unique(self, arg: int) -> None:
        unique = self.literal(arg, UNIQUES[1:])
        event = self.send(lambda: GetStatusUnique(unique=unique), _plain_field(unique, 63))
        if event:
            self.pending.append(event)

    def answer(self, event: Event) -> None:
        super().answer(event)
        if isinstance(event, JobStatus):
            check(event.handle == event.request.handle, "%r for another handle", event)
        if isinstance(event, JobStatusUnique):
            check(event.unique == event.request.unique, "%r for another unique", event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, JobCreated):
            self.answer(event)
            request = event.request
            if isinstance(request, (SubmitJob, SubmitReduceJob)) and not request.background:
                self.foreground[event.handle] += 1
            self.handles.append(event.handle)
        elif isinstance(event, (WorkData, WorkWarning, WorkStatus)):
            check(event.handle in self.foreground, "%r for no foreground job", event)
        elif isinstance(event, (WorkComplete, WorkException, WorkFail)):
            check(event.handle in self.foreground, "%r for no foreground job", event)
            self.foreground[event.handle] -= 1
            if not self.foreground[event.handle]:
                del self.foreground[event.handle]
        else:
            super().on_event(event)

    def on_closed(self, event: ConnectionClosed) -> None:
        super().on_closed(event)
        check(set(event.handles) == set(self.foreground), "%r: %s", event, self.foreground)

    def settled(self) -> None:
        super().settled()
        handles = set(self.conn.foreground_handles)
        check(
            handles == set(self.foreground), "foreground %s, expected %s", handles, self.foreground
        )


class WorkerDriver(Driver[WorkerConnection]):
    moves = ("can_do", "cant_do", "reset", "work", "accepting", "wake", *Driver.moves)
    foreign = (SubmitJob(function=b"f"), GetStatus(handle=b"h"), Noop())
    WORK = (WorkData, WorkWarning, WorkStatus, WorkComplete, WorkFail, WorkException)
    TERMINAL = (WorkComplete, WorkFail, WorkException)

    def __init__(self, fdp: Provider) -> None:
        super().__init__(fdp)
        self.abilities: set[bytes] = set()
        self.accepting = True
        self.held: dict[bytes, JobAssigned] = {}  # delivered and not ended by us
        self.ended_early: set[bytes] = set()  # ended before their JobAssigned was taken
        self.finished: deque[bytes] = deque(maxlen=3)
        self.counts: Counter[str] = Counter()

    def connect(self) -> WorkerConnection:
        """The input's first byte: grab mode, max_jobs (see ``config``)."""
        config = self.fdp.ConsumeUInt(1)
        self.grab_mode = tuple(GrabMode)[config % 3]
        self.grab_type = {GrabMode.PLAIN: T.GRAB_JOB, GrabMode.UNIQ: T.GRAB_JOB_UNIQ}.get(
            self.grab_mode, T.GRAB_JOB_ALL
        )
        return WorkerConnection(
            grab_mode=self.grab_mode,
            max_jobs=1 + (config // 3) % 3,
            max_packet_size=MAX_PACKET,
            max_line_length=MAX_LINE,
        )

    @staticmethod
    def config(grab_mode: GrabMode = GrabMode.UNIQ, max_jobs: int = 1) -> bytes:
        return bytes([tuple(GrabMode).index(grab_mode) + 3 * (max_jobs - 1)])

    def ability_move(
        self, build: Callable[[], Event], update: Callable[[], None], args_ok: bool = True
    ) -> None:
        if self.send(build, args_ok):
            update()
            check(set(self.conn.abilities) == self.abilities, "abilities %s", self.conn.abilities)

    def move_can_do(self, arg: int) -> None:
        function, timeout = FUNCTIONS[arg & 3], (None, None, 1000, 0)[(arg >> 2) & 3]
        self.ability_move(
            lambda: CanDo(function=function, timeout=timeout),
            lambda: self.abilities.add(function),
            timeout != 0,
        )

    def move_cant_do(self, arg: int) -> None:
        function = FUNCTIONS[arg & 3]
        self.ability_move(
            lambda: CantDo(function=function), lambda: self.abilities.discard(function)
        )

    def move_reset(self, arg: int) -> None:
        self.ability_move(ResetAbilities, self.abilities.clear)

    def move_work(self, arg: int) -> None:
        """arg bits 0-2: packet kind; 3-6: which handle (held, finished, unknown); 7: literal."""
        kind = self.WORK[(arg & 7) % len(self.WORK)]
        candidates = [*self.held, *self.finished, b"H:never"]
        handle = (
            self.literal(arg, candidates)
            if arg & 0x80
            else candidates[(arg >> 3) % len(candidates)]
        )
        held = {job.handle for job in self.conn.jobs}
        fields = {"numerator": b"1", "denominator": b"2"} if kind is WorkStatus else {}
        if kind not in (WorkStatus, WorkFail):
            fields["payload"] = b"result"
        event = self.send(
            lambda: kind(handle=handle, **fields), _plain_field(handle) and handle in held
        )
        if event and kind in self.TERMINAL:
            if self.held.pop(handle, None) is None:
                self.ended_early.add(handle)
            self.finished.append(handle)

    def move_accepting(self, arg: int) -> None:
        def move() -> None:
            self.conn.accepting = bool(arg & 1)

        self.attempt(move, True)
        self.accepting = bool(arg & 1)

    def move_wake(self, arg: int) -> None:
        self.attempt(self.conn.wake, self.sendable())

    def on_sent(self, items: list[int | bytes]) -> None:
        allowed = {T.CAN_DO, T.CAN_DO_TIMEOUT, T.CANT_DO, T.RESET_ABILITIES, T.PRE_SLEEP}
        allowed |= {T.ECHO_REQ, T.OPTION_REQ, T.SET_CLIENT_ID, self.grab_type}
        allowed |= {T.WORK_DATA, T.WORK_WARNING, T.WORK_STATUS, T.WORK_COMPLETE, T.WORK_FAIL}
        allowed |= {T.WORK_EXCEPTION}
        for item in items:
            check(item in allowed, "a worker sent %r", item)
            if item == self.grab_type:
                self.counts["grab"] += 1
            elif item == T.PRE_SLEEP:
                self.counts["pre_sleep"] += 1

    def on_event(self, event: Event) -> None:
        if isinstance(event, JobAssigned):
            self.counts["assigned"] += 1
            if event.handle in self.ended_early:
                self.ended_early.discard(event.handle)
            else:
                check(event.handle not in self.held, "%r while holding it", event)
                self.held[event.handle] = event
        elif isinstance(event, NoJob):
            self.counts["no_job"] += 1
        elif not isinstance(event, Noop):
            super().on_event(event)

    def on_closed(self, event: ConnectionClosed) -> None:
        super().on_closed(event)
        check(set(event.handles) == set(self.held), "%r but holding %s", event, set(self.held))

    def settled(self) -> None:
        super().settled()
        counts, state = self.counts, self.conn.worker_state
        outstanding = counts["grab"] - counts["assigned"] - counts["no_job"]
        check(outstanding in (0, 1), "%s grabs outstanding: %s", outstanding, counts)
        check((outstanding == 1) == (state is WorkerState.GRABBING), "%s, %s", state, counts)
        check(
            counts["pre_sleep"] == counts["no_job"], "PRE_SLEEP not after each NO_JOB: %s", counts
        )
        held = {job.handle for job in self.conn.jobs}
        check(
            held == set(self.held) and not self.ended_early, "jobs %s, expected %s", held, self.held
        )
        check(
            len(held) <= self.conn.max_jobs, "%s jobs held, max %s", len(held), self.conn.max_jobs
        )
        room = self.abilities and self.accepting and len(held) < self.conn.max_jobs
        check(not (room and state is WorkerState.IDLE), "idle with room to grab: %s", counts)


def line_fields(value: object) -> Iterator[bytes]:
    """The bytes inside an admin reply, which come from lines (its request left out)."""
    if isinstance(value, bytes):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from line_fields(item)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            if field.name != "request":
                yield from line_fields(getattr(value, field.name))


class AdminDriver(Driver[AdminConnection]):
    moves = ("command", "echo", "foreign", "send_failed")
    foreign = (
        SubmitJob(function=b"f"),
        CanDo(function=b"f"),
        SetOption(),
        SetClientId(client_id=b"x"),
    )

    def connect(self) -> AdminConnection:
        return AdminConnection(max_packet_size=MAX_PACKET, max_line_length=MAX_LINE)

    def move_command(self, arg: int) -> None:
        """arg < 0x80: a canonical command; else command byte, length byte, words."""
        if not arg & 0x80:
            command = COMMANDS[arg % len(COMMANDS)]
            arguments = ADMIN_ARGS.get(command, ())
        else:
            command = COMMANDS[self.fdp.ConsumeUInt(1) % len(COMMANDS)]
            raw = self.fdp.ConsumeBytes(self.fdp.ConsumeUInt(1))
            arguments = tuple(raw.split(b" ")) if raw else ()
        low, high = ADMIN_ARITY[command]
        valid = low <= len(arguments) <= high and all(
            word and not any(c in word for c in b" \t\r\n\0") for word in arguments
        )
        event = self.send(lambda: AdminRequest(command=command, arguments=arguments), valid)
        if event:
            self.pending.append(event)

    def on_event(self, event: Event) -> None:
        request = getattr(event, "request", None)
        if not isinstance(request, AdminRequest):
            super().on_event(event)
            return
        self.answer(event)
        expected = REPLY_TYPES.get(request.command, AdminOk)
        check(isinstance(event, (expected, AdminError)), "%r answers %r", event, request)
        check(not any(b"\n" in text for text in line_fields(event)), "a newline in %r", event)

    def on_sent(self, items: list[int | bytes]) -> None:
        for item in items:
            check(
                isinstance(item, bytes) or item == T.ECHO_REQ, "an admin connection sent %r", item
            )


# ---------------------------------------------------------------- targets


def fuzz_connection(driver: type[Driver[Any]], data: bytes) -> None:
    """Run the script as it says, then twice more, taking every event after
    each feed op: with each feed whole, and cut in chunks of 1-16 bytes (the
    input's last byte says how many) with events taken after every second
    chunk.  Those two runs must agree."""
    driver(provider(data)).run()
    runs = []
    for split in (0, data[-1] % 16 + 1 if data else 1):
        run = driver(provider(data))
        run.split = split
        run.run()
        runs.append((run.events, type(run.error), b"".join(run.outbox), run.conn.state))
    check(runs[0] == runs[1], "whole %r != chunked by %s: %r", runs[0], split, runs[1])


def fuzz_client(data: bytes) -> None:
    fuzz_connection(ClientDriver, data)


def fuzz_worker(data: bytes) -> None:
    fuzz_connection(WorkerDriver, data)


def fuzz_admin(data: bytes) -> None:
    fuzz_connection(AdminDriver, data)


def fuzz_admin_replies(data: bytes) -> None:
    """Pipelined admin requests, then server bytes: whole and chunked must agree."""
    fdp = provider(data)
    requests = [admin_request(fdp.ConsumeUInt(1)) for _ in range(fdp.ConsumeUInt(1) % 9)]
    step = fdp.ConsumeUInt(1)
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    runs = []
    for chunks in ([stream], chunked(stream, step)):
        driver = AdminDriver(PlainProvider())
        for request in requests:
            driver.sent(driver.conn.send(request))
            driver.pending.append(request)
        for chunk in chunks:
            if chunk:
                driver.feed(chunk)
        driver.finish()
        runs.append((driver.events, type(driver.error)))
    check(runs[0] == runs[1], "whole %r != chunked by %s: %r", runs[0], step, runs[1])


Outcome = tuple[list[tuple[bytes, int, bytes]], object]


def reference_packets(stream: bytes) -> Outcome:
    """The packets before the first text byte, bad header or incomplete packet, and
    what stopped there (an error class, "text", or None), the simple way."""
    packets: list[tuple[bytes, int, bytes]] = []
    pos = 0
    while pos < len(stream):
        if stream[pos] != 0:
            return packets, "text"  # a connection reads an admin line here
        if len(stream) - pos < HEADER.size:
            break
        magic, packet_type, size = HEADER.unpack_from(stream, pos)
        if magic not in (REQ, RES):
            return packets, RemoteProtocolError
        if size > MAX_PACKET:
            return packets, PacketTooLarge
        if len(stream) - pos - HEADER.size < size:
            break
        packets.append((magic, packet_type, stream[pos + HEADER.size : pos + HEADER.size + size]))
        pos += HEADER.size + size
    return packets, None


def check_decode(magic: bytes, packet_type: int, body: bytes) -> None:
    if packet_type not in LAYOUTS:
        return  # the connections report these as UnknownPacket without decoding
    layout = LAYOUTS[T(packet_type)]
    count = len(layout.arguments)
    try:
        arguments = decode_body(packet_type, body)
    except RemoteProtocolError:
        check(body if count == 0 else body.count(b"\0") < count - 1, "%r rejected", body)
        return
    check(len(arguments) == count, "%s arguments for %s", len(arguments), T(packet_type).name)
    check(b"\0".join(arguments) == body, "%r do not join to %r", arguments, body)
    if magic in layout.magics:
        encoded = encode_packet(magic, T(packet_type), arguments)
        check(encoded == HEADER.pack(magic, packet_type, len(body)) + body, "re-encoding differs")


def fuzz_packets(data: bytes) -> None:
    """ReceiveBuffer.take_packet and decode_body, fed in chunks, against a reference."""
    fdp = provider(data)
    step = fdp.ConsumeUInt(1)
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    buffer = ReceiveBuffer()
    packets: list[tuple[bytes, int, bytes]] = []
    stop: object = None
    chunks = list(chunked(stream, step))
    for index, chunk in enumerate(chunks):
        buffer.feed(chunk)
        if index % 2 == 0 and index < len(chunks) - 1:
            continue  # take packets after every second chunk only
        try:  # as the connections do: packets while the next byte is NUL
            while buffer.first_byte() == 0 and (packet := buffer.take_packet(MAX_PACKET)):
                packets.append(packet)
        except RemoteProtocolError as error:
            stop = type(error)
            break
        if buffer.first_byte():
            stop = "text"
            break
        if index % 4 == 1:
            buffer.compact()
        check(len(buffer) < HEADER.size + MAX_PACKET, "%s bytes left buffered", len(buffer))
    expected = reference_packets(stream)
    check((packets, stop) == expected, "got %r, expected %r", (packets, stop), expected)
    if stop is None:
        consumed = sum(HEADER.size + len(body) for _, _, body in packets)
        check(len(buffer) == len(stream) - consumed, "%s bytes buffered", len(buffer))
    for packet in packets:
        check_decode(*packet)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "packets": fuzz_packets,
    "admin_replies": fuzz_admin_replies,
    "client": fuzz_client,
    "worker": fuzz_worker,
    "admin": fuzz_admin,
}
