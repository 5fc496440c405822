"""The engine of `devtools.faultproxy`: the subprocess that moves the bytes.

Owns: one selectors loop in its own process that accepts loopback
connections, opens one upstream connection per accepted one, frames both
byte streams (Gearman binary packets and admin text lines), applies the
faults it is told to apply at exact stream positions, and reports what it
saw. Does not own: the API the tests use (`devtools.faultproxy.FaultProxy`
starts this process and mirrors its reports), nor any protocol decision
beyond framing.

It runs as a script, ``python -I _faultproxy_engine.py --control-fd N ...``,
so it imports nothing of the project: standard library only, self-contained.
The control channel is a stream socket (one end of a socketpair) carrying
JSON objects, one per line:

- commands from the parent: ``{"op": ..., "id": n, ...}``, each answered by
  ``{"re": n, "ok": true, "value": ...}`` or ``{"re": n, "ok": false,
  "error": "..."}``; they are handled in the order they arrive;
- reports (``{"ev": ...}``), written as things happen, before the reply to
  any command read afterwards, so a command's reply comes after every report
  of what happened before the command arrived.

When the control channel ends (the parent exited or closed it) the engine
closes every socket and exits.

Stream positions. Each direction of a connection (a "flow": ``to_server``
reads the accepted socket and writes the upstream one, ``to_client`` the
reverse) has a position: the number of bytes *released* so far, forwarded or
dropped. Bytes are read into a pending queue, released from it (at once, or
later under a delay or a drip) through the framer, which always stops at the
end of the packet in hand so that a packet's start and end are positions the
loop visits, and then written. A fault's trigger is a condition on the flow
(position, packets completed, packets of a type begun or completed); the loop
checks it before each release and fires the fault at the first position
where it holds, so nothing past that position has been released then. A
packet is reported when its last byte was handed to the kernel (or dropped):
"the GRAB_JOB passed" means the upstream socket has it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import random
import selectors
import socket
import struct
import sys
import time
import traceback
from collections import Counter, deque
from typing import Any

#: Packet type numbers and names (PROTOCOL.md section 2; the same table as
#: ``gearman_proto.PacketType``, kept here so the proxy does not depend on the
#: code it tests; a test checks that the two agree).
PACKET_NAMES: dict[int, str] = {
    1: "CAN_DO",
    2: "CANT_DO",
    3: "RESET_ABILITIES",
    4: "PRE_SLEEP",
    5: "UNUSED",
    6: "NOOP",
    7: "SUBMIT_JOB",
    8: "JOB_CREATED",
    9: "GRAB_JOB",
    10: "NO_JOB",
    11: "JOB_ASSIGN",
    12: "WORK_STATUS",
    13: "WORK_COMPLETE",
    14: "WORK_FAIL",
    15: "GET_STATUS",
    16: "ECHO_REQ",
    17: "ECHO_RES",
    18: "SUBMIT_JOB_BG",
    19: "ERROR",
    20: "STATUS_RES",
    21: "SUBMIT_JOB_HIGH",
    22: "SET_CLIENT_ID",
    23: "CAN_DO_TIMEOUT",
    24: "ALL_YOURS",
    25: "WORK_EXCEPTION",
    26: "OPTION_REQ",
    27: "OPTION_RES",
    28: "WORK_DATA",
    29: "WORK_WARNING",
    30: "GRAB_JOB_UNIQ",
    31: "JOB_ASSIGN_UNIQ",
    32: "SUBMIT_JOB_HIGH_BG",
    33: "SUBMIT_JOB_LOW",
    34: "SUBMIT_JOB_LOW_BG",
    35: "SUBMIT_JOB_SCHED",
    36: "SUBMIT_JOB_EPOCH",
    37: "SUBMIT_REDUCE_JOB",
    38: "SUBMIT_REDUCE_JOB_BACKGROUND",
    39: "GRAB_JOB_ALL",
    40: "JOB_ASSIGN_ALL",
    41: "GET_STATUS_UNIQUE",
    42: "STATUS_RES_UNIQUE",
}
#: The name of an admin text line (a command or one reply line).
TEXT = "TEXT"
#: The name of bytes that cannot be framed: a binary header with an unknown
#: magic (everything after it in that flow), or a header cut short by the
#: end of the stream.
UNFRAMED = "UNFRAMED"

TO_SERVER = "to_server"
TO_CLIENT = "to_client"
DIRECTIONS = (TO_SERVER, TO_CLIENT)
ACTIONS = ("cut", "delay", "drip", "stop_reading", "black_hole")

_HEADER = struct.Struct(">4sII")  # magic, type, body size (PROTOCOL.md 1.1)
_MAGICS = {b"\0REQ": "REQ", b"\0RES": "RES"}
_RECV_SIZE = 65536
#: A flow stops reading while this many bytes wait in it (pending or unsent),
#: so the proxy passes a peer's back-pressure on instead of buffering.
_HIGH_WATER = 256 * 1024
#: Characters of a text line kept in its report.
_TEXT_KEPT = 200
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def _name_of(number: int) -> str:
    return PACKET_NAMES.get(number, f"TYPE_{number}")


class _Header:
    """What the framer knows of the packet at the head of a flow, before it begins."""

    __slots__ = ("magic", "name", "number", "size")

    def __init__(self, name: str, number: int | None, magic: str | None, size: int | None):
        self.name = name
        self.number = number
        self.magic = magic
        self.size = size  # None: a text line (ends at its newline) or unframed bytes


class _Packet:
    """The packet being released: where it began and what has passed of it."""

    __slots__ = ("dropped", "end", "header", "ordinal", "start", "text")

    def __init__(self, header: _Header, start: int, ordinal: int) -> None:
        self.header = header
        self.start = start
        self.end = None if header.size is None else start + header.size
        self.ordinal = ordinal  # 1 for the first packet of its name in this flow
        self.text = bytearray()
        self.dropped = False


class _Chunk:
    """Bytes read and not released yet (``data[start:]``), and when they may go."""

    __slots__ = ("data", "ready_at", "start")

    def __init__(self, ready_at: float, data: bytes) -> None:
        self.ready_at = ready_at
        self.data = data
        self.start = 0

    def __len__(self) -> int:
        return len(self.data) - self.start

    def head(self, size: int) -> bytes:
        return self.data[self.start : self.start + size]


class _Fault:
    """One armed fault: an action and the trigger that fires it."""

    __slots__ = ("action", "fault_id", "params", "trigger")

    def __init__(self, fault_id: int, action: str, params: dict[str, Any], trigger: dict[str, Any]):
        self.fault_id = fault_id
        self.action = action
        self.params = params
        self.trigger = trigger


class _Flow:
    """One direction of a proxied connection (see the module docstring)."""

    def __init__(self, conn: _Connection, direction: str) -> None:
        self.conn = conn
        self.direction = direction
        self.pending: deque[_Chunk] = deque()
        self.pending_size = 0
        self.out = bytearray()  # released and forwarded, not yet written
        self.forwarded = 0  # bytes put into `out` so far
        self.records: deque[tuple[int, dict[str, Any]]] = deque()  # (forwarded at end, report)
        self.read = 0
        self.released = 0
        self.sent = 0
        self.dropped = 0
        self.writes = 0
        self.eof = False  # the source ended
        self.eof_forwarded = False
        # faults in effect
        self.reading = True
        self.hold = False
        self.black_hole = False
        self.delay = 0.0
        self.drip: float | None = None
        self.drip_next = 0.0
        self.wake_at = math.inf
        self.faults: list[_Fault] = []
        # framing
        self.completed = 0
        self.begun_by_name: Counter[str] = Counter()
        self.completed_by_name: Counter[str] = Counter()
        self.packet: _Packet | None = None
        self.unframed = False
        self.dirty = False

    # -- state the loop asks for ---------------------------------------------

    def wants_read(self) -> bool:
        return (
            self.reading
            and not self.eof
            and self.conn.established
            and not self.conn.closing
            and self.pending_size + len(self.out) < _HIGH_WATER
        )

    def status(self) -> dict[str, Any]:
        return {
            "ev": "io",
            "c": self.conn.index,
            "d": self.direction,
            "read": self.read,
            "sent": self.sent,
            "dropped": self.dropped,
            "writes": self.writes,
            "eof": self.eof,
            "eof_forwarded": self.eof_forwarded,
            "reading": self.reading and not self.hold,
            "held": self.pending_size,
        }

    # -- input ---------------------------------------------------------------

    def take(self, data: bytes, now: float) -> None:
        """Queue *data* just read from the source."""
        self.pending.append(_Chunk(now + self.delay, data))
        self.pending_size += len(data)
        self.read += len(data)
        self.dirty = True

    def end_of_source(self) -> None:
        self.eof = True
        self.dirty = True

    # -- framing ---------------------------------------------------------------

    def _head_bytes(self, limit: int) -> bytes:
        """Up to *limit* pending bytes from the front, ready or not."""
        parts: list[bytes] = []
        size = 0
        for chunk in self.pending:
            parts.append(chunk.head(limit - size))
            size += len(parts[-1])
            if size >= limit:
                break
        return b"".join(parts)

    def peek(self) -> _Header | None:
        """The header of the packet that begins at the head, None until it is all there."""
        if self.unframed:
            return _Header(UNFRAMED, None, None, None)
        head = self._head_bytes(_HEADER.size)
        if not head:
            return None
        if head[0] != 0:
            return _Header(TEXT, None, None, None)
        if len(head) < _HEADER.size:
            if self.eof:  # the stream ends inside a header
                return _Header(UNFRAMED, None, None, None)
            return None
        magic, number, length = _HEADER.unpack(head)
        if magic not in _MAGICS:
            return _Header(UNFRAMED, None, None, None)
        return _Header(_name_of(number), number, _MAGICS[magic], _HEADER.size + length)

    def _ready(self, now: float) -> int:
        """Bytes at the front of the pending queue whose time has come."""
        ready = 0
        for chunk in self.pending:
            if chunk.ready_at > now:
                self.wake_at = min(self.wake_at, chunk.ready_at)
                break
            ready += len(chunk)
        return ready

    def _newline_bound(self, ready: int) -> int:
        """Bytes up to and including the first newline within *ready* bytes (else *ready*)."""
        seen = 0
        for chunk in self.pending:
            window = chunk.head(ready - seen)
            found = window.find(b"\n")
            if found >= 0:
                return seen + found + 1
            seen += len(window)
            if seen >= ready:
                break
        return ready

    # -- triggers ----------------------------------------------------------------

    def _reached(self, fault: _Fault, header: _Header | None) -> bool:
        trigger = fault.trigger
        kind = trigger["kind"]
        if kind == "now":
            return True
        if kind == "bytes":
            return self.released >= int(trigger["n"])
        if kind == "packets":
            return self.completed >= int(trigger["n"])
        name, nth = str(trigger["name"]), int(trigger["nth"])
        if kind == "after":
            return self.completed_by_name[name] >= nth
        # before: the nth packet of this name, *into* bytes of it released
        into = int(trigger["into"])
        packet = self.packet
        if packet is not None and packet.header.name == name and packet.ordinal == nth:
            return self.released - packet.start >= into
        if self.begun_by_name[name] >= nth:
            return True  # it passed before the fault was armed: fire now
        return (
            packet is None
            and header is not None
            and header.name == name
            and self.begun_by_name[name] + 1 == nth
            and into == 0
        )

    def _bound(self, header: _Header | None, ready: int) -> int:
        """How many of the *ready* bytes may be released before the loop looks again."""
        bound = ready
        packet = self.packet
        if packet is None:
            assert header is not None
            if header.size is not None:
                bound = min(bound, header.size)
            elif header.name == TEXT:
                bound = self._newline_bound(bound)
        elif packet.end is not None:
            bound = min(bound, packet.end - self.released)
        elif packet.header.name == TEXT:
            bound = self._newline_bound(bound)
        for fault in self.faults:
            trigger = fault.trigger
            if trigger["kind"] == "bytes":
                bound = min(bound, int(trigger["n"]) - self.released)
            elif trigger["kind"] == "before":
                name, nth, into = str(trigger["name"]), int(trigger["nth"]), int(trigger["into"])
                if packet is None:
                    if (
                        header is not None
                        and header.name == name
                        and self.begun_by_name[name] + 1 == nth
                    ):
                        bound = min(bound, into)
                elif packet.header.name == name and packet.ordinal == nth:
                    bound = min(bound, packet.start + into - self.released)
        return bound

    # -- release ---------------------------------------------------------------------

    def pump(self, now: float) -> None:
        """Fire what is due and release what may go, until something must wait."""
        self.wake_at = math.inf
        while not self.conn.closing:
            header = self.peek() if self.packet is None and self.pending_size else None
            due = next((f for f in self.faults if self._reached(f, header)), None)
            if due is not None:
                self.faults.remove(due)
                self._fire(due, now)
                continue
            if self.hold or not self.pending_size or not self.conn.established:
                return
            if self.packet is None and header is None:
                return  # wait for the rest of the header
            if len(self.out) >= _HIGH_WATER:
                return  # the destination is slow: wait for it
            ready = self._ready(now)
            if not ready:
                return
            drop = self.black_hole
            if not drop and self.drip is not None:
                if now < self.drip_next:
                    self.wake_at = min(self.wake_at, self.drip_next)
                    return
                ready = 1
                self.drip_next = now + self.drip
            size = self._bound(header, ready)
            assert size > 0, (size, ready)
            self._release(size, drop, header)

    def _release(self, size: int, drop: bool, header: _Header | None) -> None:
        parts: list[bytes] = []
        remaining = size
        while remaining:
            head = self.pending[0]
            if len(head) <= remaining:
                self.pending.popleft()
                parts.append(head.head(len(head)))
                remaining -= len(head)
            else:
                parts.append(head.head(remaining))
                head.start += remaining
                remaining = 0
        chunk = b"".join(parts)
        self.pending_size -= size
        packet = self.packet
        if packet is None:
            assert header is not None
            self.begun_by_name[header.name] += 1
            packet = self.packet = _Packet(header, self.released, self.begun_by_name[header.name])
            if header.name == UNFRAMED:
                self.unframed = True
                self._record(packet)  # never completes: reported as it begins
        self.released += size
        if drop:
            self.dropped += size
            packet.dropped = True
        else:
            self.out += chunk
            self.forwarded += size
        if packet.header.name == TEXT and len(packet.text) < _TEXT_KEPT:
            packet.text += chunk[: _TEXT_KEPT - len(packet.text)]
        ended = (packet.end is not None and self.released == packet.end) or (
            packet.header.name == TEXT and chunk.endswith(b"\n")
        )
        if ended:
            self.completed += 1
            self.completed_by_name[packet.header.name] += 1
            self.packet = None
            self._record(packet)
        self.dirty = True

    def _record(self, packet: _Packet) -> None:
        header = packet.header
        report: dict[str, Any] = {
            "ev": "packet",
            "c": self.conn.index,
            "d": self.direction,
            "name": header.name,
            "number": header.number,
            "magic": header.magic,
            "offset": packet.start,
            "size": None if header.name == UNFRAMED else self.released - packet.start,
            "dropped": packet.dropped,
            "text": packet.text.decode("latin-1").rstrip("\r\n") if header.name == TEXT else None,
        }
        self.records.append((self.forwarded, report))

    def due_records(self) -> list[dict[str, Any]]:
        """Reports of the packets whose bytes have all been written (or dropped)."""
        done = []
        while self.records and self.records[0][0] <= self.sent:
            done.append(self.records.popleft()[1])
        return done

    # -- faults --------------------------------------------------------------------

    def _fire(self, fault: _Fault, now: float) -> None:
        self.conn.engine.report(
            {
                "ev": "fired",
                "c": self.conn.index,
                "d": self.direction,
                "fault": fault.fault_id,
                "action": fault.action,
                "offset": self.released,
                "packets": self.completed,
            }
        )
        params = fault.params
        if fault.action == "cut":
            self.conn.start_cut(self, bool(params.get("reset", False)))
        elif fault.action == "delay":
            self.delay = float(params["seconds"])
            for chunk in self.pending:
                chunk.ready_at = max(chunk.ready_at, now + self.delay)
        elif fault.action == "drip":
            self.drip = float(params["pause"])
            self.drip_next = now + self.drip
        elif fault.action == "stop_reading":
            self.reading = False
            self.hold = True
        elif fault.action == "black_hole":
            self.black_hole = True
        self.dirty = True

    def heal(self, now: float) -> None:
        """Disarm every fault of this flow and end those in effect (a cut excepted)."""
        self.faults.clear()
        self.reading, self.hold, self.black_hole = True, False, False
        self.delay, self.drip = 0.0, None
        for chunk in self.pending:
            chunk.ready_at = now
        self.dirty = True

    # -- output ----------------------------------------------------------------------

    def write(self, sock: socket.socket) -> None:
        try:
            sent = sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        del self.out[:sent]
        self.sent += sent
        self.writes += 1
        self.dirty = True

    def finished(self) -> bool:
        """The source ended and everything of it has gone (the end may be forwarded)."""
        return (
            self.eof
            and not self.pending_size
            and not self.out
            and not self.hold
            and not self.black_hole
        )


class _Connection:
    """One accepted connection and its upstream twin."""

    def __init__(
        self, engine: _Engine, index: int, down: socket.socket, client: tuple[Any, ...]
    ) -> None:
        self.engine = engine
        self.index = index
        self.down = down
        self.up: socket.socket | None = None
        self.client = client
        self.established = False
        self.closing = False
        self.closed = False
        self.cut_flow: _Flow | None = None
        self.cut_reset = False
        self.first_end: str | None = None
        self.flows = {TO_SERVER: _Flow(self, TO_SERVER), TO_CLIENT: _Flow(self, TO_CLIENT)}

    def source(self, flow: _Flow) -> socket.socket | None:
        return self.down if flow.direction == TO_SERVER else self.up

    def destination(self, flow: _Flow) -> socket.socket | None:
        return self.up if flow.direction == TO_SERVER else self.down

    def start_cut(self, flow: _Flow, reset: bool) -> None:
        """Close both sides once *flow*'s bytes before the trigger are written."""
        self.closing = True
        self.cut_flow = flow
        self.cut_reset = reset

    def after_io(self) -> None:
        """Finish a cut, forward ends of stream, close when both ends have passed."""
        if self.closed:
            return
        if self.closing:
            flow = self.cut_flow
            if flow is None or not flow.out or self.destination(flow) is None:
                self.close("reset" if self.cut_reset else "cut", reset=self.cut_reset)
            return
        for flow in self.flows.values():
            destination = self.destination(flow)
            if flow.finished() and not flow.eof_forwarded and destination is not None:
                with contextlib.suppress(OSError):
                    destination.shutdown(socket.SHUT_WR)
                flow.eof_forwarded = True
                flow.dirty = True
                if self.first_end is None:
                    self.first_end = "client" if flow.direction == TO_SERVER else "server"
        if all(flow.eof_forwarded for flow in self.flows.values()):
            self.close(f"{self.first_end} closed", reset=False)

    def close(self, reason: str, *, reset: bool) -> None:
        if self.closed:
            return
        self.closed = self.closing = True
        for sock in (self.down, self.up):
            if sock is None:
                continue
            self.engine.forget(sock)
            with contextlib.suppress(OSError):
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                else:
                    _drain(sock)  # unread bytes would turn close() into a RST
                    sock.shutdown(socket.SHUT_WR)
            sock.close()
        for flow in self.flows.values():
            flow.dirty = True
        self.engine.report({"ev": "closed", "c": self.index, "reason": reason})


def _drain(sock: socket.socket) -> None:
    """Read and discard what *sock* has received and nobody read."""
    while True:
        try:
            if not sock.recv(_RECV_SIZE):
                return
        except (BlockingIOError, InterruptedError):
            return


def _parse_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class _Engine:
    """The loop: the listener, the control channel and every connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.selector = selectors.DefaultSelector()
        self.control = socket.socket(fileno=args.control_fd)
        self.control.setblocking(False)
        self.control_in = bytearray()
        self.control_out = bytearray()
        self.upstream = _parse_host_port(args.upstream)
        self.rcvbuf: int | None = args.rcvbuf
        self.listener = self._listen(args.host, args.low, args.high)
        self.connections: list[_Connection] = []
        self.plans: dict[int, list[tuple[str, _Fault]]] = {}
        self.next_fault = 1
        self.running = True
        self.interest: dict[socket.socket, int] = {}

    def _listen(self, host: str, low: int, high: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(200):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                if self.rcvbuf is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                sock.bind((host, random.randint(low, high)))
                sock.listen(128)
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.setblocking(False)
            return sock
        raise OSError(f"no free port on {host} in {low}..{high}")

    # -- reports -----------------------------------------------------------------------

    def report(self, message: dict[str, Any]) -> None:
        self.control_out += json.dumps(message, separators=(",", ":")).encode() + b"\n"

    def _flush_reports(self) -> None:
        for conn in self.connections:
            for flow in conn.flows.values():
                for record in flow.due_records():
                    self.report(record)
                if flow.dirty:
                    flow.dirty = False
                    self.report(flow.status())

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        host, port = self.listener.getsockname()[:2]
        self.report({"ev": "ready", "host": host, "port": port, "pid": os.getpid()})
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.interest[self.listener] = selectors.EVENT_READ
        self._update_control_interest()
        while self.running:
            timeout = self._next_timeout()
            for key, events in self.selector.select(timeout):
                self._dispatch(key.fileobj, events)  # type: ignore[arg-type]
            self._settle()
        self._shutdown()

    def _next_timeout(self) -> float | None:
        wake = min(
            (
                flow.wake_at
                for conn in self.connections
                if not conn.closed
                for flow in conn.flows.values()
            ),
            default=math.inf,
        )
        if wake == math.inf:
            return None
        return max(0.0, wake - time.monotonic())

    def _dispatch(self, sock: socket.socket, events: int) -> None:
        if sock is self.listener:
            self._accept()
        elif sock is self.control:
            if events & selectors.EVENT_READ:
                self._read_control()
            if events & selectors.EVENT_WRITE:
                self._write_control()
        else:
            for conn in self.connections:
                if not conn.closed and sock in (conn.down, conn.up):
                    try:
                        self._serve(conn, sock, events)
                    except Exception:
                        self.report({"ev": "error", "c": conn.index, "message": _trace()})
                        conn.close("error", reset=True)
                    return

    def _settle(self) -> None:
        """Pump every flow, finish ends and cuts, update interests and reports."""
        now = time.monotonic()
        for conn in self.connections:
            if conn.closed:
                continue
            try:
                for flow in conn.flows.values():
                    flow.pump(now)
                    destination = conn.destination(flow)
                    if flow.out and destination is not None and conn.established:
                        try:
                            flow.write(destination)  # most writes need no second turn
                        except OSError as exc:
                            self._broken(conn, destination, exc)
                            break
                conn.after_io()
            except Exception:
                self.report({"ev": "error", "c": conn.index, "message": _trace()})
                conn.close("error", reset=True)
            self._update_interest(conn)
        self._flush_reports()
        self._update_control_interest()

    # -- connections ---------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                down, client = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            down.setblocking(False)
            down.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, len(self.connections), down, client)
            self.connections.append(conn)
            self.report({"ev": "accept", "c": conn.index, "client": list(client[:2])})
            for direction, fault in self.plans.pop(conn.index, []):
                conn.flows[direction].faults.append(fault)
            self._connect_upstream(conn)

    def _connect_upstream(self, conn: _Connection) -> None:
        host, port = self.upstream
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        up = socket.socket(family, socket.SOCK_STREAM)
        up.setblocking(False)
        if self.rcvbuf is not None:
            up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        conn.up = up
        code = up.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            self._upstream_failed(conn, code)

    def _upstream_failed(self, conn: _Connection, code: int) -> None:
        self.report({"ev": "upstream", "c": conn.index, "ok": False, "error": os.strerror(code)})
        conn.close(f"upstream connect failed: {os.strerror(code)}", reset=False)

    def _serve(self, conn: _Connection, sock: socket.socket, events: int) -> None:
        if sock is conn.up and not conn.established:
            if not events & selectors.EVENT_WRITE:
                return
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._upstream_failed(conn, code)
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.established = True
            local = list(sock.getsockname()[:2])
            self.report({"ev": "upstream", "c": conn.index, "ok": True, "local": local})
            for flow in conn.flows.values():
                flow.dirty = True
            return
        reading = conn.flows[TO_SERVER] if sock is conn.down else conn.flows[TO_CLIENT]
        writing = conn.flows[TO_CLIENT] if sock is conn.down else conn.flows[TO_SERVER]
        if events & selectors.EVENT_WRITE and writing.out:
            try:
                writing.write(sock)
            except OSError as exc:
                self._broken(conn, sock, exc)
                return
        if events & selectors.EVENT_READ and reading.wants_read():
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._broken(conn, sock, exc)
                return
            if data:
                reading.take(data, time.monotonic())
            else:
                reading.end_of_source()

    def _broken(self, conn: _Connection, sock: socket.socket, exc: OSError) -> None:
        """A side failed (reset, broken pipe): reset the other side too."""
        side = "client" if sock is conn.down else "server"
        conn.close(f"{side} reset ({exc.strerror or exc})", reset=True)

    def forget(self, sock: socket.socket) -> None:
        if sock in self.interest:
            del self.interest[sock]
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(sock)

    def _set_interest(self, sock: socket.socket, events: int) -> None:
        current = self.interest.get(sock, 0)
        if events == current:
            return
        if not events:
            self.forget(sock)
        elif not current:
            self.selector.register(sock, events)
            self.interest[sock] = events
        else:
            self.selector.modify(sock, events)
            self.interest[sock] = events

    def _update_interest(self, conn: _Connection) -> None:
        if conn.closed:
            return
        to_server, to_client = conn.flows[TO_SERVER], conn.flows[TO_CLIENT]
        down_events = 0
        if to_server.wants_read():
            down_events |= selectors.EVENT_READ
        if to_client.out and conn.established:
            down_events |= selectors.EVENT_WRITE
        self._set_interest(conn.down, down_events)
        if conn.up is not None:
            if not conn.established:
                up_events = selectors.EVENT_WRITE
            else:
                up_events = selectors.EVENT_READ if to_client.wants_read() else 0
                if to_server.out:
                    up_events |= selectors.EVENT_WRITE
            self._set_interest(conn.up, up_events)

    # -- control channel ----------------------------------------------------------------

    def _update_control_interest(self) -> None:
        events = selectors.EVENT_READ
        if self.control_out:
            events |= selectors.EVENT_WRITE
            self._write_control()  # usually all of it fits at once
            if not self.control_out:
                events = selectors.EVENT_READ
        self._set_interest(self.control, events)

    def _write_control(self) -> None:
        try:
            sent = self.control.send(self.control_out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the parent is gone
            self.running = False
            self.control_out.clear()
            return
        del self.control_out[:sent]

    def _read_control(self) -> None:
        try:
            data = self.control.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the parent closed the channel or exited: end everything
            self.running = False
            return
        self.control_in += data
        while b"\n" in self.control_in:
            line, _, rest = bytes(self.control_in).partition(b"\n")
            self.control_in = bytearray(rest)
            command = json.loads(line)
            try:
                value = self._command(command)
            except Exception as exc:
                self.report({"re": command.get("id"), "ok": False, "error": str(exc)})
                continue
            # Pump first: a fault armed to fire now is reported before the reply.
            self._settle()
            self.report({"re": command.get("id"), "ok": True, "value": value})

    def _command(self, command: dict[str, Any]) -> Any:
        op = command["op"]
        if op == "sync":
            return None
        if op == "next":
            return len(self.connections)
        if op == "stop":
            self.running = False
            return None
        index = int(command["c"])
        if op == "arm":
            direction = str(command["d"])
            action = str(command["action"])
            if direction not in DIRECTIONS or action not in ACTIONS:
                raise ValueError(f"bad direction or action: {direction!r}, {action!r}")
            fault = _Fault(self.next_fault, action, command["params"], command["trigger"])
            self.next_fault += 1
            if index < len(self.connections):
                conn = self.connections[index]
                if conn.closed:
                    raise ValueError(f"connection {index} is closed already")
                conn.flows[direction].faults.append(fault)
            else:
                self.plans.setdefault(index, []).append((direction, fault))
            return fault.fault_id
        if op == "heal":
            directions = [command["d"]] if command.get("d") else list(DIRECTIONS)
            if index < len(self.connections):
                conn = self.connections[index]
                if not conn.closed:
                    for direction in directions:
                        conn.flows[direction].heal(time.monotonic())
            else:
                kept = [(d, f) for d, f in self.plans.get(index, []) if d not in directions]
                self.plans[index] = kept
            return None
        raise ValueError(f"unknown command {op!r}")

    # -- the end ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        for conn in self.connections:
            conn.close("proxy stopped", reset=False)
        self.listener.close()
        self._flush_reports()
        with contextlib.suppress(OSError):
            self.control.setblocking(True)
            self.control.sendall(self.control_out)
        self.control.close()
        self.selector.close()


def _trace() -> str:
    return "".join(traceback.format_exc())


def main(argv: list[str]) -> int:
    """Run the engine until the control channel says stop or ends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--low", type=int, required=True)
    parser.add_argument("--high", type=int, required=True)
    parser.add_argument("--rcvbuf", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        engine = _Engine(args)
    except OSError as exc:
        print(f"fault proxy: cannot start: {exc}", file=sys.stderr)
        return 2
    engine.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
