"""Connection level, admin role: text commands and their replies, in order.

Owns: :class:`AdminConnection`: which requests an admin connection may
send, and matching each reply line or block (ending in ``.``) to the
oldest unanswered command, with the block size limit.  Does not own:
writing a command line or parsing a reply into a typed event (``_admin``),
splitting the stream into lines (``_buffer``), what every role shares
(``_connection``), sockets or clocks.
"""

from __future__ import annotations

from ._admin import BLOCK_COMMANDS, BLOCK_END, parse_block_reply, parse_error_line, parse_line_reply
from ._codec import encode_event
from ._connection import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_PACKET_SIZE, _Connection
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import AdminRequest, EchoRequest, Event

__all__ = ["AdminConnection"]

#: what keeping one line of a block reply costs beyond its bytes (the bytes
#: object and its list slot in CPython), counted against the block limit so
#: that a server streaming short lines without end is stopped at a bound on
#: memory, not on its bytes alone (nine-byte ``status`` lines cost five
#: times their size).
LINE_OVERHEAD = 48


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

    def _on_line(self) -> bool:
        line = self._buffer.take_line(self.max_line_length)
        if line is None:
            return False
        self._received = True
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
            self._binary_allowed = False  # no packet inside a block reply
        if line == BLOCK_END:
            lines, self._block = self._block, None
            self._binary_allowed = True
            self._unanswered.popleft()
            self._events.append(parse_block_reply(request, lines))
            return True
        self._block_size += len(line) + LINE_OVERHEAD
        if self._block_size > self.max_packet_size:
            raise RemoteProtocolError(
                f"admin block reply above the {self.max_packet_size}-byte limit "
                f"({len(self._block) + 1} lines without the final '.')"
            )
        self._block.append(line)
        return True

    def _truncated(self) -> bool:
        return self._block is not None or len(self._buffer) > 0
