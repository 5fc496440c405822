"""Connection level: one object per TCP connection to a gearmand, per role.

Owns: what each role may send and receive, matching direct answers to the
requests they answer (Gearman has no request ids: PROTOCOL.md 4.1), routing
``WORK_*`` packets by handle, and the worker's own GRAB_JOB / PRE_SLEEP
moves.  Does not own: sockets, clocks, retries or the choice of server
(the bindings and the session level).

The shape is h11's: ``receive_data(bytes)`` feeds, ``next_event()`` /
``events()`` parse and report, ``send(event)`` and the intention methods
queue bytes, ``data_to_send()`` drains them, ``receive_data(b"")`` means
the peer closed.  Bytes are parsed lazily in ``next_event()``, so every
event that precedes a malformed packet is delivered before the
:class:`RemoteProtocolError` is raised.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from ._admin import BLOCK_COMMANDS, BLOCK_END, parse_block_reply, parse_error_line, parse_line_reply
from ._buffer import ReceiveBuffer
from ._codec import encode_event
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError, UnknownHandle
from ._events import (
    AdminRequest,
    CanDo,
    CantDo,
    ConnectionClosed,
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
    NoJob,
    Noop,
    OptionAccepted,
    ResetAbilities,
    ServerError,
    SetClientId,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    UnknownPacket,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    parsed_factory,
)
from ._wire import REQ, RES, PacketType, decimal_field, decode_body, encode_packet

__all__ = [
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MAX_PACKET_SIZE",
    "AdminConnection",
    "ClientConnection",
    "ConnectionState",
    "WorkerConnection",
    "WorkerState",
]

logger = logging.getLogger("gearman_proto")

#: default cap on an incoming packet body: far above any sane job, far below
#: the 4 GiB a header can announce (PROTOCOL.md 1.1, trap 18).
DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024
#: default cap on one incoming admin line; a ``workers`` line grows with the
#: number of functions a worker registered, so this is generous.
DEFAULT_MAX_LINE_LENGTH = 1024 * 1024
#: how many finished job handles a client remembers, to drop late packets
#: for them quietly (an admin ``cancel job`` of a running job produces
#: WORK_FAIL and later WORK_COMPLETE: PROTOCOL.md trap 10).
FINISHED_HANDLES_REMEMBERED = 1024
#: the highest packet type gearmand 1.1.20 knows; anything above is reported
#: as :class:`UnknownPacket` (a newer server), never fatal.
LAST_KNOWN_TYPE = max(PacketType)

_T = PacketType
_SUBMISSIONS = (SubmitJob, SubmitJobEpoch, SubmitReduceJob)
#: the ERROR code gearmand sends for WORK_* it does not know; it answers a
#: packet that has no reply of its own, so it never pops the reply queue.
_JOB_NOT_FOUND = b"JOB_NOT_FOUND"

PacketHandler = Callable[[list[bytes]], None]

# Events the decoder builds from values it just parsed (no re-validation).
_job_created = parsed_factory(JobCreated, "handle", "request")
_parsed_work_data = parsed_factory(WorkData, "handle", "payload")
_parsed_work_warning = parsed_factory(WorkWarning, "handle", "payload")
_parsed_work_status = parsed_factory(WorkStatus, "handle", "numerator", "denominator")
_parsed_work_complete = parsed_factory(WorkComplete, "handle", "payload")
_parsed_work_exception = parsed_factory(WorkException, "handle", "payload")
_parsed_work_fail = parsed_factory(WorkFail, "handle")
_parsed_job_assigned = parsed_factory(
    JobAssigned, "handle", "function", "payload", "unique", "reducer"
)
_parsed_echo_reply = parsed_factory(EchoReply, "payload", "request")
#: events without fields are immutable values: one instance serves every time.
_NOOP = Noop()
_NO_JOB = NoJob()


class ConnectionState(enum.Enum):
    """Life of a connection: ``OPEN``, then ``CLOSED`` (peer EOF) or ``ERROR``."""

    OPEN = "open"
    CLOSED = "closed"
    ERROR = "error"


_OPEN = ConnectionState.OPEN


class _Connection:
    """What every role shares: buffers, the reply queue, events, errors."""

    _role = "connection"

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        if max_packet_size < 0 or max_line_length < 1:
            raise ValueError("limits must be positive")
        self.max_packet_size = max_packet_size
        self.max_line_length = max_line_length
        self._buffer = ReceiveBuffer()
        self._outbox: list[bytes] = []
        self._events: deque[Event] = deque()
        #: requests waiting for their direct answer, oldest first.
        self._unanswered: deque[Event] = deque()
        self._state = ConnectionState.OPEN
        self._reported = False
        self._received = False
        self._eof = False
        self._error: ProtocolError | None = None
        self._handlers: dict[int, PacketHandler] = {
            _T.ERROR: self._on_error,
            _T.ECHO_RES: self._on_echo_res,
            _T.OPTION_RES: self._on_option_res,
        }

    # ------------------------------------------------------------ public

    @property
    def state(self) -> ConnectionState:
        """The connection's :class:`ConnectionState`."""
        return self._state

    @property
    def unanswered(self) -> tuple[Event, ...]:
        """Requests sent and still waiting for their direct answer, oldest first."""
        return tuple(self._unanswered)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket; ``b""`` means the server closed.

        Raises:
            RemoteProtocolError: the connection already failed (again).
            LocalProtocolError: data after end of file.
        """
        if self._error is not None:
            raise self._error
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if data:
            self._buffer.feed(data)
        else:
            self._eof = True

    def next_event(self) -> Event | None:
        """The next event, or None when the bytes so far hold no more.

        Raises:
            RemoteProtocolError: the server broke the protocol; raised once
                every event before the offending bytes has been returned,
                and again on every later call.
        """
        if not self._events:
            self._parse()
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        return None

    def next_events(self) -> list[Event]:
        """Every event the bytes so far hold, oldest first; empty when none.

        The batch form of :meth:`next_event`, for a binding that handles
        whatever one read brought: call it until it returns an empty list.

        Raises:
            RemoteProtocolError: as :meth:`next_event`: only once every
                event before the offending bytes has been returned.
        """
        events = self._events
        if not events:
            self._parse()
        if events:
            batch = list(events)
            events.clear()
            return batch
        if self._error is not None:
            raise self._error
        return []

    def events(self) -> Iterator[Event]:
        """Iterate over :meth:`next_event` until it returns None."""
        while (event := self.next_event()) is not None:
            yield event

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the server, as one string for one write."""
        outbox = self._outbox
        if not outbox:
            return b""
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        outbox.clear()
        return data

    def send(self, event: Event) -> bytes:
        """Queue *event* for the server and return every byte queued so far.

        Raises:
            LocalProtocolError: the event is not one this role sends, or the
                current state forbids it; nothing is queued then.
        """
        self.queue(event)
        return self.data_to_send()

    def queue(self, event: Event) -> None:
        """Queue *event* for the server; :meth:`data_to_send` hands the bytes out.

        For callers that batch several events into one write.  Raises as
        :meth:`send`.
        """
        if self._state is not _OPEN or self._eof:
            self._check_sendable()  # raises
        self._send(event)

    def send_failed(self) -> ConnectionClosed:
        """Tell the connection that the bytes it handed out were not written.

        The connection moves to ``ERROR``; the binding should close the
        socket.  Returns the end event, as :meth:`abandon` does.
        """
        if self._error is None:
            self._fail(LocalProtocolError("the binding could not write to the server"))
        return self.abandon()

    def abandon(self) -> ConnectionClosed:
        """The binding gives the connection up; return the end event.

        An open connection moves to ``CLOSED``.  The event lists what was in
        flight, once: a second call (or one after the close was already
        reported through :meth:`next_event`) returns an empty one.
        """
        if self._state is _OPEN:
            self._state = ConnectionState.CLOSED
        self._outbox.clear()
        closed = ConnectionClosed(
            unanswered=tuple(self._unanswered),
            handles=self._open_handles() if not self._reported else (),
            truncated=self._truncated() if not self._reported else False,
        )
        self._unanswered.clear()
        self._reported = True
        return closed

    @property
    def has_received(self) -> bool:
        """Whether the peer has sent at least one complete packet or line."""
        return self._received

    # ---------------------------------------------------------- internals

    def _check_sendable(self) -> None:
        if self._state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot send on a {self._state.value} connection")
        if self._eof:
            raise LocalProtocolError("cannot send: the server closed the connection")

    def _send(self, event: Event) -> None:
        raise NotImplementedError

    def _queue(self, data: bytes) -> None:
        # Moves the core makes on its own (PRE_SLEEP after a NO_JOB parsed
        # after the server closed) have nobody to go to.
        if not self._eof:
            self._outbox.append(data)

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        self._state = ConnectionState.ERROR

    def _parse(self) -> None:
        """Parse every complete packet buffered; on EOF, report the close.

        Does nothing on a connection that is closed or failed, or with
        nothing buffered and no end of stream to report.
        """
        if self._state is not _OPEN or self._error is not None:
            return
        buffer = self._buffer
        if not (self._eof or len(buffer)):
            return
        try:
            self._parse_buffer(buffer)
        except RemoteProtocolError as error:
            self._fail(error)
            return
        finally:
            buffer.compact()
            if self._events:
                self._received = True
        if self._eof and not self._events:
            self._close()

    def _binary_allowed(self) -> bool:
        """Whether a binary packet may start here (not inside a text reply)."""
        return True

    def _parse_buffer(self, buffer: ReceiveBuffer) -> None:
        max_body = self.max_packet_size
        handlers = self._handlers
        decode = decode_body
        while True:
            first = buffer.first_byte()
            if first is None:
                return
            if first != 0:
                if not self._on_line():
                    return
                continue
            if not self._binary_allowed():
                raise RemoteProtocolError("binary packet in the middle of an admin block reply")
            packets = buffer.take_packets(max_body)
            if not packets:
                return
            for magic, packet_type, body in packets:
                if magic != RES:
                    raise RemoteProtocolError(
                        f"bad magic: the server sent {magic!r} (packet type {packet_type})"
                    )
                handler = handlers.get(packet_type)
                if handler is None:
                    self._on_other_packet(packet_type, body)
                else:
                    handler(decode(packet_type, body))

    def _on_other_packet(self, packet_type: int, body: bytes) -> None:
        """A packet without a handler: reported if unknown, fatal if unexpected."""
        if packet_type > LAST_KNOWN_TYPE:
            self._events.append(UnknownPacket(packet_type=packet_type, body=body))
        elif packet_type == 0:
            raise RemoteProtocolError("unknown packet type 0")
        else:
            raise RemoteProtocolError(
                f"unexpected {PacketType(packet_type).name} from the server "
                f"on a {self._role} connection"
            )

    def _on_line(self) -> bool:
        """Handle one admin text line; return False while it is incomplete."""
        raise RemoteProtocolError(
            f"unexpected text from the server on a {self._role} connection "
            f"(first byte {self._buffer.first_byte():#04x})"
        )

    def _close(self) -> None:
        self._reported = True
        self._state = ConnectionState.CLOSED
        self._outbox.clear()
        self._events.append(
            ConnectionClosed(
                unanswered=tuple(self._unanswered),
                handles=self._open_handles(),
                truncated=self._truncated(),
            )
        )
        self._unanswered.clear()

    def _open_handles(self) -> tuple[bytes, ...]:
        return ()

    def _truncated(self) -> bool:
        return len(self._buffer) > 0

    def _answered(self, kind: type[Event] | tuple[type[Event], ...], packet: str) -> Event:
        """Pop the oldest unanswered request, which must be of *kind*."""
        if not self._unanswered:
            raise RemoteProtocolError(f"{packet} from the server answers no request")
        request = self._unanswered[0]
        if not isinstance(request, kind):
            raise RemoteProtocolError(
                f"{packet} from the server, but the oldest unanswered request is "
                f"{type(request).__name__}"
            )
        return self._unanswered.popleft()

    def _on_error(self, arguments: list[bytes]) -> None:
        code, text = arguments
        request = None
        if code != _JOB_NOT_FOUND and self._unanswered:
            head = self._unanswered[0]
            # ERROR stands in for JOB_CREATED or OPTION_RES (PROTOCOL.md 4.1);
            # echoes and status queries are never answered with one.
            if isinstance(head, (*_SUBMISSIONS, SetOption)):
                request = self._unanswered.popleft()
        self._events.append(ServerError(code=code, text=text, request=request))

    def _on_echo_res(self, arguments: list[bytes]) -> None:
        request = self._answered(EchoRequest, "ECHO_RES")
        self._events.append(_parsed_echo_reply(arguments[0], request))

    def _on_option_res(self, arguments: list[bytes]) -> None:
        request = self._answered(SetOption, "OPTION_RES")
        self._events.append(OptionAccepted(option=arguments[0], request=request))  # type: ignore[arg-type]


class ClientConnection(_Connection):
    """A client's connection: submits jobs, follows them, asks their status.

    Sends :class:`SubmitJob`, :class:`SubmitJobEpoch`,
    :class:`SubmitReduceJob`, :class:`GetStatus`, :class:`GetStatusUnique`,
    :class:`SetOption`, :class:`EchoRequest` and :class:`SetClientId`.
    Reports :class:`JobCreated` (carrying the submission it answers),
    ``Work*`` events of foreground jobs, :class:`JobStatus`,
    :class:`JobStatusUnique`, :class:`OptionAccepted`, :class:`EchoReply`,
    :class:`ServerError`, :class:`UnknownPacket` and
    :class:`ConnectionClosed`.

    ``WORK_*`` packets must name a handle this connection holds a
    foreground job for; a handle never seen raises :class:`UnknownHandle`,
    a late packet for a recently finished job is dropped (logged at DEBUG).
    """

    _role = "client"

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, max_line_length=max_line_length)
        #: foreground handle -> number of our submissions attached to it.
        self._foreground: dict[bytes, int] = {}
        self._finished: OrderedDict[bytes, None] = OrderedDict()
        self._handlers.update(
            {
                _T.JOB_CREATED: self._on_job_created,
                _T.STATUS_RES: self._on_status_res,
                _T.STATUS_RES_UNIQUE: self._on_status_res_unique,
                _T.WORK_DATA: self._update(WorkData),
                _T.WORK_WARNING: self._update(WorkWarning),
                _T.WORK_STATUS: self._on_work_status,
                _T.WORK_COMPLETE: self._terminal(WorkComplete),
                _T.WORK_EXCEPTION: self._terminal(WorkException),
                _T.WORK_FAIL: self._on_work_fail,
            }
        )

    @property
    def foreground_handles(self) -> tuple[bytes, ...]:
        """Handles of foreground jobs created and not yet finished."""
        return tuple(self._foreground)

    def _send(self, event: Event) -> None:
        kind = type(event)
        if kind in _CLIENT_REQUESTS:
            self._queue(encode_event(event))
            self._unanswered.append(event)
        elif kind is SetClientId:
            self._queue(encode_event(event))
        else:
            raise LocalProtocolError(f"a client connection does not send {kind.__name__}")

    def _open_handles(self) -> tuple[bytes, ...]:
        return tuple(self._foreground)

    def _on_job_created(self, arguments: list[bytes]) -> None:
        handle = arguments[0]
        request = self._answered(_SUBMISSIONS, "JOB_CREATED")
        if not getattr(request, "background", True):
            self._foreground[handle] = self._foreground.get(handle, 0) + 1
            self._finished.pop(handle, None)
        self._events.append(_job_created(handle, request))

    def _on_status_res(self, arguments: list[bytes]) -> None:
        handle, known, running, numerator, denominator = arguments
        request = self._answered(GetStatus, "STATUS_RES")
        assert isinstance(request, GetStatus)
        if handle != request.handle:
            raise RemoteProtocolError(
                f"STATUS_RES for {handle!r} answers GET_STATUS for {request.handle!r}"
            )
        self._events.append(
            JobStatus(
                handle=handle,
                known=_flag(known, "known"),
                running=_flag(running, "running"),
                numerator=decimal_field(numerator, "status field numerator"),
                denominator=decimal_field(denominator, "status field denominator"),
                request=request,
            )
        )

    def _on_status_res_unique(self, arguments: list[bytes]) -> None:
        unique, known, running, numerator, denominator, clients = arguments
        request = self._answered(GetStatusUnique, "STATUS_RES_UNIQUE")
        assert isinstance(request, GetStatusUnique)
        if unique != request.unique:
            raise RemoteProtocolError(
                f"STATUS_RES_UNIQUE for {unique!r} answers GET_STATUS_UNIQUE for {request.unique!r}"
            )
        self._events.append(
            JobStatusUnique(
                unique=unique,
                known=_flag(known, "known"),
                running=_flag(running, "running"),
                numerator=decimal_field(numerator, "status field numerator"),
                denominator=decimal_field(denominator, "status field denominator"),
                client_count=decimal_field(clients, "status field client_count"),
                request=request,
            )
        )

    def _tracked(self, handle: bytes, packet: str) -> bool:
        """Whether *handle* is ours; False (drop) for a recently finished job."""
        if handle in self._foreground:
            return True
        return self._late(handle, packet)

    def _late(self, handle: bytes, packet: str) -> bool:
        if handle in self._finished:
            logger.debug("dropping %s for finished job %r", packet, handle)
            return False
        raise UnknownHandle(f"{packet} for job handle {handle!r} that we never saw", handle=handle)

    def _update(self, kind: type[WorkData] | type[WorkWarning]) -> PacketHandler:
        packet = "WORK_DATA" if kind is WorkData else "WORK_WARNING"

        def handle(arguments: list[bytes]) -> None:
            handle, payload = arguments
            if self._tracked(handle, packet):
                self._events.append(make(handle, payload))

        make = _parsed_work_data if kind is WorkData else _parsed_work_warning
        return handle

    def _on_work_status(self, arguments: list[bytes]) -> None:
        handle, numerator, denominator = arguments
        if self._tracked(handle, "WORK_STATUS"):
            self._events.append(_parsed_work_status(handle, numerator, denominator))

    def _finish(self, handle: bytes, packet: str) -> bool:
        attached = self._foreground.get(handle)
        if attached is None:
            return self._late(handle, packet)
        if attached > 1:
            self._foreground[handle] = attached - 1
        else:
            del self._foreground[handle]
            self._finished[handle] = None
            if len(self._finished) > FINISHED_HANDLES_REMEMBERED:
                self._finished.popitem(last=False)
        return True

    def _terminal(self, kind: type[WorkComplete] | type[WorkException]) -> PacketHandler:
        packet = "WORK_COMPLETE" if kind is WorkComplete else "WORK_EXCEPTION"

        def handle(arguments: list[bytes]) -> None:
            handle, payload = arguments
            if self._finish(handle, packet):
                self._events.append(make(handle, payload))

        make = _parsed_work_complete if kind is WorkComplete else _parsed_work_exception
        return handle

    def _on_work_fail(self, arguments: list[bytes]) -> None:
        handle = arguments[0]
        # gearmand appends a NUL to the handle of the WORK_FAIL it makes out
        # of a WORK_EXCEPTION for clients without the option (PROTOCOL.md 3).
        if handle.endswith(b"\0"):
            handle = handle[:-1]
        if self._finish(handle, "WORK_FAIL"):
            self._events.append(_parsed_work_fail(handle))


_CLIENT_REQUESTS = frozenset(
    {SubmitJob, SubmitJobEpoch, SubmitReduceJob, GetStatus, GetStatusUnique, SetOption, EchoRequest}
)


def _flag(text: bytes, name: str) -> bool:
    if text == b"1":
        return True
    if text == b"0":
        return False
    raise RemoteProtocolError(f"status field {name} is {text!r}, not 0 or 1")


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


_IDLE = WorkerState.IDLE
_GRABBING = WorkerState.GRABBING

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
    after NO_JOB, GRAB_JOB* again after NOOP and after a job ends.  The
    binding only writes what :meth:`data_to_send` returns.

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
            self._grab_if_room()

    def wake(self) -> None:
        """Grab now if asleep: what a NOOP would do.

        For jobs that no NOOP announces, such as SUBMIT_JOB_EPOCH jobs that
        have come due (PROTOCOL.md 5.2); the binding calls it on a timer.
        """
        self._check_sendable()
        if self._worker_state is WorkerState.SLEEPING:
            self._worker_state = WorkerState.IDLE
            self._grab_if_room()

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
                self._grab_if_room()
        elif kind is CanDo or kind is CantDo or kind is ResetAbilities:
            self._queue(encode_event(event))
            if kind is CanDo:
                self._abilities[event.function] = event.timeout  # type: ignore[attr-defined]
            elif kind is CantDo:
                self._abilities.pop(event.function, None)  # type: ignore[attr-defined]
            else:
                self._abilities.clear()
            if self._worker_state is WorkerState.SLEEPING and self._abilities:
                # A sleeping worker is woken only by new submissions, not for
                # jobs already queued under a function it just registered.
                self._worker_state = WorkerState.IDLE
            self._grab_if_room()
        elif kind is EchoRequest or kind is SetOption:
            self._queue(encode_event(event))
            self._unanswered.append(event)
        elif kind is SetClientId:
            self._queue(encode_event(event))
        else:
            raise LocalProtocolError(f"a worker connection does not send {kind.__name__}")

    def _grab_if_room(self) -> None:
        if (
            self._worker_state is _IDLE
            and self._accepting
            and self._abilities
            and len(self._jobs) < self.max_jobs
            and self._state is _OPEN
            and not self._eof
        ):
            self._outbox.append(self._grab_packet)
            self._worker_state = _GRABBING

    def _open_handles(self) -> tuple[bytes, ...]:
        return tuple(self._jobs)

    def _on_noop(self, arguments: list[bytes]) -> None:
        # NOOP may come at any time (PROTOCOL.md 5.2); it only matters asleep.
        if self._worker_state is WorkerState.SLEEPING:
            self._worker_state = WorkerState.IDLE
            self._grab_if_room()
        self._events.append(_NOOP)

    def _on_no_job(self, arguments: list[bytes]) -> None:
        if self._worker_state is not WorkerState.GRABBING:
            raise RemoteProtocolError("NO_JOB from the server, but no GRAB_JOB was sent")
        self._queue(self._pre_sleep_packet)
        self._worker_state = WorkerState.SLEEPING
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
        if self._worker_state is not _GRABBING:
            raise RemoteProtocolError("JOB_ASSIGN from the server, but no GRAB_JOB was sent")
        jobs = self._jobs
        if job.handle in jobs:
            raise RemoteProtocolError(f"job {job.handle!r} assigned twice to this connection")
        jobs[job.handle] = job
        self._worker_state = _IDLE
        self._grab_if_room()
        self._events.append(job)


class AdminConnection(_Connection):
    """An admin connection: text commands and ECHO, one reply each, in order.

    Sends :class:`AdminRequest` and :class:`EchoRequest` (any number may be
    pipelined).  Reports one reply event per request: the typed replies of
    ``_admin`` (:class:`StatusReply`, :class:`WorkersReply`, ...),
    :class:`AdminOk`, :class:`AdminError`, :class:`EchoReply`; plus
    :class:`ServerError`, :class:`UnknownPacket` and
    :class:`ConnectionClosed`.
    """

    _role = "admin"

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, max_line_length=max_line_length)
        self._block: list[bytes] | None = None
        self._block_size = 0

    def _send(self, event: Event) -> None:
        if type(event) is AdminRequest or type(event) is EchoRequest:
            self._queue(encode_event(event))
            self._unanswered.append(event)
        else:
            raise LocalProtocolError(f"an admin connection does not send {type(event).__name__}")

    def _binary_allowed(self) -> bool:
        return self._block is None

    def _on_line(self) -> bool:
        line = self._buffer.take_line(self.max_line_length)
        if line is None:
            return False
        request = self._unanswered[0] if self._unanswered else None
        if not isinstance(request, AdminRequest):
            raise RemoteProtocolError(
                f"admin reply line {line[:80]!r} from the server answers no admin command"
            )
        if request.command not in BLOCK_COMMANDS:
            self._unanswered.popleft()
            self._events.append(parse_line_reply(request, line))
            return True
        if self._block is None:
            error = parse_error_line(request, line)
            if error is not None:
                self._unanswered.popleft()
                self._events.append(error)
                return True
            self._block = []
            self._block_size = 0
        if line == BLOCK_END:
            lines, self._block = self._block, None
            self._unanswered.popleft()
            self._events.append(parse_block_reply(request, lines))
            return True
        self._block_size += len(line) + 1
        if self._block_size > self.max_packet_size:
            raise RemoteProtocolError(
                f"admin block reply above the {self.max_packet_size}-byte limit"
            )
        self._block.append(line)
        return True

    def _truncated(self) -> bool:
        return self._block is not None or len(self._buffer) > 0


K = TypeVar("K")


def drain(connections: Mapping[K, _Connection]) -> dict[K, bytes]:
    """:meth:`~_Connection.data_to_send` of each connection, keeping the non-empty ones."""
    out = {}
    for key, connection in connections.items():
        data = connection.data_to_send()
        if data:
            out[key] = data
    return out
