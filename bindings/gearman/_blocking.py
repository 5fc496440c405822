"""Blocking-socket plumbing shared by the blocking client, worker and admin client.

Owns: opening a TCP connection (IPv4 or IPv6, connect timeout, TCP_NODELAY,
keepalive), and :class:`Pump`, the one poll loop that writes what the
core queued, reads what arrived and hands each event to a callback.  Makes
no protocol decision: those live in ``gearman_proto``.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from collections.abc import Callable, Iterable

import gearman_proto as proto

from . import errors

__all__ = ["Link", "Pump", "open_socket"]

logger = logging.getLogger("gearman.io")

#: bytes asked of the kernel per read: large, so a burst of small packets or
#: a big payload arrives in few calls (python-gearman read 4 KiB).  Reads go
#: into one reusable buffer: ``recv(256 KiB)`` would allocate (mmap) and free
#: a 256 KiB object per read, which costs more than a small job itself.
READ_SIZE = 256 * 1024


def open_socket(
    server: proto.ServerAddress, *, timeout: float | None, keepalive: bool = True
) -> socket.socket:
    """Connect to *server*; raises :class:`gearman.errors.ConnectionError`.

    Every address ``getaddrinfo`` returns is tried in turn, each with
    *timeout* seconds.  The socket comes back blocking, with TCP_NODELAY
    (Gearman packets are small and latency-bound) and, if asked, keepalive.
    """
    try:
        sock = socket.create_connection((server.host, server.port), timeout=timeout)
    except OSError as error:
        raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    sock.settimeout(None)
    return sock


class Link:
    """One socket and the core connection that speaks over it."""

    __slots__ = ("connection", "server", "sock")

    def __init__(
        self,
        server: proto.ServerAddress,
        sock: socket.socket,
        connection: proto.ClientConnection | proto.WorkerConnection | proto.AdminConnection,
    ) -> None:
        self.server = server
        self.sock = sock
        self.connection = connection

    def close(self) -> None:
        """Close the socket (the core connection is dropped by its owner)."""
        with contextlib.suppress(OSError):
            self.sock.close()


EventHandler = Callable[[Link, proto.Event], None]


class Pump:
    """One poll(2) loop over every link of a client, worker or admin client.

    ``flush`` writes what the core queued (one ``sendall`` per link);
    ``run_once`` waits up to a timeout, reads every readable link, and
    passes each event to *on_event*.  A link whose read fails gets
    ``receive_data(b"")``, so the core reports the loss as events too; one
    whose write fails (``send_failed()``) or whose server breaks the
    protocol (``abandon()``) is given up, and the core's
    :class:`~gearman_proto.ConnectionClosed` for it is passed on the same way.
    """

    def __init__(self, on_event: EventHandler) -> None:
        # poll(2): no descriptor limit (select's 1024), cheap for a few sockets.
        self._poll = select.poll()
        self._by_fd: dict[int, Link] = {}
        self._read_buffer = bytearray(READ_SIZE)
        self._read_view = memoryview(self._read_buffer)
        self._links: dict[proto.ServerAddress, Link] = {}
        self._on_event = on_event
        #: monotonic time at which :meth:`run_once` last returned.
        self.polled_at = float("-inf")

    @property
    def links(self) -> dict[proto.ServerAddress, Link]:
        """Open links by server."""
        return self._links

    def add(self, link: Link) -> None:
        """Watch *link*."""
        self._links[link.server] = link
        fd = link.sock.fileno()
        self._by_fd[fd] = link
        self._poll.register(fd, select.POLLIN)

    def remove(self, link: Link) -> None:
        """Stop watching *link* and close its socket."""
        if self._links.get(link.server) is link:
            del self._links[link.server]
            fd = link.sock.fileno()
            del self._by_fd[fd]
            self._poll.unregister(fd)
        link.close()

    def close(self) -> None:
        """Close every link."""
        for link in list(self._links.values()):
            self.remove(link)

    def _write(self, link: Link, data: bytes) -> proto.ConnectionClosed | None:
        """Write *data*; on failure log it, fail the connection, return its end event."""
        try:
            link.sock.sendall(data)
        except OSError as error:
            logger.warning("%s: write failed: %s", link.server, error)
            return link.connection.send_failed()
        return None

    def flush(self) -> None:
        """Write what each link's core connection has queued, one write per link."""
        # A copy: a failed write removes its link.
        for link in list(self._links.values()):
            data = link.connection.data_to_send()
            if data and (closed := self._write(link, data)) is not None:
                self._lost(link, closed)

    def run_once(self, timeout: float | None) -> bool:
        """Wait up to *timeout* seconds and handle what arrived; True if anything did."""
        if not self._links:
            if timeout:
                time.sleep(timeout)  # nothing to watch: the caller's wait still passes
            return False
        ready = self._poll.poll(None if timeout is None else max(0.0, timeout) * 1000.0)
        for fd, _ in ready:
            link = self._by_fd.get(fd)
            if link is None:  # an earlier event of this batch closed it
                continue
            try:
                size = link.sock.recv_into(self._read_buffer)
            except OSError as error:
                logger.warning("%s: read failed: %s", link.server, error)
                size = 0
            if size:
                self._drain(link, self._read_view[:size].tobytes())
            else:
                self._lost(link)
        self.polled_at = time.monotonic()
        return bool(ready)

    def idle_for(self, seconds: float) -> bool:
        """Whether more than *seconds* passed since the last look at the sockets."""
        return time.monotonic() - self.polled_at > seconds

    def _lost(self, link: Link, closed: proto.ConnectionClosed | None = None) -> None:
        """Drop *link* and report its end: *closed*, or what the core makes of it."""
        self.remove(link)
        connection = link.connection
        if closed is None and connection.state is proto.ConnectionState.OPEN:
            self._drain(link, b"")  # the core reports the end of the stream as events
        else:
            self._on_event(link, closed if closed is not None else connection.abandon())

    def _drain(self, link: Link, data: bytes) -> None:
        connection = link.connection
        on_event = self._on_event
        try:
            connection.receive_data(data)
            while events := connection.next_events():
                # What the core answered on its own (GRAB_JOB after NOOP,
                # PRE_SLEEP after NO_JOB) leaves before the events are handled.
                answer = connection.data_to_send()
                closed = self._write(link, answer) if answer else None
                for event in events:
                    on_event(link, event)
                if closed is not None:  # reported after the events that came before it
                    self._lost(link, closed)
                    return
        except proto.RemoteProtocolError as error:
            logger.error("%s: protocol error, closing: %s", link.server, error)
            if self._links.get(link.server) is link:
                self.remove(link)
            self._on_event(link, connection.abandon())


def wait_all(pump: Pump, done: Callable[[], bool], deadline: float | None) -> bool:
    """Run *pump* until *done* says so or *deadline* (monotonic) passes."""
    while True:
        pump.flush()
        if done():
            return True
        if deadline is None:
            timeout = None
        else:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return False
        pump.run_once(timeout)


def deadline_after(timeout: float | None) -> float | None:
    """A monotonic deadline *timeout* seconds from now (None: never)."""
    return None if timeout is None else time.monotonic() + timeout


def earliest(*deadlines: float | None) -> float | None:
    """The earliest of the given deadlines (None means no deadline)."""
    real: Iterable[float] = [d for d in deadlines if d is not None]
    return min(real, default=None)
