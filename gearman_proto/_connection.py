"""Connection level, shared part: what every role's connection does alike.

Owns: the base class :class:`_Connection` of the three roles (the receive
buffer, the outbox, the event queue, the queue of requests waiting for
their direct answer, the end of the stream, the error state, and the one
:class:`ConnectionClosed` that says what was in flight when it ended), the
packets every role may receive (ERROR, ECHO_RES, OPTION_RES, unknown
types), :class:`ConnectionState`, the default limits and :func:`drain`.
Does not own: what a role sends or receives beyond that
(``_client_connection``, ``_worker_connection``, ``_admin_connection``),
state tables (``_state``), sockets, clocks, retries or the choice of server
(the bindings and the session level).

The shape is h11's: ``receive_data(bytes)`` feeds, ``next_event()`` /
``events()`` parse and report, ``send(event)`` and the intention methods
queue bytes, ``data_to_send()`` drains them, ``receive_data(b"")`` means
the peer closed.  Bytes are parsed lazily in ``next_event()``, so every
event that precedes a malformed packet is delivered before the
:class:`RemoteProtocolError` is raised.  Gearman has no request ids, so
direct answers are matched to requests in order (PROTOCOL.md 4.1).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import NoReturn, TypeVar

from ._buffer import ReceiveBuffer
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import (
    ConnectionClosed,
    EchoReply,
    EchoRequest,
    Event,
    GetStatus,
    OptionAccepted,
    ServerError,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    Unanswered,
    UnknownPacket,
    parsed_factory,
)
from ._wire import REQ, RES, PacketType, decode_body

__all__ = [
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MAX_PACKET_SIZE",
    "FENCE",
    "ConnectionState",
    "drain",
]

#: default cap on an incoming packet body: far above any sane job, far below
#: the 4 GiB a header can announce (PROTOCOL.md 1.1, trap 18).
DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024
#: default cap on one incoming admin line; a ``workers`` line grows with the
#: number of functions a worker registered, so this is generous.
DEFAULT_MAX_LINE_LENGTH = 1024 * 1024
#: the highest packet type gearmand 1.1.20 knows; anything above is reported
#: as :class:`UnknownPacket` (a newer server), never fatal.
LAST_KNOWN_TYPE = max(PacketType)

_T = PacketType
_SUBMISSIONS = (SubmitJob, SubmitJobEpoch, SubmitReduceJob)
#: the ERROR code gearmand sends for WORK_* it does not know; it answers a
#: packet that has no reply of its own, so it never pops the reply queue.
_JOB_NOT_FOUND = b"JOB_NOT_FOUND"

#: a GET_STATUS sent right behind a request that some servers pass over in
#: silence while they answer every other submission (PROTOCOL.md 4.1 pairs
#: replies by order only): its STATUS_RES, which every server sends, arrives
#: before anything a later request gets, so a JOB_CREATED is never paired
#: with a submission the server ignored.  Never reported, never listed as
#: unanswered.
FENCE = GetStatus(handle=b"-")

PacketHandler = Callable[[list[bytes]], None]

# Events the decoder builds from values it just parsed (no re-validation).
_parsed_echo_reply = parsed_factory(EchoReply, "payload", "request")
#: what abandon() returns once the end was reported: nothing is in flight.
_NOTHING_MORE = ConnectionClosed()


class ConnectionState(enum.Enum):
    """Life of a connection: ``OPEN``, then ``CLOSED`` (peer EOF, ``abandon()``) or ``ERROR``."""

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
        #: bytes fed to :meth:`receive_data` so far, and bytes handed out by
        #: :meth:`data_to_send`: a binding compares them to tell whether a
        #: connection saw traffic (python-gearman's poll results).
        self.bytes_received = 0
        self.bytes_sent = 0
        self._events: deque[Event] = deque()
        #: requests waiting for their direct answer, oldest first.
        self._unanswered: deque[Event] = deque()
        self._state = ConnectionState.OPEN
        self._eof = False
        #: receive_data() brought bytes, or the end of the stream, that
        #: :meth:`_parse` has not finished with.  Without new bytes a parse
        #: finds nothing new (it stops only at an incomplete packet or line),
        #: so the calls that find nothing (the last ``next_events()`` of every
        #: read) cost no parse.
        self._to_parse = False
        #: whether a binary packet may start here; the admin connection clears
        #: it inside a text block reply.  An attribute, not a method: it is
        #: read for every batch of packets.
        self._binary_allowed = True
        self._error: ProtocolError | None = None
        #: the connection's ConnectionClosed was made (returned or queued).
        self._reported = False
        self._received = False
        #: packet types taken from the server with the REQ magic as well
        #: (a server's slip that a role forgives; see ClientConnection).
        self._req_taken: frozenset[int] = frozenset()
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
        return tuple(event for event in self._unanswered if event is not FENCE)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._buffer)

    @property
    def has_received(self) -> bool:
        """Whether a complete packet or admin line has come from the server.

        Set once parsing has taken one off the receive buffer, even one that
        then broke the protocol.  A connection that ends while this is still
        False was dropped before the server said anything: a binding may count
        that as a failed connect rather than as a working connection lost.
        """
        return self._received

    @property
    def remote_error(self) -> RemoteProtocolError | None:
        """The :class:`RemoteProtocolError` that ended the connection, or None.

        Set once parsing met bytes that break the protocol (garbage, a bad
        magic, an oversized header or line, a packet the role never
        receives); the same error :meth:`next_event` raises.
        """
        error = self._error
        return error if isinstance(error, RemoteProtocolError) else None

    @property
    def proven(self) -> bool:
        """Whether the server proved itself on this connection: it sent a
        complete packet or line (:attr:`has_received`) and nothing that
        broke the protocol.

        The sessions replace a lost proven connection at once
        (:meth:`ServerPool.lost`); any other loss counts as a failed connect
        and puts the server in back-off, so a server that drops new
        connections, or answers them with garbage, makes nobody spin.
        """
        return self._received and not isinstance(self._error, RemoteProtocolError)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket; ``b""`` means the server closed.

        Raises:
            RemoteProtocolError: the connection already failed (again).
            LocalProtocolError: data after end of file, or on a connection
                given up by :meth:`abandon` (or :meth:`send_failed`, which
                raises its own error again).
        """
        if self._state is not _OPEN or self._eof:
            self._refuse_data()
        if data:
            self._buffer.feed(data)
            self.bytes_received += len(data)
        else:
            self._eof = True
        self._to_parse = True

    def next_event(self) -> Event | None:
        """The next event, or None when the bytes so far hold no more.

        Raises:
            RemoteProtocolError: the server broke the protocol; raised once
                every event before the offending bytes has been returned,
                and again on every later call.
        """
        if not self._events and self._to_parse:
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
        if not events and self._to_parse:
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
        self.bytes_sent += len(data)
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

    def abandon(self) -> ConnectionClosed:
        """Give the connection up; return the :class:`ConnectionClosed` that ends it.

        For a binding that stops using the connection itself: a write failed
        or stalled, a protocol error was raised, a deadline passed in the
        middle of a write, or it shuts down.  An ``OPEN`` connection becomes
        ``CLOSED`` (an ``ERROR`` one stays ``ERROR``), nothing queued is
        sent, and no more data is accepted.

        The event says what was in flight: the requests still waiting for
        their direct answer, the job handles whose outcome is now unknown, and
        ``truncated`` if received bytes were left unparsed.  It is made once
        per connection: if this connection already made it (an earlier
        ``abandon()`` or :meth:`send_failed`, or the last event after
        ``receive_data(b"")``), the event returned is empty.

        Events parsed before the call stay available from :meth:`next_event`
        and :meth:`next_events`, and come before the returned event: handle
        them first.
        """
        if self._state is _OPEN:
            self._state = ConnectionState.CLOSED
        self._outbox.clear()
        return self._report()

    def send_failed(self) -> ConnectionClosed:
        """Tell the connection that the bytes it handed out were not written.

        The connection moves to ``ERROR``, so the model never believes those
        bytes arrived; the binding should close the socket.  Otherwise as
        :meth:`abandon`: returns the same :class:`ConnectionClosed`, once.
        """
        self._fail(LocalProtocolError("the binding could not write to the server"))
        return self.abandon()

    # ---------------------------------------------------------- internals

    def _refuse_data(self) -> NoReturn:
        if self._error is not None:
            raise self._error
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        raise LocalProtocolError("receive_data() on an abandoned connection")

    def _check_sendable(self) -> None:
        if self._state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot send on a {self._state.value} connection")
        if self._eof:
            raise LocalProtocolError("cannot send: the server closed the connection")

    def _send(self, event: Event) -> None:
        raise NotImplementedError

    def _queue(self, data: bytes) -> None:
        # Only for what queue() let through: the moves a role makes on its own
        # check the end of the stream themselves (nothing goes out after EOF).
        self._outbox.append(data)

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        self._state = ConnectionState.ERROR

    def _parse(self) -> None:
        """Parse every complete packet buffered; on EOF, report the close.

        Callers call it only while :attr:`_to_parse` is set.  Does nothing on
        a connection that is closed or failed.
        """
        if self._state is not _OPEN or self._error is not None:
            return
        buffer = self._buffer
        try:
            self._parse_buffer(buffer)
        except RemoteProtocolError as error:
            self._fail(error)
            return
        finally:
            buffer.compact()
        # Parsed up to an incomplete packet or line; only an end of stream
        # still to report (after the events before it) is left to do.
        self._to_parse = self._eof
        if self._eof and not self._events:
            self._close()

    def _parse_buffer(self, buffer: ReceiveBuffer) -> None:
        max_body = self.max_packet_size
        handlers = self._handlers
        decode = decode_body
        while True:
            # Packets first: a read usually brings whole packets and nothing
            # else, which then costs this call and the first_byte() below.
            packets = buffer.take_packets(max_body) if self._binary_allowed else None
            if packets:
                self._received = True  # once per batch, not per packet
                for magic, packet_type, body in packets:
                    if magic != RES and (magic != REQ or packet_type not in self._req_taken):
                        raise RemoteProtocolError(
                            f"bad magic: the server sent {magic!r} (packet type {packet_type})"
                        )
                    handler = handlers.get(packet_type)
                    if handler is None:
                        self._on_other_packet(packet_type, body)
                    else:
                        handler(decode(packet_type, body))
            first = buffer.first_byte()
            if first is None:
                return
            if first != 0:
                if not self._on_line():
                    return
            elif not self._binary_allowed:
                raise RemoteProtocolError("binary packet in the middle of an admin block reply")
            elif not packets:
                return  # an incomplete packet: wait for more bytes

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
        self._state = ConnectionState.CLOSED
        self._outbox.clear()
        self._events.append(self._report())

    def _report(self) -> ConnectionClosed:
        """The connection's one :class:`ConnectionClosed`; an empty one after that."""
        if self._reported:
            return _NOTHING_MORE
        self._reported = True
        event = ConnectionClosed(
            unanswered=self.unanswered,
            handles=self._open_handles(),
            truncated=self._truncated(),
        )
        self._unanswered.clear()
        return event

    def _open_handles(self) -> tuple[bytes, ...]:
        return ()

    def _truncated(self) -> bool:
        return len(self._buffer) > 0

    def _answered(self, kind: type[Event] | tuple[type[Event], ...], packet: str) -> Event:
        """Pop the oldest unanswered request of *kind*, which the reply *packet* answers.

        Servers answer in order, so the requests before it, of other kinds,
        were passed over in silence (a server that does not know them, like
        gear's ``Server``): each is reported as :class:`Unanswered` first.
        No unanswered request of *kind* is a :class:`RemoteProtocolError`.
        """
        unanswered = self._unanswered
        if unanswered and isinstance(unanswered[0], kind):
            return unanswered.popleft()  # the usual case
        for position, request in enumerate(unanswered):
            if isinstance(request, kind):
                for _ in range(position):
                    skipped = unanswered.popleft()
                    if skipped is not FENCE:
                        self._events.append(Unanswered(request=skipped))
                return unanswered.popleft()
        if not unanswered:
            raise RemoteProtocolError(f"{packet} from the server answers no request")
        raise RemoteProtocolError(
            f"{packet} from the server, but no unanswered request takes it (the oldest is "
            f"{type(unanswered[0]).__name__})"
        )

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


K = TypeVar("K")


def drain(connections: Mapping[K, _Connection]) -> dict[K, bytes]:
    """:meth:`~_Connection.data_to_send` of each connection, keeping the non-empty ones."""
    out = {}
    for key, connection in connections.items():
        data = connection.data_to_send()
        if data:
            out[key] = data
    return out
