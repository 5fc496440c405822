"""A hostile Gearman server in a subprocess, scripted per test.

Owns: `Behaviour` (what the server does on every connection: wait for a
request, send a reply, then stream without end, each at full speed or a
byte at a time), the catalogue of hostile behaviours built from it
(`garbage`, `huge_header`, `endless_block`, `endless_line`, `drip`,
`work_data_flood`, `work_status_flood`, `unexpected_packet`, `unsolicited_job_created`,
`wrong_kind_admin`, `assign_garbage`, `noop_flood`), `FakeServer` (the
test's handle on the child process: its address, its counters, its end)
and the child's own main loop.  Does not own: a real server
(`devtools.gearmand`), the in-process peers of `devtools.peers`, or any
binding: it uses the standard library and `gearman_proto` only.

Why a subprocess.  The server must keep talking while the runtime under
test holds the test's thread (the blocking binding waits in poll(2) in
the caller's thread), while gevent's hub runs in it, and when the shared
suite runs again under ``gevent.monkey.patch_all()``
(``tests/bindings/test_gevent_monkey.py``), where ``threading`` makes
greenlets that run only when the test's thread yields.  A thread of the
test's process fails that last case; a child process has its own threads
and interpreter whatever the parent patched.  It also keeps the server's
own buffers out of the client process, whose memory the hostile tests
measure, and takes the flood's CPU off the client's interpreter lock.

The control channel is the child's stdin and stdout, one line each way
per call: the child prints ``{"port": N}`` once it listens, answers
``stats`` with a JSON object, and on ``stop`` (or the end of its stdin,
so it never outlives its test) closes every socket and prints its last
counters.  The parent reads with a timeout on the pipe, so a child that
died or hung fails the test instead of hanging it.

Ports are drawn from `devtools.gearmand.PORT_RANGE` (below the ephemeral
range) and bound at once by the child (`devtools.peers.listen_on_free_port`),
so no other process can take the port between the choice and the use.
Incoming bytes are split by ``gearman_proto``'s own receive buffer (12-byte
headers, admin lines) and checked with its decoder; a request our side
sent that does not decode is a fault of ours and fails the test at
`FakeServer.close`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gearman_proto import RES, PacketType, ProtocolError, decode_body, encode_packet
from gearman_proto._buffer import ReceiveBuffer  # the core's framing: headers and lines

__all__ = [
    "ANY",
    "LINE",
    "Behaviour",
    "FakeServer",
    "FakeServerError",
    "Stats",
    "assign_garbage",
    "drip",
    "endless_block",
    "endless_line",
    "garbage",
    "huge_header",
    "main",
    "noop_flood",
    "unexpected_packet",
    "unsolicited_job_created",
    "work_data_flood",
    "work_status_flood",
    "wrong_kind_admin",
]

#: `Behaviour.after`: the first request of any kind (a packet or an admin line) ...
ANY = "any"
#: ... or the first admin text line.
LINE = "line"

#: the handle every scripted job reply uses.
HANDLE = b"H:fake:1"
#: seconds the parent waits for the child to start, answer or stop.
CONTROL_TIMEOUT = 30.0
#: the largest request body or admin line the child accepts from our side.
_MAX_REQUEST = 64 * 1024 * 1024
_RECV_SIZE = 65536
#: the repository's root: the child imports ``devtools`` and ``gearman_proto`` from it.
_ROOT = Path(__file__).resolve().parents[1]


class FakeServerError(RuntimeError):
    """The fake server failed: it did not start or stop, or our side sent bytes it
    could not decode."""


@dataclass(frozen=True)
class Behaviour:
    """What the fake server does on every connection it accepts.

    It reads and decodes what arrives for the whole life of the connection,
    and answers every request that matches *after* with *reply*.  After the
    first reply it sends *stream* over and over until the client goes or
    the server stops; with an empty *stream* it waits for the next match
    and keeps the connection open.

    Attributes:
        after: `ANY` (the first request), `LINE` (the first admin line) or
            a `gearman_proto.PacketType` name such as ``"SUBMIT_JOB"``.
        reply: bytes sent for each request that matches *after*.
        reply_pace: if set, *reply* goes out one byte per write, this many
            seconds apart (a slow drip); None: at once.
        stream: bytes sent again and again after *reply*.
        stream_pace: as *reply_pace*, for *stream* (a trickle).
    """

    after: str = ANY
    reply: bytes = b""
    reply_pace: float | None = None
    stream: bytes = b""
    stream_pace: float | None = None

    def __post_init__(self) -> None:
        if self.after not in (ANY, LINE) and self.after not in PacketType.__members__:
            raise ValueError(f"unknown trigger {self.after!r}")
        for pace in (self.reply_pace, self.stream_pace):
            if pace is not None and pace <= 0:
                raise ValueError("a pace is a positive number of seconds")

    def to_json(self) -> str:
        """The behaviour as one JSON line for the child (bytes as hex)."""
        fields = dataclasses.asdict(self)
        fields["reply"] = self.reply.hex()
        fields["stream"] = self.stream.hex()
        return json.dumps(fields)

    @classmethod
    def from_json(cls, line: str) -> Behaviour:
        """The inverse of `to_json`."""
        fields = json.loads(line)
        fields["reply"] = bytes.fromhex(fields["reply"])
        fields["stream"] = bytes.fromhex(fields["stream"])
        return cls(**fields)


# ----------------------------------------------------------- the catalogue


def _packet(packet_type: PacketType, *arguments: bytes) -> bytes:
    return encode_packet(RES, packet_type, arguments)


def garbage(data: bytes = b"\0RSE\xff\xfe garbage \x00\x01\x02\x03") -> Behaviour:
    """Answer the first request with bytes that are no Gearman (a bad magic by default)."""
    return Behaviour(reply=data)


def huge_header(
    packet_type: PacketType = PacketType.JOB_CREATED,
    *,
    after: str = ANY,
    trickle: float | None = None,
) -> Behaviour:
    """Answer with a header announcing a 4 GiB body (0xFFFFFFFF bytes), then
    nothing, or one byte every *trickle* seconds."""
    header = RES + packet_type.to_bytes(4, "big") + b"\xff\xff\xff\xff"
    return Behaviour(
        after=after, reply=header, stream=b"x" if trickle else b"", stream_pace=trickle
    )


def endless_block(line: bytes = b"fn\t0\t0\t0") -> Behaviour:
    """Answer an admin command with block lines that never end with ``.``."""
    return Behaviour(after=LINE, stream=line + b"\n")


def endless_line(chunk: int = 65536) -> Behaviour:
    """Answer an admin command with one line that never ends (no newline, ever)."""
    return Behaviour(after=LINE, stream=b"x" * chunk)


def drip(reply: bytes, pace: float, *, after: str = ANY) -> Behaviour:
    """Answer with a valid *reply*, one byte every *pace* seconds."""
    return Behaviour(after=after, reply=reply, reply_pace=pace)


def work_data_flood(payload_size: int = 65536, handle: bytes = HANDLE) -> Behaviour:
    """Accept a SUBMIT_JOB (JOB_CREATED), then stream WORK_DATA of *payload_size*
    bytes without end, never a WORK_COMPLETE."""
    update = _packet(PacketType.WORK_DATA, handle, b"d" * payload_size)
    return Behaviour(
        after="SUBMIT_JOB",
        reply=_packet(PacketType.JOB_CREATED, handle),
        stream=update * max(1, 65536 // len(update)),  # whole packets, 64 KiB a write
    )


def work_status_flood(handle: bytes = HANDLE) -> Behaviour:
    """Accept a SUBMIT_JOB (JOB_CREATED), then stream WORK_STATUS without end."""
    return Behaviour(
        after="SUBMIT_JOB",
        reply=_packet(PacketType.JOB_CREATED, handle),
        stream=_packet(PacketType.WORK_STATUS, handle, b"1", b"2") * 1024,
    )


def unexpected_packet(packet_type: PacketType, *arguments: bytes, after: str = ANY) -> Behaviour:
    """Answer with a well-formed packet the connection's role never receives."""
    return Behaviour(after=after, reply=_packet(packet_type, *arguments))


def unsolicited_job_created(handle: bytes = HANDLE) -> Behaviour:
    """Answer a SUBMIT_JOB with two JOB_CREATED: the second answers nobody."""
    created = _packet(PacketType.JOB_CREATED, handle)
    return Behaviour(after="SUBMIT_JOB", reply=created + _packet(PacketType.JOB_CREATED, b"H:x:2"))


def wrong_kind_admin(reply: bytes) -> Behaviour:
    """Answer the first admin command with *reply* (a line, a block or a packet of the
    wrong kind for it)."""
    return Behaviour(after=ANY, reply=reply)


def assign_garbage() -> Behaviour:
    """Answer a worker's GRAB_JOB_UNIQ (what it asks with by default) with a
    JOB_ASSIGN_UNIQ whose body lacks its NUL separators (a framing that cannot
    be split into its four fields)."""
    return Behaviour(
        after="GRAB_JOB_UNIQ",
        reply=RES
        + PacketType.JOB_ASSIGN_UNIQ.to_bytes(4, "big")
        + (11).to_bytes(4, "big")
        + b"no-fields!!",
    )


def noop_flood() -> Behaviour:
    """Stream NOOPs to a worker without end, from its first request on."""
    return Behaviour(stream=_packet(PacketType.NOOP) * 4096)


# ------------------------------------------------------------- the parent


@dataclass(frozen=True)
class Stats:
    """What the fake server counted so far.

    Attributes:
        accepted: connections accepted.
        closed: connections the client closed (or reset).
        requests: each request decoded, in order: a packet type name, or
            ``"line:<command>"`` for an admin line.
        sent: bytes written over every connection (the last write of a
            connection may still be under way).
        errors: faults of the server or of our side's bytes (empty when all went well).
    """

    accepted: int
    closed: int
    requests: tuple[str, ...]
    sent: int
    errors: tuple[str, ...]


class FakeServer:
    """The test's handle on a fake server process running *behaviour*.

    Use as a context manager: entering starts the child and waits until it
    listens; leaving stops it and raises `FakeServerError` if it recorded
    an error (unless the block raised already).

    Args:
        behaviour: what the server does on each connection.
        host: the loopback address to listen on.
    """

    def __init__(self, behaviour: Behaviour, *, host: str = "127.0.0.1") -> None:
        self.behaviour = behaviour
        self.host = host
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._pending = b""
        self._final: Stats | None = None

    @property
    def port(self) -> int:
        """The port the child listens on."""
        if self._port is None:
            raise FakeServerError("the fake server has not been started")
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"``, as a host list entry."""
        return f"{self.host}:{self.port}"

    def start(self) -> FakeServer:
        """Start the child and wait until it listens; returns self."""
        if self._process is not None:
            raise FakeServerError("the fake server is already running")
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), path]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devtools.fakeserver", self.host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=_ROOT,
        )
        self._send(self.behaviour.to_json())
        hello = self._receive()
        self._port = int(hello["port"])
        return self

    def stats(self) -> Stats:
        """The child's counters now (after `close`: its last ones)."""
        if self._final is not None:
            return self._final
        self._send("stats")
        return _stats(self._receive())

    def close(self) -> Stats:
        """Stop the child (every socket closes) and return its last counters.

        Safe to call twice.  Raises `FakeServerError` if the child does not
        stop within `CONTROL_TIMEOUT`.
        """
        if self._final is not None:
            return self._final
        process = self._process
        if process is None:
            raise FakeServerError("the fake server has not been started")
        try:
            self._send("stop")
            self._final = _stats(self._receive())
        finally:
            assert process.stdin is not None
            assert process.stdout is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(CONTROL_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise FakeServerError("the fake server did not exit when told to") from None
            finally:
                process.stdout.close()
        return self._final

    def check(self) -> None:
        """Raise `FakeServerError` if the server recorded an error."""
        errors = self.stats().errors
        if errors:
            raise FakeServerError(f"the fake server recorded {len(errors)} error(s): {errors}")

    def __enter__(self) -> FakeServer:
        try:
            return self.start()
        except BaseException:
            if self._process is not None:
                self._process.kill()
                self._process.wait()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is None:
            self.check()

    def __repr__(self) -> str:
        return f"<FakeServer {self.host}:{self._port} {self.behaviour!r}>"

    # ---------------------------------------------------------- the channel

    def _send(self, line: str) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line.encode() + b"\n")
            self._process.stdin.flush()
        except OSError as error:
            raise FakeServerError(f"the fake server is gone: {error}") from error

    def _receive(self) -> dict[str, Any]:
        """The child's next line, parsed; waits at most `CONTROL_TIMEOUT`."""
        assert self._process is not None
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._pending:
            readable, _, _ = select.select([fd], [], [], CONTROL_TIMEOUT)
            if not readable:
                raise FakeServerError(f"no answer from the fake server in {CONTROL_TIMEOUT} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise FakeServerError(f"the fake server exited (status {self._process.poll()})")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


def _stats(message: dict[str, Any]) -> Stats:
    return Stats(
        accepted=message["accepted"],
        closed=message["closed"],
        requests=tuple(message["requests"]),
        sent=message["sent"],
        errors=tuple(message["errors"]),
    )


# -------------------------------------------------------------- the child


class _Server:
    """The child's state: the listener, the connections and the counters."""

    def __init__(self, behaviour: Behaviour, listener: socket.socket) -> None:
        self.behaviour = behaviour
        self.listener = listener
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.accepted = 0
        self.closed = 0
        self.requests: list[str] = []
        self.sent = 0
        self.errors: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": self.accepted,
                "closed": self.closed,
                "requests": list(self.requests),
                "sent": self.sent,
                "errors": list(self.errors),
            }

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: stopping
            with self.lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                self.accepted += 1
                self.sockets.append(sock)
                _Connection(self, sock).start()

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            sockets = list(self.sockets)
            threads = list(self.threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(CONTROL_TIMEOUT)
            if thread.is_alive():
                self.error(f"{thread.name} did not stop")
        for sock in sockets:
            sock.close()


class _Connection:
    """One accepted connection: a reader that decodes everything the client
    sends, and a writer that plays the behaviour once the trigger came."""

    def __init__(self, server: _Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.behaviour = server.behaviour
        #: released once per request that matches the trigger, and at the end.
        self.triggers = threading.Semaphore(0)
        self.gone = threading.Event()

    def start(self) -> None:
        """Start both threads (called with the server's lock held)."""
        for role, target in (("reader", self.read_loop), ("writer", self.write_loop)):
            thread = threading.Thread(
                target=target, name=f"fake-{self.server.accepted}-{role}", daemon=True
            )
            self.server.threads.append(thread)
            thread.start()

    def read_loop(self) -> None:
        buffer = ReceiveBuffer()
        try:
            while True:
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except OSError:
                    data = b""
                if not data:
                    if not self.server.stopping.is_set():
                        with self.server.lock:
                            self.server.closed += 1
                    return
                buffer.feed(data)
                for name in self._requests(buffer):
                    with self.server.lock:
                        self.server.requests.append(name)
                    if self._matches(name):
                        self.triggers.release()
        except ProtocolError as error:
            self.server.error(f"undecodable bytes from the client: {error}")
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # hang up: the client sees why at once
        finally:
            self.gone.set()
            self.triggers.release()  # let the writer see the end

    def _requests(self, buffer: ReceiveBuffer) -> list[str]:
        """Take every complete request off *buffer*; their names."""
        names = []
        while True:
            packets = buffer.take_packets(_MAX_REQUEST)
            for _magic, packet_type, body in packets:
                decode_body(packet_type, body)  # raises if our side sent a bad body
                names.append(PacketType(packet_type).name)
            first = buffer.first_byte()
            if first is None:
                return names
            if first != 0:
                line = buffer.take_line(_MAX_REQUEST)
                if line is None:
                    return names
                names.append("line:" + line.split(b" ", 1)[0].decode("ascii", "replace"))
            elif not packets:
                return names

    def _matches(self, name: str) -> bool:
        after = self.behaviour.after
        return after in (ANY, name) or (after == LINE and name.startswith("line:"))

    def write_loop(self) -> None:
        behaviour = self.behaviour
        try:
            while True:
                self.triggers.acquire()
                if self.gone.is_set():
                    return
                self._send(behaviour.reply, behaviour.reply_pace)
                while behaviour.stream and not self.server.stopping.is_set():
                    self._send(behaviour.stream, behaviour.stream_pace)
        except OSError:
            return  # the client went (or the server stops): the end of the script
        except Exception as error:  # a fault of the fake server itself
            self.server.error(f"writer failed: {error!r}")

    def _send(self, data: bytes, pace: float | None) -> None:
        """Write *data*, counted before each write (so a client that has read
        it finds it counted)."""
        if pace is None:
            self._count(len(data))
            self.sock.sendall(data)
            return
        for index in range(len(data)):
            if self.gone.is_set() or self.server.stopping.wait(pace):
                raise OSError("the connection ended")
            self._count(1)
            self.sock.sendall(data[index : index + 1])

    def _count(self, size: int) -> None:
        with self.server.lock:
            self.server.sent += size


def _print(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """The child: read the behaviour from stdin, listen, serve, answer the parent."""
    from devtools.peers import listen_on_free_port  # noqa: PLC0415 -- the child's alone

    arguments = sys.argv[1:] if argv is None else argv
    host = arguments[0] if arguments else "127.0.0.1"
    behaviour = Behaviour.from_json(sys.stdin.readline())
    listener = listen_on_free_port(host, backlog=16)
    server = _Server(behaviour, listener)
    accepting = threading.Thread(target=server.accept_loop, name="fake-accept", daemon=True)
    accepting.start()
    _print({"port": listener.getsockname()[1]})
    for line in sys.stdin:
        if line.strip() == "stats":
            _print(server.snapshot())
        elif line.strip() == "stop":
            break
    server.stop()
    accepting.join(CONTROL_TIMEOUT)
    _print(server.snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main())
