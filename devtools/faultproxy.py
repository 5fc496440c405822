"""A fault-injecting TCP proxy on loopback, for tests that need a bad network.

`FaultProxy` listens on a free loopback port below 32768 (the port policy of
`devtools.gearmand`) and opens one upstream connection (to a real gearmand,
or any host:port) per connection it accepts. It forwards both directions
unchanged until told otherwise, and frames both byte streams as Gearman
binary packets (the 12-byte ``\\0REQ``/``\\0RES`` header: magic, type, body
size) or admin text lines, so a fault can be armed at an exact packet
boundary or a number of bytes into a packet.

Faults, per connection and per direction (a `Flow`: ``to_server`` or
``to_client``), each fired by a `Trigger` (now, after N bytes, after N
packets, before or after the nth packet of a type):

- `Flow.cut`: close both sides (FIN; ``reset=True``: RST through SO_LINGER
  0) once the bytes before the trigger are written;
- `Flow.delay`: hold each chunk read for a number of seconds;
- `Flow.drip`: forward one byte at a time with a pause before each;
- `Flow.stop_reading`: stop reading from the flow's sender and forward
  nothing more, so the sender's buffers fill (a stalled peer);
- `Flow.black_hole`: read and discard everything, keep the connection open
  (a frozen server or a black-holing middlebox; `Connection.black_hole`
  does both directions);
- `Flow.heal` / `Connection.heal`: disarm and end every fault but a cut.

Faults are armed on live connections (`FaultProxy.connections`,
`FaultProxy.connection`) or ahead, on a connection not accepted yet
(`FaultProxy.next_connection`, or `connection(i)` for a later index): they
are in place before its first byte. Every connection, the packets that
passed each way (name, size, whether they were dropped), the byte counts and
the faults fired are reported back, and tests wait for them with
`FaultProxy.wait_for` and the ``wait_*`` methods, which wake on each report
(no polling sleeps).

Design: the proxy runs in a subprocess (`devtools._faultproxy_engine`, a
selectors loop, standard library only) and this module talks to it over a
socketpair. A thread would have been simpler, but the binding suite runs
under gevent (monkey-patched, where a "thread" is a greenlet sharing the
test's hub and any blocking call of the test stops it), trio and asyncio,
and a test may block its own thread or hold the GIL: a separate process is
immune to all of that, and to whatever the runtime under test does to
sockets and time. The price is a round trip per command (about 0.1 ms) and
a start of about 50 ms (a Python interpreter with ``-I``). Reports come back as JSON
lines that this side reads only inside its own calls: it starts no thread.
Waiting reads the control socket through *wait_readable* (default:
`select.select`, cooperative under monkey-patching; pass gevent's select
when the test runs greenlets on an unpatched hub, as the gevent runtime of
the binding suite does, or those greenlets never run while the test waits).

Consistency: each accessor first makes a round trip (`FaultProxy.sync`), so
it shows everything the proxy did before that call; inside a `wait_for`
predicate accessors show what has been read so far instead. A `FaultProxy`
is used by one thread (or greenlet) at a time.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar

from devtools._faultproxy_engine import PACKET_NAMES, TEXT, TO_CLIENT, TO_SERVER, UNFRAMED
from devtools.gearmand import DEFAULT_HOST, PORT_RANGE

__all__ = [
    "DEFAULT_TIMEOUT",
    "PACKET_NAMES",
    "TEXT",
    "TO_CLIENT",
    "TO_SERVER",
    "UNFRAMED",
    "Connection",
    "FaultProxy",
    "FaultProxyError",
    "FaultProxyFactory",
    "FaultProxyTimeout",
    "Fired",
    "Flow",
    "Packet",
    "Trigger",
]

#: Seconds a command, a start or a ``wait_*`` call waits by default.
DEFAULT_TIMEOUT = 10.0
#: Seconds `FaultProxy.stop` waits for the subprocess before it kills it.
STOP_TIMEOUT = 10.0
_ENGINE = Path(__file__).resolve().with_name("_faultproxy_engine.py")
_NAMES = frozenset(PACKET_NAMES.values()) | {TEXT}

T = TypeVar("T")

#: ``wait_readable(fileno, timeout)``: True once *fileno* is readable, False at the timeout.
WaitReadable = Callable[[int, float | None], bool]


class FaultProxyError(RuntimeError):
    """The proxy could not do what it was asked, or its subprocess reported an error."""


class FaultProxyTimeout(FaultProxyError, AssertionError):
    """A ``wait_*`` call's condition did not hold within its timeout (fails a test)."""


class _HasAddress(Protocol):
    """Anything with ``host`` and ``port``, such as `devtools.gearmand.Gearmand`."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def _select_readable(fileno: int, timeout: float | None) -> bool:
    # select.select is looked up at each call, so gevent's monkey-patching,
    # applied after this import, is honoured.
    readable, _, _ = select.select([fileno], [], [], timeout)
    return bool(readable)


def _split_address(upstream: str | tuple[str, int] | _HasAddress) -> tuple[str, int]:
    if isinstance(upstream, tuple):
        return upstream[0], int(upstream[1])
    if isinstance(upstream, str):
        host, _, port = upstream.rpartition(":")
        if not host or not port.isdecimal():
            raise ValueError(f"upstream must be 'host:port', not {upstream!r}")
        return host.strip("[]"), int(port)
    return upstream.host, upstream.port


# ------------------------------------------------------------------ triggers


@dataclass(frozen=True)
class Trigger:
    """When a fault fires, as a position in one flow's byte stream.

    Counts are from the start of the connection, not from when the fault
    was armed; a trigger whose position has passed already fires at once.
    Build one with the class methods.
    """

    kind: str
    n: int = 0
    name: str = ""
    nth: int = 1
    into: int = 0

    @classmethod
    def now(cls) -> Trigger:
        """At once (for a connection not accepted yet: before its first byte)."""
        return cls("now")

    @classmethod
    def after_bytes(cls, n: int) -> Trigger:
        """Once *n* bytes have passed (possibly inside a packet)."""
        return cls("bytes", n=_count(n, "n"))

    @classmethod
    def after_packets(cls, n: int) -> Trigger:
        """At the boundary after the *n*-th whole packet (0: before the first byte)."""
        return cls("packets", n=_count(n, "n"))

    @classmethod
    def before(cls, packet: str | int, nth: int = 1, into: int = 0) -> Trigger:
        """At the start of the *nth* packet of type *packet*, or *into* bytes into it.

        *packet* is a name (``"JOB_CREATED"``, ``"TEXT"`` for an admin line)
        or a type number. ``into=0`` passes none of it; an *into* of the
        packet's size or more passes all of it (as `after`).
        """
        if nth < 1:
            raise ValueError("nth counts from 1")
        return cls("before", name=_packet_name(packet), nth=nth, into=_count(into, "into"))

    @classmethod
    def after(cls, packet: str | int, nth: int = 1) -> Trigger:
        """At the boundary right after the *nth* packet of type *packet* passed."""
        if nth < 1:
            raise ValueError("nth counts from 1")
        return cls("after", name=_packet_name(packet), nth=nth)

    def _wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "name": self.name,
            "nth": self.nth,
            "into": self.into,
        }


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, not {value!r}")
    return value


def _packet_name(packet: str | int) -> str:
    if isinstance(packet, int) and not isinstance(packet, bool):
        if packet not in PACKET_NAMES:
            raise ValueError(f"no packet type {packet}")
        return PACKET_NAMES[packet]
    name = str(packet).upper()
    if name not in _NAMES:
        raise ValueError(f"unknown packet name {packet!r}")
    return name


# ------------------------------------------------------------------ reports


@dataclass(frozen=True)
class Packet:
    """One packet that passed (or was dropped) in one direction.

    Attributes:
        name: the type's name (``"SUBMIT_JOB"``), ``"TEXT"`` for an admin
            line, ``"UNFRAMED"`` for bytes that cannot be framed, or
            ``"TYPE_<n>"`` for an unknown type number.
        number: the type number (None for text and unframed bytes).
        magic: ``"REQ"`` or ``"RES"`` (None for text and unframed bytes).
        offset: where it starts in the flow's stream.
        size: its bytes, header included (None for unframed bytes).
        dropped: some or all of its bytes were discarded (black hole).
        text: an admin line without its line end (at most 200 characters).
    """

    name: str
    number: int | None
    magic: str | None
    offset: int
    size: int | None
    dropped: bool
    text: str | None


@dataclass(frozen=True)
class Fired:
    """A fault that fired: which, where in the flow, after how many packets."""

    fault: int
    action: str
    offset: int
    packets: int


@dataclass
class _FlowState:
    packets: list[Packet] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    read: int = 0
    sent: int = 0
    dropped: int = 0
    writes: int = 0
    held: int = 0
    eof: bool = False
    eof_forwarded: bool = False
    reading: bool = True


@dataclass
class _ConnectionState:
    client: tuple[str, int]
    upstream_local: tuple[str, int] | None = None
    upstream_error: str | None = None
    close_reason: str | None = None
    flows: dict[str, _FlowState] = field(
        default_factory=lambda: {TO_SERVER: _FlowState(), TO_CLIENT: _FlowState()}
    )


# ------------------------------------------------------------------ handles


class Flow:
    """One direction of one connection: its faults and what passed.

    ``to_server`` carries what the client sends, ``to_client`` what the
    server sends. Every fault method takes ``at`` (a `Trigger`, default now)
    and returns the fault's number (see `Fired.fault`).
    """

    def __init__(self, proxy: FaultProxy, index: int, direction: str) -> None:
        self._proxy = proxy
        self.index = index
        self.direction = direction

    # -- faults --------------------------------------------------------------

    def cut(self, at: Trigger | None = None, *, reset: bool = False) -> int:
        """Close both sides of the connection at *at* (RST instead of FIN if *reset*).

        The bytes before the trigger are written first; nothing after it is.
        """
        return self._arm("cut", at, reset=reset)

    def delay(self, seconds: float, at: Trigger | None = None) -> int:
        """From *at* on, forward each chunk *seconds* after it was read."""
        return self._arm("delay", at, seconds=float(seconds))

    def drip(self, pause: float = 0.005, at: Trigger | None = None) -> int:
        """From *at* on, forward one byte at a time, *pause* seconds before each."""
        return self._arm("drip", at, pause=float(pause))

    def stop_reading(self, at: Trigger | None = None) -> int:
        """From *at* on, read nothing more from the sender and forward nothing more."""
        return self._arm("stop_reading", at)

    def black_hole(self, at: Trigger | None = None) -> int:
        """From *at* on, read and discard everything; the connection stays open."""
        return self._arm("black_hole", at)

    def heal(self) -> None:
        """Disarm this flow's faults and end those in effect (held bytes go on)."""
        self._proxy._command("heal", c=self.index, d=self.direction)

    def _arm(self, action: str, at: Trigger | None, **params: Any) -> int:
        trigger = (at or Trigger.now())._wire()
        value = self._proxy._command(
            "arm", c=self.index, d=self.direction, action=action, params=params, trigger=trigger
        )
        return int(value)

    # -- what passed ---------------------------------------------------------

    def _state(self) -> _FlowState:
        return self._proxy._connection_state(self.index).flows[self.direction]

    @property
    def packets(self) -> list[Packet]:
        """Every packet that passed (or was dropped) so far, in order."""
        return list(self._state().packets)

    @property
    def names(self) -> list[str]:
        """The names of `packets`."""
        return [packet.name for packet in self._state().packets]

    @property
    def fired(self) -> list[Fired]:
        """The faults of this flow that fired, in order."""
        return list(self._state().fired)

    @property
    def bytes_read(self) -> int:
        """Bytes read from the sender."""
        return self._state().read

    @property
    def bytes_sent(self) -> int:
        """Bytes written to the receiver."""
        return self._state().sent

    @property
    def bytes_dropped(self) -> int:
        """Bytes discarded by a black hole."""
        return self._state().dropped

    @property
    def writes(self) -> int:
        """``send()`` calls that wrote something (one per byte while dripping)."""
        return self._state().writes

    @property
    def bytes_held(self) -> int:
        """Bytes read and not released yet (delayed, dripping or stopped)."""
        return self._state().held

    @property
    def ended(self) -> bool:
        """The sender closed its side (seen by the proxy)."""
        return self._state().eof

    @property
    def reading(self) -> bool:
        """False while `stop_reading` is in effect."""
        return self._state().reading

    # -- waiting ---------------------------------------------------------------

    def wait_for_packet(
        self, name: str | int, count: int = 1, timeout: float | None = None
    ) -> Packet:
        """Wait until *count* packets of type *name* passed; return the last of them."""
        wanted = _packet_name(name) if name != UNFRAMED else UNFRAMED

        def seen() -> Packet | None:
            matching = [p for p in self._state().packets if p.name == wanted]
            return matching[count - 1] if len(matching) >= count else None

        return self._proxy.wait_for(
            seen, timeout, f"{count} {wanted} on connection {self.index} {self.direction}"
        )

    def wait_for_bytes(self, count: int, timeout: float | None = None) -> int:
        """Wait until *count* bytes were written to the receiver; return the count."""

        def sent() -> int | None:
            done = self._state().sent
            return done if done >= count else None

        return self._proxy.wait_for(
            sent,
            timeout,
            f"{count} bytes sent on connection {self.index} {self.direction}",
        )

    def wait_fired(self, count: int = 1, timeout: float | None = None) -> Fired:
        """Wait until *count* faults of this flow fired; return the last of them."""

        def fired() -> Fired | None:
            done = self._state().fired
            return done[count - 1] if len(done) >= count else None

        return self._proxy.wait_for(
            fired, timeout, f"{count} fault(s) fired on connection {self.index} {self.direction}"
        )

    def __repr__(self) -> str:
        return f"<Flow {self.index} {self.direction}>"


class Connection:
    """One proxied connection (accepted, or still to come): its two `Flow`s.

    Attributes:
        index: 0 for the first connection the proxy accepts, 1 for the next...
        to_server: the client's bytes on their way to the server.
        to_client: the server's bytes on their way to the client.
    """

    def __init__(self, proxy: FaultProxy, index: int) -> None:
        self._proxy = proxy
        self.index = index
        self.to_server = Flow(proxy, index, TO_SERVER)
        self.to_client = Flow(proxy, index, TO_CLIENT)

    def flow(self, direction: str) -> Flow:
        """`to_server` or `to_client` by name."""
        if direction not in (TO_SERVER, TO_CLIENT):
            raise ValueError(f"direction must be {TO_SERVER!r} or {TO_CLIENT!r}")
        return self.to_server if direction == TO_SERVER else self.to_client

    # -- faults on both directions --------------------------------------------------

    def cut(self, *, reset: bool = False) -> int:
        """Close both sides now (RST if *reset*)."""
        return self.to_server.cut(reset=reset)

    def black_hole(self) -> None:
        """Discard everything both ways from now on, keeping both sides open."""
        self.to_server.black_hole()
        self.to_client.black_hole()

    def stop_reading(self) -> None:
        """Stop reading from both sides (both senders' buffers fill)."""
        self.to_server.stop_reading()
        self.to_client.stop_reading()

    def heal(self) -> None:
        """Disarm and end every fault of both directions but a cut."""
        self._proxy._command("heal", c=self.index, d=None)

    # -- state ------------------------------------------------------------------------

    @property
    def accepted(self) -> bool:
        """The proxy has accepted this connection."""
        return self._proxy._known(self.index)

    @property
    def client_port(self) -> int:
        """The client's port (the accepted socket's peer)."""
        return self._proxy._connection_state(self.index, accepted=True).client[1]

    @property
    def upstream_port(self) -> int | None:
        """The local port of the upstream connection (None until it is connected)."""
        local = self._proxy._connection_state(self.index).upstream_local
        return None if local is None else local[1]

    @property
    def upstream_error(self) -> str | None:
        """Why the upstream connect failed, if it did."""
        return self._proxy._connection_state(self.index).upstream_error

    @property
    def closed(self) -> bool:
        """The proxy closed both sides (after a cut, both ends, an error or stop)."""
        return self._proxy._connection_state(self.index).close_reason is not None

    @property
    def close_reason(self) -> str | None:
        """``"cut"``, ``"reset"``, ``"client closed"``, ``"server closed"``,
        ``"client reset (...)"``, ``"upstream connect failed: ..."``,
        ``"proxy stopped"``, or None while open."""
        return self._proxy._connection_state(self.index).close_reason

    def wait_accepted(self, timeout: float | None = None) -> Connection:
        """Wait until the proxy accepted this connection and its upstream is connected
        (or failed); returns self."""

        def ready() -> bool:
            state = self._proxy._connection_state(self.index)
            return state.upstream_local is not None or state.close_reason is not None

        self._proxy.wait_for(ready, timeout, f"connection {self.index} accepted")
        return self

    def wait_closed(self, timeout: float | None = None) -> str:
        """Wait until the proxy closed this connection; return the reason."""

        def reason() -> str | None:
            return self._proxy._connection_state(self.index).close_reason

        return self._proxy.wait_for(
            reason,
            timeout,
            f"connection {self.index} closed",
        )

    def __repr__(self) -> str:
        return f"<Connection {self.index} of {self._proxy!r}>"


# ------------------------------------------------------------------ the proxy


class FaultProxy:
    """The proxy: a subprocess that forwards loopback connections to *upstream*.

    Nothing runs until `start` (or ``with FaultProxy(...) as proxy:``);
    `stop` closes every connection and ends the subprocess, which also ends
    on its own if this process exits.

    Args:
        upstream: where connections go: ``"host:port"``, ``(host, port)``, or
            an object with ``host`` and ``port`` (a `devtools.gearmand.Gearmand`).
        host: the loopback address to listen on.
        rcvbuf: SO_RCVBUF for the proxy's sockets (both sides), to make a
            stalled flow fill up sooner; None keeps the system's.
        wait_readable: how to wait for the control socket (see the module
            docstring); default `select.select`.
        timeout: seconds a command, `start` and a ``wait_*`` call wait by default.
    """

    def __init__(
        self,
        upstream: str | tuple[str, int] | _HasAddress,
        *,
        host: str = DEFAULT_HOST,
        rcvbuf: int | None = None,
        wait_readable: WaitReadable | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy listens on loopback only, not {host!r}")
        self.upstream = _split_address(upstream)
        self._host = host
        self._rcvbuf = rcvbuf
        self._wait_readable = wait_readable or _select_readable
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._stderr: IO[bytes] | None = None
        self._inbox = bytearray()
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self._port: int | None = None
        self._states: list[_ConnectionState] = []
        self._errors: list[str] = []
        self._ended = False  # the control channel reached its end
        self._waiting = False
        self._busy = threading.Lock()
        self._owner: int | None = None  # the thread inside a call

    # -- properties -----------------------------------------------------------------

    @property
    def host(self) -> str:
        """The loopback address the proxy listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the proxy listens on (known once started)."""
        if self._port is None:
            raise FaultProxyError("the proxy has not been started")
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"`` (``"[v6]:port"`` for IPv6), as the gearman classes take it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    @property
    def pid(self) -> int:
        """The subprocess's process id."""
        if self._process is None:
            raise FaultProxyError("the proxy is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """True from `start` until `stop` (and while the subprocess lives)."""
        return self._process is not None and self._process.poll() is None

    @property
    def errors(self) -> list[str]:
        """Tracebacks the subprocess reported (a connection it had to give up)."""
        return list(self._errors)

    @property
    def connections(self) -> list[Connection]:
        """The connections accepted so far, in order."""
        self._refresh()
        return [Connection(self, index) for index in range(len(self._states))]

    def connection(self, index: int) -> Connection:
        """Connection number *index*, accepted already or not (faults can be armed ahead)."""
        if index < 0:
            raise ValueError("connections are numbered from 0")
        return Connection(self, index)

    @property
    def next_connection(self) -> Connection:
        """The first connection not accepted yet: arm faults on it ahead.

        Keep the handle (``conn = proxy.next_connection``) to arm several
        faults on the same connection.
        """
        return Connection(self, int(self._command("next")))

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start the subprocess and wait until it listens; returns self."""
        if self._process is not None:
            raise FaultProxyError("the proxy is running already")
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        low, high = PORT_RANGE
        command = [
            sys.executable,
            "-I",
            str(_ENGINE),
            "--control-fd",
            str(theirs.fileno()),
            "--upstream",
            f"{self.upstream[0]}:{self.upstream[1]}",
            "--host",
            self._host,
            "--low",
            str(low),
            "--high",
            str(high),
        ]
        if self._rcvbuf is not None:
            command += ["--rcvbuf", str(self._rcvbuf)]
        try:
            self._process = subprocess.Popen(
                command,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
            )
        except BaseException:
            ours.close()
            self._stderr.close()
            raise
        finally:
            theirs.close()
        self._control = ours
        self._ended = False
        _LIVE.add(self)
        try:
            self.wait_for(lambda: self._port is not None, self.timeout, "the proxy listening")
        except BaseException:
            self._kill()
            raise
        return self

    def stop(self) -> None:
        """Close every connection, end the subprocess and the control channel.

        Does nothing if the proxy is not running. Raises `FaultProxyError`
        afterwards if the subprocess reported errors meanwhile.
        """
        if self._process is None:
            return
        try:
            if not self._ended:
                with contextlib.suppress(FaultProxyError, OSError):
                    self._command("stop")
                    # Read the last reports (connections closed) up to the end.
                    self.wait_for(lambda: self._ended, STOP_TIMEOUT, "the proxy's last reports")
        finally:
            self._kill()
        if self._errors:
            raise FaultProxyError("the fault proxy reported errors:\n" + "\n".join(self._errors))

    def _kill(self) -> None:
        process, self._process = self._process, None
        _LIVE.discard(self)
        if self._control is not None:
            self._control.close()
            self._control = None
        if process is not None:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self._host}:{self._port}" if self._port is not None else self._host
        return f"<FaultProxy {where} -> {self.upstream[0]}:{self.upstream[1]}>"

    # -- waiting ----------------------------------------------------------------------------

    def sync(self) -> None:
        """Round trip: afterwards every report of what the proxy did before is in."""
        self._command("sync")

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float | None = None,
        what: str = "condition",
    ) -> T:
        """Call *predicate* after each batch of reports until it returns something truthy.

        Returns that value. Raises `FaultProxyTimeout` when *timeout*
        seconds (default: the proxy's *timeout*) pass first, and
        `FaultProxyError` if the subprocess ends meanwhile. *predicate*
        reads the proxy's handles (`Flow.names`, `Connection.closed`...).
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._exclusive():
            waiting, self._waiting = self._waiting, True
            try:
                while True:
                    value = predicate()
                    if value:
                        return value
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise FaultProxyTimeout(f"{what}: not reached within {limit} s")
                    if self._ended:
                        raise self._gone()
                    self._receive(remaining)
            finally:
                self._waiting = waiting

    def wait_for_connection(self, index: int = 0, timeout: float | None = None) -> Connection:
        """Wait until connection *index* is accepted and connected upstream; return it."""
        return self.connection(index).wait_accepted(timeout)

    # -- the control channel ------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Refuse use from a second thread while a call is under way (reentrant)."""
        me = threading.get_ident()
        if self._owner == me:
            yield
            return
        if not self._busy.acquire(blocking=False):
            raise FaultProxyError("a FaultProxy is used by one thread or greenlet at a time")
        self._owner = me
        try:
            yield
        finally:
            self._owner = None
            self._busy.release()

    def _command(self, op: str, **fields: Any) -> Any:
        if self._control is None:
            raise FaultProxyError("the proxy is not running")
        self._next_id += 1
        request = self._next_id
        line = json.dumps({"op": op, "id": request, **fields}).encode() + b"\n"
        with self._exclusive():
            try:
                self._control.sendall(line)
            except OSError as exc:
                raise self._gone() from exc
            reply: dict[str, Any] = self.wait_for(
                lambda: self._replies.pop(request, None), self.timeout, f"the reply to {op!r}"
            )
        if not reply["ok"]:
            raise FaultProxyError(f"{op}: {reply['error']}")
        return reply.get("value")

    def _refresh(self) -> None:
        if not self._waiting and self._control is not None and not self._ended:
            self.sync()

    def _receive(self, timeout: float) -> None:
        """Wait up to *timeout* s for reports and take in all that have arrived."""
        control = self._control
        if control is None:
            raise FaultProxyError("the proxy is not running")
        if not self._wait_readable(control.fileno(), timeout):
            return
        try:
            data = control.recv(1 << 16, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._ended = True
            return
        self._inbox += data
        *lines, rest = bytes(self._inbox).split(b"\n")
        self._inbox = bytearray(rest)
        for line in lines:
            self._take(json.loads(line))

    def _gone(self) -> FaultProxyError:
        output = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            output = self._stderr.read()
        return FaultProxyError(
            f"the fault proxy's process ended\n{output.decode(errors='replace')}"
        )

    # -- the mirror ------------------------------------------------------------------------------

    def _known(self, index: int) -> bool:
        self._refresh()
        return index < len(self._states)

    def _connection_state(self, index: int, *, accepted: bool = False) -> _ConnectionState:
        """The mirror of connection *index*; an empty one while it is not accepted
        (unless *accepted* is required)."""
        self._refresh()
        if index < len(self._states):
            return self._states[index]
        if accepted:
            raise FaultProxyError(f"connection {index} has not been accepted (yet)")
        return _ConnectionState(client=("", 0))

    def _take(self, message: dict[str, Any]) -> None:
        if "re" in message:
            self._replies[int(message["re"])] = message
            return
        event = message["ev"]
        if event == "ready":
            self._port = int(message["port"])
            return
        if event == "error":
            self._errors.append(f"connection {message.get('c')}: {message['message']}")
            return
        index = int(message["c"])
        if event == "accept":
            host, port = message["client"]
            assert index == len(self._states), (index, len(self._states))
            self._states.append(_ConnectionState(client=(host, int(port))))
            return
        state = self._states[index]
        if event == "upstream":
            if message["ok"]:
                host, port = message["local"]
                state.upstream_local = (host, int(port))
            else:
                state.upstream_error = message["error"]
        elif event == "closed":
            state.close_reason = message["reason"]
        elif event == "packet":
            state.flows[message["d"]].packets.append(
                Packet(
                    name=message["name"],
                    number=message["number"],
                    magic=message["magic"],
                    offset=message["offset"],
                    size=message["size"],
                    dropped=message["dropped"],
                    text=message["text"],
                )
            )
        elif event == "fired":
            state.flows[message["d"]].fired.append(
                Fired(message["fault"], message["action"], message["offset"], message["packets"])
            )
        elif event == "io":
            flow = state.flows[message["d"]]
            flow.read, flow.sent = message["read"], message["sent"]
            flow.dropped, flow.writes, flow.held = (
                message["dropped"],
                message["writes"],
                message["held"],
            )
            flow.eof, flow.eof_forwarded = message["eof"], message["eof_forwarded"]
            flow.reading = message["reading"]


#: What the ``fault_proxy`` test fixture hands out: *upstream* and `FaultProxy`'s
#: keywords in, a started proxy out.
FaultProxyFactory = Callable[..., FaultProxy]

#: Proxies with a running subprocess; the atexit hook below ends them.
_LIVE: set[FaultProxy] = set()


@atexit.register
def _stop_all() -> None:
    for proxy in list(_LIVE):
        with contextlib.suppress(Exception):
            proxy._kill()
