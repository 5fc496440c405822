"""The interfaces between the facades and an I/O runtime, one per colour.

Owns: the contracts, as :class:`typing.Protocol` classes, that every sync
runtime (blocking sockets, gevent: :class:`Runtime`) and every async one
(trio, asyncio: :class:`AsyncRuntime`) fulfils, the callback type through
which a runtime hands what it read to the kernel, and :func:`take_events`,
the one way a runtime turns bytes read into events.  Does not own: any I/O (the
runtimes), any protocol decision (``gearman_proto``) or any python-gearman
shape (the kernel modules).

The facade (``client.py``, ``worker.py``, ``admin_client.py``) drives it:
it asks the core which server to connect, calls :meth:`Runtime.connect`,
lets the core queue bytes, and calls :meth:`Runtime.wait` with a condition
over the core's state and a deadline.  The runtime writes what each core
connection queued, reads, feeds the bytes in and hands every event to the
``on_event`` callback it was built with, until the condition holds or the
deadline passes.  A link that breaks, stalls or speaks garbage reaches the
callback as the core connection's own :class:`gearman_proto.ConnectionClosed`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import gearman_proto as proto

from . import errors

if TYPE_CHECKING:  # the type only: the kernel does no TLS
    import ssl

__all__ = [
    "AnyConnection",
    "AsyncRuntime",
    "AsyncRuntimeFactory",
    "CertFiles",
    "Clock",
    "EventSink",
    "Failures",
    "Runtime",
    "RuntimeFactory",
    "TlsSettings",
    "connect_limit",
    "deadline_after",
    "take_events",
]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

AnyConnection = proto.ClientConnection | proto.WorkerConnection | proto.AdminConnection

#: called by a runtime for every event read, and for the end of a link; it may
#: return what the event changed (requests, status queries), so that a runtime
#: that parks waiters wakes only those watching them (None: say nothing).
EventSink = Callable[[proto.ServerAddress, proto.Event], "Sequence[object] | None"]


#: each server's last connect error, kept while it has not connected since
#: (what a client's ``ServerUnavailable`` says besides the core's verdict).
Failures = dict[proto.ServerAddress, errors.ConnectionError]


class CertFiles(NamedTuple):
    """The TLS files a python-gearman host dict names for its server."""

    #: the client's private key.
    keyfile: str
    #: the client's certificate (chain).
    certfile: str
    #: the CA certificates the server's certificate must chain to.
    ca_certs: str


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    """The TLS a facade's caller asked for; every runtime applies it the same
    way (:class:`gearman._tls.Tls`).

    A server named in *files* is reached over TLS with a context built from
    its files; any other server with *context*; none at all in plaintext.
    Certificates are checked against *server_hostname*, or the server's own
    host when it is None.
    """

    context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    files: Mapping[proto.ServerAddress, CertFiles] = dataclasses.field(default_factory=dict)


class Runtime(Protocol):
    """What a sync facade needs from its I/O runtime; about a dozen names.

    Time is the runtime's monotonic clock (:meth:`now`); every deadline is
    a value of that clock, None meaning no deadline.  No method blocks past
    the deadline it is given.
    """

    #: held by the facade around every use of the core when callers may share
    #: the object (threads, greenlets); :meth:`wait` lets go of it while it
    #: blocks, so other callers can submit meanwhile.
    lock: AbstractContextManager[object]

    def now(self) -> float:
        """The runtime's monotonic clock, in seconds."""

    def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Open a link to *server* by *deadline*, then attach ``connection()`` to it.

        *connection* is called only once the transport is up (it is the
        session's ``connection_made``), so a failed connect leaves the core
        untouched.  A TLS link is up once its handshake is done, within the
        same deadline.

        Raises:
            gearman.errors.ConnectionError: no link by the deadline
                (:class:`gearman.errors.TlsError`: the TLS handshake failed).
        """

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""

    def flush(self) -> None:
        """Write what the core queued, without waiting."""

    def wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object] = ()
    ) -> bool:
        """Write what the core queued, then read and hand events on until
        *done()* holds (True), *deadline* passes (False), or a link ends
        (``done()``: the caller may have to connect before it waits again).

        *done* is checked before anything blocks, so a condition that
        already holds returns at once.  A link whose queued bytes are still
        not written when the deadline passes has stalled: it is given up
        (``send_failed``), and the core decides what its requests become.
        *watch*: the objects *done* depends on (empty: anything), so a
        runtime that parks waiters checks *done* only when one changed.
        """

    def refresh(self) -> None:
        """Take in what already arrived (a link closed while idle), without
        waiting; a no-op for runtimes whose readers run on their own."""

    def wake(self) -> None:
        """Make every :meth:`wait` look at its condition again now."""

    def run_job(self, job: Callable[[T], object], argument: T) -> None:
        """Run ``job(argument)`` (user code) under the runtime's concurrency limit."""

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server*, reporting its end to the sink."""

    def close_all(self) -> None:
        """Close every link, reporting each end to the sink."""


class RuntimeFactory(Protocol):
    """Builds a runtime for one client, worker or admin client."""

    #: how many jobs :meth:`Runtime.run_job` runs at once (None: any number).
    job_slots: int | None

    def __call__(
        self,
        on_event: EventSink,
        *,
        shared: bool,
        keepalive: bool,
        connect_timeout: float | None,
        tls: TlsSettings | None = None,
    ) -> Runtime:
        """A runtime that hands events to *on_event*.

        Args:
            on_event: the kernel's receiver.
            shared: several callers (threads, greenlets) may use the object
                at once, so :attr:`Runtime.lock` must be a real lock.
            keepalive: TCP keepalive on every link.
            connect_timeout: the cap of one connect, within any deadline.
            tls: which links are TLS, and how they are checked (None: none).

        Raises:
            gearman.errors.TlsError: a host dict's TLS files cannot be used.
        """


# ------------------------------------------------------------ async colour


class AsyncRuntime(Protocol):
    """What an async facade needs from its I/O runtime (trio, asyncio).

    One reader and one writer per link run inside the runtime; callers
    never read.  :meth:`wait` parks the calling task until its condition
    holds, which the reader checks after every batch of events, so a
    hundred tasks waiting on one client cost a predicate call each per
    batch, not a task switch.  Cancelling a waiting task (a cancel scope,
    ``asyncio.timeout``) only ends its wait: the link, and every other
    task's request, are untouched.  Deadlines are values of :meth:`now`.
    """

    def now(self) -> float:
        """The runtime's monotonic clock, in seconds."""

    async def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Open a link to *server* by *deadline* (a TLS link: with its handshake),
        attach ``connection()`` to it, and start its reader and writer.  One
        connect per server at a time: a second caller waits for the first
        one's outcome.

        Raises:
            gearman.errors.ConnectionError: no link by the deadline
                (:class:`gearman.errors.TlsError`: the TLS handshake failed).
        """

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""

    def flush(self) -> None:
        """Tell the writers that the core queued bytes; never waits."""

    async def drain(self, deadline: float | None) -> bool:
        """Wait until every byte queued so far is written (True), or *deadline*
        (False; a link that made no progress in the meantime is given up)."""

    async def wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object] = ()
    ) -> bool:
        """Park until *done()* holds (True), *deadline* passes (False), or a
        link ends (``done()``); *done* is checked when an object in *watch*
        changed (empty: after every batch).  A link whose write stalled for
        the whole wait is given up at the deadline."""

    def wake(self) -> None:
        """Make every :meth:`wait` look at its condition again now."""

    def lock(self) -> AbstractAsyncContextManager[object]:
        """A new lock of the runtime's kind, for callers that must take turns."""

    def job_group(self) -> AbstractAsyncContextManager[object]:
        """The scope jobs run in (a nursery, a task group): leaving it waits
        for the jobs still running; an error or cancellation cancels them."""

    def run_job(self, job: Callable[[T], Awaitable[object]], argument: T) -> None:
        """Start ``job(argument)`` in the open :meth:`job_group`; the session's
        ``max_jobs`` is the concurrency limit (it grabs only with room)."""

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server* now, reporting its end to the sink."""

    async def aclose(self, grace: float) -> None:
        """Write what is queued for at most *grace* seconds (also when the
        caller is being cancelled), then close every link."""


class AsyncRuntimeFactory(Protocol):
    """Builds an async runtime for one client, worker or admin client."""

    def __call__(
        self,
        on_event: EventSink,
        *,
        keepalive: bool,
        connect_timeout: float | None,
        open_stream: Any = None,
        tls: TlsSettings | None = None,
    ) -> AsyncRuntime:
        """A runtime that hands events to *on_event* (see :class:`RuntimeFactory`);
        *open_stream* opens a link's stream the runtime's way (None: TCP;
        the facade never gives it with *tls*)."""


class Clock(Protocol):
    """Anything with a runtime's clock: every runtime, both colours."""

    def now(self) -> float:
        """The runtime's monotonic clock, in seconds."""


def connect_limit(
    now: float, deadline: float | None, connect_timeout: float | None
) -> float | None:
    """When one connect must be done: the caller's *deadline*, or *connect_timeout*
    seconds from *now* if that comes first (None: never)."""
    if connect_timeout is None:
        return deadline
    cap = now + connect_timeout
    return cap if deadline is None or cap < deadline else deadline


def deadline_after(clock: Clock, timeout: float | None) -> float | None:
    """The deadline *timeout* seconds from now on *clock* (None: never)."""
    return None if timeout is None else clock.now() + timeout


def take_events(
    connection: AnyConnection, data: bytes | bytearray | memoryview
) -> list[proto.Event]:
    """Feed *data* (``b""``: the end of the stream) and return every event it completes.

    A stream that breaks the protocol ends the list with the connection's
    own :class:`gearman_proto.ConnectionClosed` (after every good event
    before the bad bytes); the connection is then no longer ``OPEN``.
    What the core answered on its own (GRAB_JOB after NOOP) is queued by
    now: write it before handling the events.
    """
    events: list[proto.Event] = []
    try:
        connection.receive_data(data)
        while batch := connection.next_events():
            events += batch
    except proto.RemoteProtocolError as error:
        logger.error("protocol error, closing: %s", error)
        events.append(connection.abandon())
    return events
