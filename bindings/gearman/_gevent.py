"""The gevent runtime: one reader and one writer greenlet per link, waiters parked on events.

Owns: opening links on gevent's own sockets (so it is cooperative with or
without ``gevent.monkey.patch_all()``), the reader greenlet that feeds each
link's bytes to its core connection and hands the events on, the writer
greenlet that sends what the core queued, deadlines (``gevent.Timeout`` of
the caller's or ``poll_timeout``), and the greenlets jobs run in.  Makes no
protocol decision (``gearman_proto``) and shapes nothing (the kernel).

It implements the sync :class:`gearman._runtime.Runtime`: the sync facades
run on it unchanged.  Greenlets switch only where they wait, so the core
needs no lock (``lock`` is a no-op); a greenlet whose wait is cut short (its
``gevent.Timeout``, ``kill()``) leaves the link and every other greenlet's
request alone.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.lock
import gevent.pool
from gevent import socket as gsocket

import gearman_proto as proto

from . import errors
from ._runtime import AnyConnection, EventSink, take_events
from ._sockets import tune
from ._waiters import Waiters

__all__ = ["READ_SIZE", "WRITE_CHUNK", "GeventRuntime"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: bytes asked of the socket per read: many packets per read.
READ_SIZE = 256 * 1024

#: bytes per ``sendall``: progress is counted per chunk (see :meth:`GeventRuntime.wait`).
WRITE_CHUNK = 256 * 1024

_OPEN = proto.ConnectionState.OPEN


class _Link:
    """One socket, its core connection, its greenlets and the bytes its writer owes."""

    __slots__ = (
        "connection",
        "greenlets",
        "pending",
        "queued",
        "server",
        "sock",
        "wanted",
        "written",
    )

    def __init__(
        self, server: proto.ServerAddress, sock: Any, connection: AnyConnection
    ) -> None:
        self.server = server
        self.sock = sock
        self.connection = connection
        self.pending: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes handed to the writer so far
        self.written = 0  # bytes written so far
        self.wanted = gevent.event.Event()  # set when ``pending`` has bytes
        self.greenlets: list[gevent.Greenlet[..., None]] = []


class GeventRuntime:
    """The :class:`gearman._runtime.Runtime` on gevent.

    Args:
        on_event: receives every event read, and each link's end.
        shared: accepted for the interface; greenlets always may share.
        keepalive: TCP keepalive on every link.
        connect_timeout: the cap of one connect (None: only the deadline).
    """

    def __init__(
        self,
        on_event: EventSink,
        *,
        shared: bool = False,
        keepalive: bool = True,
        connect_timeout: float | None = 5.0,
    ) -> None:
        self._on_event = on_event
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._links: dict[proto.ServerAddress, _Link] = {}
        self._waiters = Waiters()
        self._connecting = gevent.lock.Semaphore()
        self._jobs = gevent.pool.Group()
        #: greenlets switch only where they wait: the core needs no lock.
        self.lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    now: Callable[[], float] = staticmethod(time.monotonic)

    # ------------------------------------------------------------- links

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""
        return server in self._links

    def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Connect to *server* by *deadline* (and within ``connect_timeout``).

        Raises :class:`gearman.errors.ConnectionError`.
        """
        limit = deadline
        if self.connect_timeout is not None:
            cap = time.monotonic() + self.connect_timeout
            limit = cap if limit is None or cap < limit else limit
        seconds = None if limit is None else max(0.0, limit - time.monotonic())
        timeout = gevent.Timeout(seconds)
        timeout.start()
        try:
            with self._connecting:  # one connect at a time: no duplicate links
                if server in self._links:
                    return  # another greenlet connected it meanwhile
                sock = gsocket.create_connection((server.host, server.port))
                tune(sock, self.keepalive)
                self._attach(server, sock, connection())
        except gevent.Timeout as expired:
            if expired is not timeout:
                raise  # the caller's own gevent.Timeout
            raise errors.ConnectionError(f"cannot connect to {server}: timed out") from None
        except OSError as error:
            raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
        finally:
            timeout.close()

    def _attach(self, server: proto.ServerAddress, sock: Any, connection: AnyConnection) -> None:
        link = _Link(server, sock, connection)
        self._links[server] = link
        self._pull(link)  # what connection_made queued (client id, abilities)
        link.greenlets = [gevent.spawn(self._read_loop, link), gevent.spawn(self._write_loop, link)]

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server* now; its end reaches the sink."""
        link = self._links.get(server)
        if link is not None:
            self._give_up(link, link.connection.abandon())

    def close_all(self) -> None:
        """Close every link; each end reaches the sink."""
        for server in list(self._links):
            self.close(server)

    def _detach(self, link: _Link) -> bool:
        """Take *link* out, stop its greenlets, close its socket; False if it was out."""
        if self._links.get(link.server) is not link:
            return False
        del self._links[link.server]
        current = gevent.getcurrent()
        for greenlet in link.greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)
        with contextlib.suppress(OSError):
            link.sock.close()
        return True

    def _give_up(self, link: _Link, closed: proto.ConnectionClosed) -> None:
        if self._detach(link):
            self._on_event(link.server, closed)
            self._waiters.wake_all()

    def _read_loop(self, link: _Link) -> None:
        sock = link.sock
        connection = link.connection
        server = link.server
        on_event = self._on_event
        try:
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except OSError as error:
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
        except gevent.GreenletExit:
            raise
        except Exception:  # a bug here must not leave the link half alive
            logger.exception("%s: reader failed", server)
            self._give_up(link, connection.abandon())

    def _write_loop(self, link: _Link) -> None:
        sock = link.sock
        pending = link.pending
        while True:
            link.wanted.wait()
            link.wanted.clear()
            while pending:
                data = memoryview(pending.popleft())
                try:
                    for start in range(0, len(data), WRITE_CHUNK):
                        chunk = data[start : start + WRITE_CHUNK]
                        sock.sendall(chunk)
                        link.written += len(chunk)
                except OSError as error:
                    logger.warning("%s: write failed: %s", link.server, error)
                    self._give_up(link, link.connection.send_failed())
                    return
            self._waiters.check()  # stall checks and flushes count on ``written``

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

    def refresh(self) -> None:
        """Nothing to do: the readers notice a closed link on their own."""

    def wake(self) -> None:
        """Make every waiter look at its condition again."""
        self._waiters.check()

    def wait(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Park until *done()*, *deadline*, or a link's end.

        A wait that ends unwoken (its deadline, the caller's
        ``gevent.Timeout``, ``kill()``) gives up each link that has not
        written the bytes queued on it before the wait began: the caller's
        own request is stuck behind a peer that stopped reading.
        """
        self.flush()
        if done():
            return True
        event = gevent.event.Event()
        marks = [(link, link.queued) for link in self._links.values()]
        self._waiters.park(event, done)
        try:
            event.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        finally:
            self._waiters.leave(event)
            if not event.is_set():
                self._fail_stalled(marks)
        return done()

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

    def run_job(self, job: Callable[[T], object], argument: T) -> None:
        """Start ``job(argument)`` in a greenlet; the session's ``max_jobs`` is the limit."""
        self._jobs.spawn(job, argument)
