"""The receive buffer: the only code that slices incoming bytes.

Owns: accumulating what the socket delivered, cutting complete binary
packets and complete admin lines off its front, and enforcing the size
limits before anything is buffered for a body.  Does not own: what a packet
means, or how its body splits into arguments (``_wire``).

Cost model: ``feed`` appends to a ``bytearray`` (amortised O(1)); taking a
packet advances a read offset (O(1)) and copies the body once; the consumed
prefix is dropped in one ``del`` per batch (``compact``).  A line search
resumes where the previous one stopped, so a line that trickles in byte by
byte is scanned once in total, not once per byte.
"""

from __future__ import annotations

from ._errors import PacketTooLarge, RemoteProtocolError
from ._wire import HEADER, REQ, RES

__all__ = ["ReceiveBuffer"]

_HEADER_SIZE = HEADER.size
_UNPACK_HEADER = HEADER.unpack_from


class ReceiveBuffer:
    """Bytes received from one peer and not yet parsed."""

    __slots__ = ("_data", "_line_scan", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0  # start of the unparsed bytes in _data
        self._line_scan = 0  # offset (from _pos) where the newline search resumes

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        if self._pos and self._pos == len(self._data):
            # Everything parsed: start afresh instead of growing forever.
            self._data.clear()
            self._pos = 0
        self._data += data

    def compact(self) -> None:
        """Drop the bytes already parsed (call once per batch, not per packet)."""
        if self._pos:
            del self._data[: self._pos]
            self._pos = 0

    def first_byte(self) -> int | None:
        """The next unparsed byte, or None when the buffer is empty."""
        if self._pos < len(self._data):
            return self._data[self._pos]
        return None

    def take_packet(self, max_body: int) -> tuple[bytes, int, bytes] | None:
        """Cut one complete binary packet off the front.

        Returns ``(magic, type, body)``, or None while the packet is
        incomplete.  The magic is checked and the announced size compared
        with *max_body* as soon as the 12 header bytes are there.

        Raises:
            RemoteProtocolError: the magic is neither ``\\0REQ`` nor ``\\0RES``.
            PacketTooLarge: the header announces a body above *max_body*.
        """
        data = self._data
        start = self._pos
        if len(data) - start < _HEADER_SIZE:
            return None
        magic, packet_type, size = _UNPACK_HEADER(data, start)
        if magic not in (RES, REQ):
            raise RemoteProtocolError(f"bad magic {magic!r} at the start of a packet")
        if size > max_body:
            raise PacketTooLarge(
                f"packet type {packet_type} announces a {size}-byte body, "
                f"above the {max_body}-byte limit",
                size=size,
                limit=max_body,
            )
        body_start = start + _HEADER_SIZE
        end = body_start + size
        if len(data) < end:
            return None
        self._pos = end
        self._line_scan = 0
        return magic, packet_type, bytes(data[body_start:end])

    def take_line(self, max_line: int) -> bytes | None:
        """Cut one LF-terminated line off the front, without its CR LF or LF.

        Returns None while no complete line is buffered.

        Raises:
            PacketTooLarge: more than *max_line* bytes are buffered without
                a newline, or the line found is longer than that.
        """
        data = self._data
        start = self._pos
        newline = data.find(b"\n", start + self._line_scan)
        if newline < 0:
            waiting = len(data) - start
            if waiting > max_line:
                raise PacketTooLarge(
                    f"admin line longer than the {max_line}-byte limit "
                    f"({waiting} bytes without a newline)",
                    size=waiting,
                    limit=max_line,
                )
            self._line_scan = waiting
            return None
        if newline - start > max_line:
            raise PacketTooLarge(
                f"admin line of {newline - start} bytes, above the {max_line}-byte limit",
                size=newline - start,
                limit=max_line,
            )
        self._pos = newline + 1
        self._line_scan = 0
        end = newline - 1 if newline > start and data[newline - 1] == 0x0D else newline
        return bytes(data[start:end])
