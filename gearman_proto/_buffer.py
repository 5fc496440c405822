"""The receive buffer: the only code that slices incoming bytes.

Owns: accumulating what the socket delivered, cutting complete binary
packets and complete admin lines off its front, and enforcing the size
limits before anything is buffered for a body.  Does not own: what a packet
means, or how its body splits into arguments (``_wire``).

Cost model.  Unparsed bytes live in one immutable ``bytes`` object plus a
list of chunks that arrived after it.  Feeding appends a chunk (O(1), no
copy).  The chunks are joined only when the bytes needed for the next
packet or line are all there, which the buffer knows from the 12-byte
header (or, for lines, from a newline in the newest chunk), so a 16 MiB
packet arriving in 64 KiB pieces is copied once when complete, never once
per piece.  Taking a packet advances an offset and slices its body out
(one copy); many packets are taken per call.
"""

from __future__ import annotations

from ._errors import PacketTooLarge, RemoteProtocolError
from ._wire import HEADER, REQ, RES

__all__ = ["ReceiveBuffer"]

_HEADER_SIZE = HEADER.size
_UNPACK_HEADER = HEADER.unpack_from
_MAGICS = (REQ, RES)


class ReceiveBuffer:
    """Bytes received from one peer and not yet parsed."""

    __slots__ = ("_data", "_later", "_line_scan", "_need", "_pos", "_size")

    def __init__(self) -> None:
        self._data = b""  # the bytes being parsed, from offset _pos
        self._pos = 0
        self._later: list[bytes] = []  # chunks fed after _data, not joined yet
        self._size = 0  # unparsed bytes in total
        self._need = 1  # unparsed bytes needed before the next item can complete
        self._line_scan = 0  # unparsed bytes already searched for a newline

    def __len__(self) -> int:
        return self._size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        chunk = bytes(data)
        if not chunk:
            return
        if self._size == 0:
            self._data = chunk
            self._pos = 0
        else:
            self._later.append(chunk)
        self._size += len(chunk)

    def compact(self) -> None:
        """Drop the bytes already parsed.

        Parsing never copies the unparsed tail on its own, so a caller may
        call this between batches to release a large parsed prefix early.
        """
        if self._pos:
            self._join()

    def _join(self) -> None:
        """Make every unparsed byte contiguous in ``_data`` from offset 0."""
        parts = [self._data[self._pos :] if self._pos else self._data, *self._later]
        self._data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos = 0
        self._later = []

    def first_byte(self) -> int | None:
        """The next unparsed byte, or None when the buffer is empty."""
        if self._size == 0:
            return None
        return self._data[self._pos]

    def take_packet(self, max_body: int) -> tuple[bytes, int, bytes] | None:
        """Cut one complete binary packet off the front.

        Returns ``(magic, type, body)``, or None while the packet is
        incomplete.  Raises as :meth:`take_packets`.
        """
        packets = self.take_packets(max_body, 1)
        return packets[0] if packets else None

    def take_packets(self, max_body: int, limit: int = 0) -> list[tuple[bytes, int, bytes]]:
        """Cut complete binary packets off the front: ``[(magic, type, body), ...]``.

        Stops at an incomplete packet, at a byte that does not start a
        binary packet (an admin line), after *limit* packets (0: no limit),
        or before a bad header, which the next call then raises, so every
        good packet before it is delivered first.

        Raises:
            RemoteProtocolError: the first packet's magic is neither
                ``\\0REQ`` nor ``\\0RES``.
            PacketTooLarge: the first packet announces a body above *max_body*.
        """
        taken: list[tuple[bytes, int, bytes]] = []
        # Nothing new since an incomplete packet, or an admin line next: the
        # line is left for take_line, unjoined (its chunks are joined once,
        # when its newline has come).
        if self._size < self._need or self._data[self._pos] != 0:
            return taken
        if self._later:
            self._join()
        data = self._data
        pos = self._pos
        end_of_data = len(data)
        append = taken.append
        self._need = 1  # unless an incomplete packet says otherwise below
        while end_of_data - pos >= _HEADER_SIZE and data[pos] == 0:
            magic, packet_type, size = _UNPACK_HEADER(data, pos)
            if magic not in _MAGICS:
                if taken:
                    break
                raise RemoteProtocolError(f"bad magic {magic!r} at the start of a packet")
            if size > max_body:
                if taken:
                    break
                raise PacketTooLarge(
                    f"packet type {packet_type} announces a {size}-byte body, "
                    f"above the {max_body}-byte limit",
                    size=size,
                    limit=max_body,
                )
            body_start = pos + _HEADER_SIZE
            end = body_start + size
            if end > end_of_data:
                self._need = end - pos
                break
            append((magic, packet_type, data[body_start:end]))
            pos = end
            if limit and len(taken) == limit:
                break
        else:
            self._need = _HEADER_SIZE if end_of_data - pos and data[pos] == 0 else 1
        self._size -= pos - self._pos
        self._pos = pos
        self._line_scan = 0
        if pos == end_of_data:
            self._data = b""
            self._pos = 0
        return taken

    def _newline_in_unsearched(self) -> bool:
        """Whether the bytes past ``_line_scan`` hold a newline (no joining)."""
        scanned = self._line_scan
        head = len(self._data) - self._pos
        if scanned < head and self._data.find(b"\n", self._pos + scanned) >= 0:
            return True
        offset = head
        for chunk in self._later:
            end = offset + len(chunk)
            if end > scanned and chunk.find(b"\n", max(0, scanned - offset)) >= 0:
                return True
            offset = end
        return False

    def take_line(self, max_line: int) -> bytes | None:
        """Cut one LF-terminated line off the front, without its CR LF or LF.

        Returns None while no complete line is buffered.

        Raises:
            PacketTooLarge: more than *max_line* bytes are buffered without
                a newline, or the line found is longer than that.
        """
        if self._size == 0:
            return None
        if self._later:
            # Join only once a newline has arrived (or the limit is passed):
            # a long line trickling in is searched and copied once, not per chunk.
            if not self._newline_in_unsearched() and self._size <= max_line:
                self._line_scan = self._size
                return None
            self._join()
        data = self._data
        start = self._pos
        newline = data.find(b"\n", start + self._line_scan)
        if newline < 0:
            if self._size > max_line:
                raise PacketTooLarge(
                    f"admin line longer than the {max_line}-byte limit "
                    f"({self._size} bytes without a newline)",
                    size=self._size,
                    limit=max_line,
                )
            self._line_scan = self._size
            self._need = self._size + 1
            return None
        if newline - start > max_line:
            raise PacketTooLarge(
                f"admin line of {newline - start} bytes, above the {max_line}-byte limit",
                size=newline - start,
                limit=max_line,
            )
        self._pos = newline + 1
        self._size -= newline + 1 - start
        self._line_scan = 0
        self._need = 1
        end = newline - 1 if newline > start and data[newline - 1] == 0x0D else newline
        return data[start:end]
