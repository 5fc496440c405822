"""Loopback Gearman peers that misbehave on purpose, for binding tests.

Owns: small servers on 127.0.0.1 that break the rules a binding must survive.

- `StalledServer` accepts and then never reads (optionally after a short
  `Script` in which it speaks a little Gearman, e.g. `assign_job`), so a
  client's large write stalls;
- `FullBacklogServer` never accepts and has its accept queue filled, so a
  further connect times out;
- `ScriptedServer` runs a test's ``handler(conn)`` on every accepted
  connection, with `PeerConnection` to read, write and misbehave.

Does not own: anything of a binding (the peers serve the blocking binding
today and other runtimes later, so they use only the standard library and
`gearman_proto`'s wire helpers), nor a real server (`devtools.gearmand`).

Rules the peers keep:

- Ports come from `devtools.gearmand.PORT_RANGE` (below the ephemeral range,
  PROTOCOL.md 9.1), drawn at random and bound directly, so there is no
  probe-then-bind race (`listen_on_free_port`).
- No sleeps as synchronisation: what a test may wait for (a connection
  accepted, bytes received, a packet seen, a connection stalled) is signalled
  through one `threading.Condition` and offered as ``wait_*(timeout)``
  methods that return a bool, like `threading.Event.wait`. The one bounded
  poll left, on kernel state that has no notification, is in
  `FullBacklogServer.start`.
- Exit closes every socket a peer opened and joins every thread it started;
  an exception raised by a handler or a script is raised again (as
  `PeerError`) when the ``with`` block ends without an exception of its own.
"""

from __future__ import annotations

import contextlib
import errno
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from devtools.gearmand import DEFAULT_HOST, PORT_RANGE
from gearman_proto import REQ, RES, PacketType, ProtocolError, decode_body, encode_packet

__all__ = [
    "DEFAULT_TIMEOUT",
    "GRAB_TYPES",
    "MAX_PACKET_SIZE",
    "STALL_RCVBUF",
    "FullBacklogServer",
    "Handler",
    "PeerClosing",
    "PeerConnection",
    "PeerError",
    "Script",
    "ScriptedServer",
    "StalledServer",
    "Step",
    "assign_job",
    "expect",
    "listen_on_free_port",
    "send",
]

#: Seconds a `PeerConnection` read waits by default, so a handler never hangs a test.
DEFAULT_TIMEOUT = 10.0
#: Seconds `close` waits for each thread of a peer to finish.
JOIN_TIMEOUT = 10.0
#: `PeerConnection.read_packet` refuses a header that announces a bigger body.
MAX_PACKET_SIZE = 64 * 1024 * 1024
#: SO_RCVBUF that `StalledServer` sets on its listening socket; Linux doubles
#: it (8192) and accepted sockets inherit it, which also turns off receive
#: autotuning, so the advertised window stays a few KiB.
STALL_RCVBUF = 4096
#: The three grab requests a worker may send (PROTOCOL.md 3).
GRAB_TYPES = frozenset({PacketType.GRAB_JOB, PacketType.GRAB_JOB_UNIQ, PacketType.GRAB_JOB_ALL})

_HEADER = struct.Struct(">4sII")  # magic, type, body size (PROTOCOL.md 1.1)
_RECV_CHUNK = 65536
_PACKET_TYPES = frozenset(int(t) for t in PacketType)
# struct tcp_info (linux/tcp.h): eight u8 fields, then u32 rto, ato, snd_mss,
# rcv_mss, unacked, sacked. For a listening socket the kernel reports the
# accept queue's length in tcpi_unacked and its limit in tcpi_sacked.
_TCP_INFO_QUEUE = struct.Struct("=II")
_TCP_INFO_QUEUE_OFFSET = 24
# Upper bound on a client's send buffer when /proc cannot be read.
_FALLBACK_SNDBUF = 64 * 1024 * 1024
# Slack for skb overhead and the one segment the kernel may queue past sk_sndbuf.
_STALL_MARGIN = 1024 * 1024

_P = TypeVar("_P", bound="_ListeningPeer")


class PeerError(RuntimeError):
    """A peer could not do what it was asked, or one of its handlers failed."""


class PeerClosing(PeerError):
    """The peer is shutting down; raised inside a handler to make it return."""


def listen_on_free_port(
    host: str = DEFAULT_HOST,
    *,
    backlog: int,
    rcvbuf: int | None = None,
    attempts: int = 200,
) -> socket.socket:
    """Return a socket listening on a random free port of `PORT_RANGE` on *host*.

    The port is drawn the way `devtools.gearmand.pick_free_port` draws it, but
    bound at once instead of probed, so no other process can take it between
    the check and the use. SO_REUSEADDR is not set: like
    `devtools.gearmand.port_is_free`, a port with TIME_WAIT leftovers is skipped.

    Args:
        host: address to listen on.
        backlog: the ``listen()`` backlog.
        rcvbuf: SO_RCVBUF to set before ``listen()`` (accepted sockets inherit it).
        attempts: ports tried before giving up with `PeerError`.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = PORT_RANGE
    for _ in range(attempts):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((host, random.randint(low, high)))
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        return sock
    raise PeerError(f"no free port on {host} in {low}..{high} after {attempts} tries")


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PeerConnection:
    """One accepted connection, as a handler or a script step sees it.

    Used by the one thread that runs its handler. Reads wait at most their
    *timeout* and are cut short when the peer closes (`PeerClosing`); the
    peer reads exactly what a call asks for and never ahead, so whatever a
    handler does not read stays in the kernel, unread.

    Attributes:
        index: 0 for the first connection the peer accepted, 1 for the next...
    """

    def __init__(self, sock: socket.socket, index: int, owner: _ListeningPeer) -> None:
        self._sock = sock
        self.index = index
        self._owner = owner
        self._lock = threading.Lock()  # close() by the handler vs shutdown by the owner
        self._closed = False
        self._reading = True
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(owner._wake_reader, selectors.EVENT_READ)

    @property
    def closed(self) -> bool:
        """True once `close` was called (or the peer has shut down)."""
        return self._closed

    @property
    def reading(self) -> bool:
        """False once `stop_reading` was called."""
        return self._reading

    def read_exact(self, size: int, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Read exactly *size* bytes.

        Raises:
            TimeoutError: they did not all arrive within *timeout* seconds.
            EOFError: the client closed (or reset) the connection first.
            PeerClosing: the peer is shutting down.
            PeerError: `stop_reading` or `close` was called before.
        """
        if self._closed:
            raise PeerError(f"connection {self.index} is closed")
        if not self._reading:
            raise PeerError(f"connection {self.index} has stopped reading")
        deadline = None if timeout is None else time.monotonic() + timeout
        data = bytearray()
        while len(data) < size:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"connection {self.index}: {len(data)} of {size} bytes after {timeout} s"
                )
            ready = self._selector.select(remaining)
            if self._owner._stopping.is_set():
                raise PeerClosing("the peer is closing")
            if not ready:
                continue  # timed out: the loop head raises
            try:
                chunk = self._sock.recv(min(size - len(data), _RECV_CHUNK))
            except ConnectionResetError as exc:
                raise EOFError(f"connection {self.index} was reset by the client") from exc
            if not chunk:
                if self._owner._stopping.is_set():
                    raise PeerClosing("the peer is closing")
                raise EOFError(
                    f"connection {self.index}: the client closed after {len(data)} of {size} bytes"
                )
            data += chunk
            self._owner._note_received(len(chunk))
        return bytes(data)

    def read_packet(
        self, timeout: float | None = DEFAULT_TIMEOUT
    ) -> tuple[PacketType, list[bytes]]:
        """Read one request packet and return its type and arguments.

        The 12-byte header is checked before the body is read: magic
        ``\\0REQ``, a known type, a size up to `MAX_PACKET_SIZE`. The body is
        split with `gearman_proto.decode_body`. Every packet read is recorded
        in the peer's `received_types`.

        Raises:
            PeerError: a bad header or body (after which the stream is out of step).
            TimeoutError, EOFError, PeerClosing: as `read_exact`; *timeout*
                bounds the whole packet.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        header = self.read_exact(_HEADER.size, timeout)
        magic, number, size = _HEADER.unpack(header)
        if magic != REQ:
            raise PeerError(f"connection {self.index}: not a request header: {header!r}")
        if number not in _PACKET_TYPES:
            raise PeerError(f"connection {self.index}: unknown packet type {number}")
        if size > MAX_PACKET_SIZE:
            raise PeerError(
                f"connection {self.index}: header announces {size} bytes (limit {MAX_PACKET_SIZE})"
            )
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        body = self.read_exact(size, remaining)
        try:
            arguments = decode_body(number, body)
        except ProtocolError as exc:
            raise PeerError(f"connection {self.index}: {exc}") from exc
        packet_type = PacketType(number)
        self._owner._note_packet(packet_type)
        return packet_type, arguments

    def send_packet(self, packet_type: PacketType, *arguments: bytes) -> None:
        """Send one response packet (magic ``\\0RES``) built by `gearman_proto.encode_packet`.

        For anything the encoder refuses (wrong magic, wrong argument count,
        lying sizes) use `send_raw`.
        """
        self.send_raw(encode_packet(RES, packet_type, arguments))

    def send_raw(self, data: bytes) -> None:
        """Send *data* as it is; blocks while the client does not read (until the peer closes).

        Raises:
            PeerClosing: the peer is shutting down.
            PeerError: `close` was called before.
            OSError: the client has gone.
        """
        if self._closed:
            raise PeerError(f"connection {self.index} is closed")
        if self._owner._stopping.is_set():
            raise PeerClosing("the peer is closing")
        self._sock.sendall(data)

    def stop_reading(self) -> None:
        """Never read from this connection again; what the client sends stays in the kernel."""
        if self._reading:
            self._reading = False
            self._owner._note_stopped_reading()

    def wait_closing(self, timeout: float | None) -> bool:
        """Wait up to *timeout* seconds for the peer to start closing; True if it has.

        A handler that paces itself (a slow drip) waits here instead of
        calling `time.sleep`, so closing the peer never has to wait for it.
        """
        return self._owner._stopping.wait(timeout)

    def close(self) -> None:
        """Close the connection (the client sees EOF); safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._selector.close()
            self._sock.close()

    def _shutdown(self) -> None:
        """Wake a thread blocked in send or recv on this connection (owner's close)."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("reading" if self._reading else "not reading")
        return f"<PeerConnection {self.index} {state}>"


#: What `ScriptedServer` runs for each accepted connection, in its own thread.
Handler = Callable[[PeerConnection], object]
#: One step of a `StalledServer` script (`expect`, `send`, `assign_job` or your own).
Step = Callable[[PeerConnection], object]
#: A `StalledServer` script: one step or a sequence of steps, run in order.
Script = Step | Sequence[Step]


class _ListeningPeer:
    """A listening socket, an accept thread, and the bookkeeping tests wait on."""

    _kind = "peer"

    def __init__(self, *, host: str, backlog: int, rcvbuf: int | None) -> None:
        self._host = host
        self._backlog = backlog
        self._rcvbuf = rcvbuf
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._changed = threading.Condition()
        self._connections: list[PeerConnection] = []
        self._threads: list[threading.Thread] = []
        self._accepted = 0
        self._received_bytes = 0
        self._received_types: list[PacketType] = []
        self._stopped_reading = 0
        self._handled = 0
        self._errors: list[Exception] = []
        self._closed = False

    # -- where ----------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the peer listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the peer listens on (known once started)."""
        if self._port is None:
            raise PeerError(f"the {self._kind} has not been started, so it has no port yet")
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"``, as python-gearman takes a server."""
        return _format_address(self._host, self.port)

    # -- what happened --------------------------------------------------------

    @property
    def accepted(self) -> int:
        """How many connections the peer has accepted so far."""
        with self._changed:
            return self._accepted

    @property
    def received_bytes(self) -> int:
        """How many bytes the peer has read, over all its connections."""
        with self._changed:
            return self._received_bytes

    @property
    def received_types(self) -> list[PacketType]:
        """The type of every packet the peer has read, in order (a copy)."""
        with self._changed:
            return list(self._received_types)

    @property
    def errors(self) -> list[Exception]:
        """Exceptions raised by handlers or scripts so far (a copy)."""
        with self._changed:
            return list(self._errors)

    def wait_accepted(self, timeout: float | None, count: int = 1) -> bool:
        """Wait until *count* connections have been accepted; False on timeout."""
        return self._wait(lambda: self._accepted >= count, timeout)

    def wait_received(self, nbytes: int, timeout: float | None) -> bool:
        """Wait until the peer has read *nbytes* bytes in all; False on timeout."""
        return self._wait(lambda: self._received_bytes >= nbytes, timeout)

    def wait_packet(self, packet_type: PacketType, timeout: float | None) -> bool:
        """Wait until a packet of *packet_type* has been read; False on timeout."""
        return self._wait(lambda: packet_type in self._received_types, timeout)

    def check(self) -> None:
        """Raise `PeerError` (from the first one) if a handler or script has failed."""
        errors = self.errors
        if errors:
            raise PeerError(
                f"{len(errors)} {self._kind} handler(s) failed, first: {errors[0]!r}"
            ) from errors[0]

    # -- life cycle -----------------------------------------------------------

    def start(self: _P) -> _P:
        """Listen and start the accept thread; returns self."""
        if self._closed:
            raise PeerError(f"the {self._kind} has been closed")
        if self._listener is not None:
            raise PeerError(f"the {self._kind} is already running on {self.address}")
        listener = listen_on_free_port(self._host, backlog=self._backlog, rcvbuf=self._rcvbuf)
        listener.setblocking(False)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        thread = threading.Thread(
            target=self._accept_loop, name=f"{self._kind}-{self._port}-accept", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return self

    def close(self) -> None:
        """Stop the peer: wake and join its threads, then close every socket it opened.

        Handler errors are not raised here (see `check`). Raises `PeerError`
        if a thread did not finish within `JOIN_TIMEOUT` (its sockets are
        closed anyway). Safe to call twice.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake_writer.send(b"x")  # never read: every selector sees it from now on
        stuck: list[str] = []
        if self._threads:
            self._join(self._threads[0], stuck)  # the accept thread: no new connections
        with self._changed:
            connections = list(self._connections)
            handlers = self._threads[1:]
        for conn in connections:
            conn._shutdown()
        for thread in handlers:
            self._join(thread, stuck)
        for conn in connections:
            conn.close()
        self._selector.close()
        if self._listener is not None:
            self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()
        if stuck:
            raise PeerError(f"threads still running after {JOIN_TIMEOUT} s: {stuck}")

    def __enter__(self: _P) -> _P:
        try:
            return self.start()
        except BaseException:
            self.close()
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
        where = _format_address(self._host, self._port) if self._port else self._host
        return f"<{type(self).__name__} {where} accepted={self.accepted}>"

    # -- for subclasses -------------------------------------------------------

    def _on_accept(self, conn: PeerConnection) -> None:
        """Called in the accept thread for each new connection."""
        raise NotImplementedError

    def _spawn(self, conn: PeerConnection, run: Callable[[PeerConnection], object]) -> None:
        """Run *run(conn)* in a new daemon thread; record its exception, count its end."""

        def target() -> None:
            try:
                run(conn)
            except Exception as exc:
                # A handler unwound by close() is not a failure.
                shutdown = isinstance(exc, PeerClosing | OSError | EOFError)
                if not (shutdown and self._stopping.is_set()):
                    with self._changed:
                        self._errors.append(exc)
                        self._changed.notify_all()
            finally:
                with self._changed:
                    self._handled += 1
                    self._changed.notify_all()

        thread = threading.Thread(
            target=target, name=f"{self._kind}-{self._port}-conn{conn.index}", daemon=True
        )
        with self._changed:
            self._threads.append(thread)
        thread.start()

    # -- internals ------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            self._selector.select()
            if self._stopping.is_set():
                return
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as exc:
                with self._changed:
                    self._errors.append(exc)
                    self._changed.notify_all()
                return
            sock.setblocking(True)
            with self._changed:
                conn = PeerConnection(sock, len(self._connections), self)
                self._connections.append(conn)
            try:
                self._on_accept(conn)
            finally:
                with self._changed:
                    self._accepted += 1
                    self._changed.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait for *predicate* (read under the lock); a handler error ends the wait early."""
        with self._changed:
            self._changed.wait_for(lambda: predicate() or bool(self._errors), timeout)
            return predicate()

    @staticmethod
    def _join(thread: threading.Thread, stuck: list[str]) -> None:
        if thread.ident is None:
            return  # never started
        thread.join(JOIN_TIMEOUT)
        if thread.is_alive():
            stuck.append(thread.name)

    def _note_received(self, nbytes: int) -> None:
        with self._changed:
            self._received_bytes += nbytes
            self._changed.notify_all()

    def _note_packet(self, packet_type: PacketType) -> None:
        with self._changed:
            self._received_types.append(packet_type)
            self._changed.notify_all()

    def _note_stopped_reading(self) -> None:
        with self._changed:
            self._stopped_reading += 1
            self._changed.notify_all()


# -- StalledServer ---------------------------------------------------------------


def expect(*packet_types: PacketType, timeout: float | None = DEFAULT_TIMEOUT) -> Step:
    """A script step: read packets until one of *packet_types* arrives (others are skipped).

    *timeout* bounds the whole step. The step returns the matching packet.
    """
    wanted = frozenset(packet_types)

    def step(conn: PeerConnection) -> tuple[PacketType, list[bytes]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            packet = conn.read_packet(remaining)
            if packet[0] in wanted:
                return packet

    return step


def send(packet_type: PacketType, *arguments: bytes) -> Step:
    """A script step: send one response packet (`PeerConnection.send_packet`)."""

    def step(conn: PeerConnection) -> None:
        conn.send_packet(packet_type, *arguments)

    return step


def assign_job(
    handle: bytes,
    function: bytes,
    unique: bytes,
    payload: bytes,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Step:
    """A script step that hands one job to a worker, as gearmand would.

    Reads packets (CAN_DO, SET_CLIENT_ID, ... are just recorded) and answers
    PRE_SLEEP with NOOP, since a worker that sleeps first waits for one
    (python-gearman does). On the first grab it answers like gearmand for a
    job without reducer (PROTOCOL.md 3): GRAB_JOB_UNIQ and GRAB_JOB_ALL get
    JOB_ASSIGN_UNIQ ``handle, function, unique, payload``; a plain GRAB_JOB
    gets JOB_ASSIGN ``handle, function, payload`` (it has no unique field).
    *timeout* bounds the wait for the grab.
    """

    def step(conn: PeerConnection) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            packet_type, _ = conn.read_packet(remaining)
            if packet_type is PacketType.PRE_SLEEP:
                conn.send_packet(PacketType.NOOP)
            elif packet_type is PacketType.GRAB_JOB:
                conn.send_packet(PacketType.JOB_ASSIGN, handle, function, payload)
                return
            elif packet_type in GRAB_TYPES:
                conn.send_packet(PacketType.JOB_ASSIGN_UNIQ, handle, function, unique, payload)
                return

    return step


def _max_client_sndbuf() -> int:
    """The biggest send buffer a Linux TCP socket can get: autotuned or set by hand."""
    try:
        autotuned = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
        # SO_SNDBUF set by hand is capped at wmem_max, and the kernel doubles it.
        by_hand = 2 * int(Path("/proc/sys/net/core/wmem_max").read_text())
    except (OSError, ValueError, IndexError):
        return _FALLBACK_SNDBUF
    return max(autotuned, by_hand)


class StalledServer(_ListeningPeer):
    """Accepts connections and stops reading them, so a client's big write stalls.

    Without a *script*, a connection is never read at all. With one, the
    script runs on every accepted connection in its own thread (speaking a
    little Gearman, e.g. ``StalledServer(assign_job(b"H:vm:1", b"f", b"u",
    b"data"))``) and then the connection is never read again. Connections
    stay open, unread, until the server exits. A script that fails (the
    client closes before the grab, a malformed packet) is raised again as
    `PeerError` at exit, and ends any ``wait_*`` at once.

    How much a client can write before it blocks is the client's own send
    buffer plus this side's small receive window; on Linux the send buffer
    autotunes up to ``net.ipv4.tcp_wmem`` (4 MiB by default), so a default
    client stalls after roughly 2.5-4 MiB, one with a small SO_SNDBUF after a
    few KiB. `stall_bound` gives a size that is sure to stall.

    Args:
        script: a `Step` or a sequence of steps run before the server stops reading.
        host: address to listen on.
        rcvbuf: SO_RCVBUF of the listening socket, inherited by accepted ones.
        backlog: the ``listen()`` backlog.
    """

    _kind = "stalled"

    def __init__(
        self,
        script: Script | None = None,
        *,
        host: str = DEFAULT_HOST,
        rcvbuf: int = STALL_RCVBUF,
        backlog: int = 8,
    ) -> None:
        super().__init__(host=host, backlog=backlog, rcvbuf=rcvbuf)
        if script is None:
            self._steps: tuple[Step, ...] = ()
        elif callable(script):
            self._steps = (script,)
        else:
            self._steps = tuple(script)
        self._has_script = script is not None

    @property
    def stalled(self) -> int:
        """How many connections the server has stopped reading (script done, or none)."""
        with self._changed:
            return self._stopped_reading

    def wait_stalled(self, timeout: float | None, count: int = 1) -> bool:
        """Wait until *count* connections are no longer read; False on timeout or script error."""
        return self._wait(lambda: self._stopped_reading >= count, timeout)

    def stall_bound(self, client_sndbuf: int | None = None) -> int:
        """Bytes that one client surely cannot hand to its kernel once the server stopped reading.

        The client's send buffer (*client_sndbuf*, as its ``getsockopt
        SO_SNDBUF`` reports it; by default the largest Linux allows), plus
        this side's receive buffer, plus a margin. Writing this many bytes
        (after what the script read) blocks for good.
        """
        if self._listener is None:
            raise PeerError("the stalled server has not been started")
        rcvbuf = self._listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sndbuf = _max_client_sndbuf() if client_sndbuf is None else client_sndbuf
        return sndbuf + rcvbuf + _STALL_MARGIN

    def _on_accept(self, conn: PeerConnection) -> None:
        if self._has_script:
            self._spawn(conn, self._run_script)
        else:
            conn.stop_reading()

    def _run_script(self, conn: PeerConnection) -> None:
        for step in self._steps:
            step(conn)
        conn.stop_reading()


# -- FullBacklogServer -----------------------------------------------------------


class FullBacklogServer:
    """A listening socket that never accepts, with its accept queue full: connects time out.

    On start it listens with *backlog* (0 by default) and opens *backlog* + 1
    connections to itself; Linux then drops every further SYN (the queue is
    full when it holds more than *backlog* connections), so a client's
    ``connect`` retries its SYN and times out instead of being refused. This
    holds whatever ``net.ipv4.tcp_syncookies`` says (0, 1 and 2 checked):
    the full-queue check drops the SYN before cookies are considered. Start
    checks the queue length through TCP_INFO where the platform has it.
    No thread: there is nothing to do once the queue is full.

    Args:
        host: address to listen on.
        backlog: the ``listen()`` backlog.
        connect_timeout: seconds each filler connection may take.
    """

    def __init__(
        self, *, host: str = DEFAULT_HOST, backlog: int = 0, connect_timeout: float = 5.0
    ) -> None:
        self._host = host
        self._backlog = backlog
        self._connect_timeout = connect_timeout
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._fillers: list[socket.socket] = []

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise PeerError("the full-backlog server has not been started, so it has no port yet")
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"``, as python-gearman takes a server."""
        return _format_address(self._host, self.port)

    @property
    def fillers(self) -> int:
        """How many connections fill the queue (*backlog* + 1)."""
        return self._backlog + 1

    def queue_length(self) -> int | None:
        """Connections waiting in the accept queue (TCP_INFO), or None where it is not known."""
        tcp_info = getattr(socket, "TCP_INFO", None)
        if self._listener is None or tcp_info is None:
            return None
        raw = self._listener.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
        if len(raw) < _TCP_INFO_QUEUE_OFFSET + _TCP_INFO_QUEUE.size:
            return None
        queued, _limit = _TCP_INFO_QUEUE.unpack_from(raw, _TCP_INFO_QUEUE_OFFSET)
        return int(queued)

    def start(self) -> FullBacklogServer:
        """Listen, fill the accept queue and check that it is full; returns self."""
        if self._listener is not None:
            raise PeerError(f"the full-backlog server is already running on {self.address}")
        self._listener = listen_on_free_port(self._host, backlog=self._backlog)
        self._port = self._listener.getsockname()[1]
        for _ in range(self.fillers):
            self._fillers.append(
                socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
            )
        self._wait_full()
        return self

    def close(self) -> None:
        """Close the filler connections and the listening socket; safe to call twice."""
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
        if self._listener is not None:
            self._listener.close()

    def _wait_full(self) -> None:
        # connect() returns when the client has the SYN-ACK; the server
        # queues the connection when it processes the final ACK, which on a
        # multi-CPU machine may happen a moment later. The kernel offers no
        # notification for that, so poll TCP_INFO, bounded. (Measured here:
        # already full at the first look.)
        deadline = time.monotonic() + self._connect_timeout
        while True:
            queued = self.queue_length()
            if queued is None or queued > self._backlog:
                return
            if time.monotonic() >= deadline:
                raise PeerError(
                    f"accept queue of {self.address} holds {queued} connections, not {self.fillers}"
                )
            time.sleep(0.001)

    def __enter__(self) -> FullBacklogServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = _format_address(self._host, self._port) if self._port else self._host
        return f"<FullBacklogServer {where} backlog={self._backlog}>"


# -- ScriptedServer --------------------------------------------------------------


class ScriptedServer(_ListeningPeer):
    """Runs ``handler(conn)`` for every accepted connection, each in its own daemon thread.

    The base for hostile-server tests: a handler reads with
    `PeerConnection.read_packet`, answers with `PeerConnection.send_packet`,
    or misbehaves with `PeerConnection.send_raw` (garbage, a header that
    announces 4 GiB, a slow drip paced by `PeerConnection.wait_closing`).
    A connection stays open after its handler returns, until the handler
    closes it or the server exits. An exception from a handler is raised
    again, as `PeerError`, when the ``with`` block ends (see `check`).

    Args:
        handler: called with each `PeerConnection`.
        host: address to listen on.
        rcvbuf: SO_RCVBUF for the listening socket (None: the system's default).
        backlog: the ``listen()`` backlog.
    """

    _kind = "scripted"

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = DEFAULT_HOST,
        rcvbuf: int | None = None,
        backlog: int = 8,
    ) -> None:
        super().__init__(host=host, backlog=backlog, rcvbuf=rcvbuf)
        self._handler = handler

    @property
    def handled(self) -> int:
        """How many handlers have returned (or raised) so far."""
        with self._changed:
            return self._handled

    def wait_handled(self, timeout: float | None, count: int = 1) -> bool:
        """Wait until *count* handlers have finished, by returning or raising; False on timeout.

        A handler that raised counts as finished; its exception is raised at exit (`check`).
        """
        return self._wait(lambda: self._handled >= count, timeout)

    def _on_accept(self, conn: PeerConnection) -> None:
        self._spawn(conn, self._handler)
