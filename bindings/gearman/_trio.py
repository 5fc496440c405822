"""The trio runtime: one reader and one writer task per link, waiters parked on events.

Owns: opening links (``trio.open_tcp_stream``, or any ``trio.abc.Stream``
from a user's ``open_stream``), the reader that feeds each link's bytes to
its core connection and hands the events on, the writer that sends what the
core queued (never two writes at once on a stream), deadlines and
cancellation in trio's idiom, and the nursery jobs run in.  Makes no
protocol decision (``gearman_proto``) and shapes nothing (the kernel).

Link tasks are trio *system* tasks: a client needs no nursery of the
caller's, as python-gearman's API has none, and they end with the link or
with the ``trio.run`` they started in.  A caller's cancel scope only ever
ends its own wait; a write is cancelled only by giving the link up, which
goes through the core (``send_failed``) like any broken link.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import trio

import gearman_proto as proto

from . import errors
from ._runtime import AnyConnection, EventSink, take_events
from ._sockets import tune
from ._waiters import Waiters

__all__ = ["READ_SIZE", "OpenStream", "TrioRuntime", "open_tcp_stream"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: bytes asked of the stream per read: many packets per read.
READ_SIZE = 256 * 1024

#: bytes per ``send_all``: progress is counted per chunk, so a wait can tell
#: its own bytes from a large write queued after them.
WRITE_CHUNK = 256 * 1024

#: opens the stream of one link; the default is :func:`open_tcp_stream`.
OpenStream = Callable[[proto.ServerAddress], Awaitable[trio.abc.Stream]]

_OPEN = proto.ConnectionState.OPEN
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


async def open_tcp_stream(server: proto.ServerAddress) -> trio.abc.Stream:
    """A TCP stream to *server* (IPv4 or IPv6, happy eyeballs: trio's own)."""
    return await trio.open_tcp_stream(server.host, server.port)


class _Link:
    """One stream, its core connection, and the bytes its writer owes."""

    __slots__ = (
        "connection",
        "pending",
        "queued",
        "scope",
        "server",
        "stream",
        "wanted",
        "written",
    )

    def __init__(
        self, server: proto.ServerAddress, stream: trio.abc.Stream, connection: AnyConnection
    ) -> None:
        self.server = server
        self.stream = stream
        self.connection = connection
        #: what the core queued and the writer has not sent yet, in order ...
        self.pending: collections.deque[bytes] = collections.deque()
        #: ... bytes handed to the writer so far, and bytes written so far:
        #: a waiter's own bytes are out once ``written`` reaches ``queued``
        #: as it was when the wait began.
        self.queued = 0
        self.written = 0
        #: set when ``pending`` has bytes: the writer looks.
        self.wanted = trio.Event()
        #: the link's tasks; cancelled when the link is given up.
        self.scope = trio.CancelScope()


class TrioRuntime:
    """The :class:`gearman._runtime.AsyncRuntime` on trio.

    Args:
        on_event: receives every event read, and each link's end.
        keepalive: TCP keepalive on TCP links.
        connect_timeout: the cap of one connect (None: only the deadline).
        open_stream: opens a link's stream (default: TCP to the server);
            any ``trio.abc.Stream`` will do, TLS or in-memory included.
    """

    def __init__(
        self,
        on_event: EventSink,
        *,
        keepalive: bool = True,
        connect_timeout: float | None = 5.0,
        open_stream: OpenStream | None = None,
    ) -> None:
        self._on_event = on_event
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._open_stream: OpenStream = open_stream or open_tcp_stream
        self._links: dict[proto.ServerAddress, _Link] = {}
        self._waiters = Waiters()
        self._endings = 0  # links ended so far
        self._connecting = trio.Lock()
        self._jobs: trio.Nursery | None = None

    now: Callable[[], float] = staticmethod(trio.current_time)

    # ------------------------------------------------------------- links

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""
        return server in self._links

    async def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Open a link to *server* by *deadline* (and within ``connect_timeout``).

        Raises :class:`gearman.errors.ConnectionError`.
        """
        limit = math.inf if deadline is None else deadline
        if self.connect_timeout is not None:
            limit = min(limit, trio.current_time() + self.connect_timeout)
        with trio.move_on_at(limit):
            async with self._connecting:  # one connect at a time: no duplicate links
                if server in self._links:
                    return  # another task connected it meanwhile
                try:
                    stream = await self._open_stream(server)
                except OSError as error:
                    raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
                if isinstance(stream, trio.SocketStream):
                    tune(stream, self.keepalive)
                self._attach(server, stream, connection())
                return
        raise errors.ConnectionError(f"cannot connect to {server}: timed out")

    def _attach(
        self, server: proto.ServerAddress, stream: trio.abc.Stream, connection: AnyConnection
    ) -> None:
        link = _Link(server, stream, connection)
        self._links[server] = link
        self._pull(link)  # what connection_made queued (client id, abilities)
        trio.lowlevel.spawn_system_task(self._serve, link, name=f"gearman link {server}")

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server* now; its end reaches the sink."""
        link = self._links.get(server)
        if link is not None:
            self._give_up(link, link.connection.abandon())

    def _detach(self, link: _Link) -> bool:
        """Take *link* out of the table and stop its tasks; False if it was out already."""
        if self._links.get(link.server) is not link:
            return False
        del self._links[link.server]
        self._endings += 1
        link.scope.cancel()
        return True

    def _give_up(self, link: _Link, closed: proto.ConnectionClosed) -> None:
        if self._detach(link):
            self._on_event(link.server, closed)
            self._waiters.wake_all()

    async def _serve(self, link: _Link) -> None:
        """The system task of one link: its reader and writer, then the close."""
        try:
            with link.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, link)
                    await self._read_loop(link)
                    nursery.cancel_scope.cancel()
        except Exception:  # a bug here must not crash the user's trio.run
            logger.exception("%s: link task failed", link.server)
        finally:
            self._give_up(link, link.connection.abandon())
            await trio.aclose_forcefully(link.stream)

    async def _read_loop(self, link: _Link) -> None:
        stream = link.stream
        connection = link.connection
        server = link.server
        on_event = self._on_event
        while True:
            try:
                data = await stream.receive_some(READ_SIZE)
            except _BROKEN as error:
                logger.warning("%s: read failed: %s", server, error)
                self._give_up(link, connection.abandon())
                return
            events = take_events(connection, data)
            ended = connection.state is not _OPEN
            if ended:  # EOF or a protocol error: the last event is the end
                self._detach(link)
            else:
                self._pull(link)  # what the core answered on its own goes out first
            for event in events:
                on_event(server, event)
            if ended:
                self._waiters.wake_all()
                return
            self._waiters.check()

    async def _write_loop(self, link: _Link) -> None:
        stream = link.stream
        pending = link.pending
        while True:
            await link.wanted.wait()
            link.wanted = trio.Event()
            while pending:
                data = memoryview(pending.popleft())
                try:
                    for start in range(0, len(data), WRITE_CHUNK):
                        chunk = data[start : start + WRITE_CHUNK]
                        await stream.send_all(chunk)
                        link.written += len(chunk)
                except _BROKEN as error:
                    logger.warning("%s: write failed: %s", link.server, error)
                    self._give_up(link, link.connection.send_failed())
                    return
            self._waiters.check()  # drain() and stall checks count on ``written``

    # ------------------------------------------------------------ waiting

    def flush(self) -> None:
        """Hand what every core connection queued to its writer."""
        for link in self._links.values():
            self._pull(link)

    def _pull(self, link: _Link) -> None:
        data = link.connection.data_to_send()
        if data:
            link.pending.append(data)
            link.queued += len(data)
            link.wanted.set()

    async def drain(self, deadline: float | None) -> bool:
        """Wait until every byte queued so far is written (see the interface)."""
        self.flush()
        marks = self._marks()
        return await self.wait(lambda: _written(marks), deadline)

    def _marks(self) -> list[tuple[_Link, int]]:
        """Each link with the bytes queued on it so far."""
        return [(link, link.queued) for link in self._links.values()]

    async def wait(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Park until *done()*, *deadline*, or a link's end (see the interface).

        A wait that ends unwoken (its deadline, or the caller's cancel scope)
        gives up each link that has not written, by then, the bytes queued
        on it before the wait began: the caller's own request is stuck
        behind a peer that stopped reading.  Bytes queued later (another
        task's large payload) do not count against it.
        """
        if done():
            return True
        event = trio.Event()
        marks = self._marks()
        self._waiters.park(event, done)
        try:
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await event.wait()
        finally:
            self._waiters.leave(event)
            if not event.is_set():  # the deadline passed, or the caller was cancelled
                self._fail_stalled(marks)
        return done()

    def wake(self) -> None:
        """Make every waiter look at its condition again."""
        self._waiters.check()

    def lock(self) -> trio.Lock:
        """A new ``trio.Lock``."""
        return trio.Lock()

    def _fail_stalled(self, marks: list[tuple[_Link, int]]) -> None:
        for link, mark in marks:
            if link.written < mark and self._links.get(link.server) is link:
                logger.warning(
                    "%s: write stalled (%d bytes owed at the deadline): closing",
                    link.server,
                    mark - link.written,
                )
                self._give_up(link, link.connection.send_failed())

    # --------------------------------------------------------------- jobs

    @contextlib.asynccontextmanager
    async def job_group(self) -> AsyncIterator[object]:
        """A nursery for the jobs of one ``work()`` call."""
        async with trio.open_nursery() as nursery:
            self._jobs = nursery
            try:
                yield nursery
            finally:
                self._jobs = None

    def run_job(self, job: Callable[[T], Awaitable[object]], argument: T) -> None:
        """Start ``job(argument)`` in the open job nursery."""
        if self._jobs is None:
            raise RuntimeError("run_job() outside job_group()")
        self._jobs.start_soon(job, argument)

    async def aclose(self, grace: float) -> None:
        """Write what is queued (shielded, at most *grace* s), then close every link."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(grace):
                await self.drain(None)
            for server in list(self._links):
                self.close(server)


def _written(marks: list[tuple[_Link, int]]) -> bool:
    """Whether every link has written the bytes queued on it up to its mark."""
    return all(link.written >= mark for link, mark in marks)
