"""The blocking runtime: non-blocking sockets and poll(2) in the caller's thread.

Owns: opening TCP links (IPv4 or IPv6, bounded by the caller's deadline and
``connect_timeout``, TCP_NODELAY, keepalive), writing what the core queued
without ever blocking in ``send``, reading many packets per ``recv``, and
the one wait loop (:meth:`BlockingRuntime.wait`).  Several threads may
share one object: whichever thread waits reads for all of them and hands
every event to the kernel, the others sleep on a condition until their own
condition holds (httpcore's HTTP/2 pattern).  Makes no protocol decision:
those live in ``gearman_proto``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

import gearman_proto as proto

from . import errors
from ._runtime import AnyConnection, EventSink, connect_limit, take_events
from ._sockets import tune

__all__ = ["READ_SIZE", "BlockingRuntime"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: bytes asked of the kernel per read: large, so a burst of small packets or
#: a big payload arrives in few calls (python-gearman read 4 KiB).  Reads go
#: into one reusable buffer: ``recv(256 KiB)`` would allocate (mmap) and free
#: a 256 KiB object per read, which costs more than a small job itself.
READ_SIZE = 256 * 1024

#: seconds without looking at the sockets after which :meth:`refresh` polls
#: them for links the server closed meanwhile; straight after a wait there
#: was no idle time to notice anything in.
IDLE_CHECK_AFTER = 0.001

_CLOSED = proto.ConnectionClosed
_IN = select.POLLIN
_IN_OUT = select.POLLIN | select.POLLOUT


class _Link:
    """One socket, its core connection, and the bytes not written yet."""

    __slots__ = ("backlog", "connection", "fd", "out", "server", "sock")

    def __init__(
        self, server: proto.ServerAddress, sock: socket.socket, connection: AnyConnection
    ) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.connection = connection
        #: queued bytes the socket did not take yet (b"" when none) ...
        self.out: bytes | memoryview = b""
        #: ... and what the core queued after them, joined when ``out`` is sent.
        self.backlog: list[bytes] = []


class BlockingRuntime:
    """The :class:`gearman._runtime.Runtime` on blocking-free sockets and poll(2).

    Args:
        on_event: receives every event read, and each link's end.
        shared: several threads may use the object at once.
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
        self._by_fd: dict[int, _Link] = {}
        # poll(2): no descriptor limit (select's 1024), cheap for a few sockets.
        self._poll = select.poll()
        self._read_buffer = bytearray(READ_SIZE)
        self._read_view = memoryview(self._read_buffer)
        self._polled_at = float("-inf")
        self._pumping = False
        self._waiters = 0  # threads parked in wait() while another one pumps
        self._endings = 0  # links ended so far: a wait returns when this moves
        self._only: _Link | None = None  # the link, when there is exactly one
        self._lock: threading.Lock | None = None
        self._condition: threading.Condition | None = None
        self.lock: contextlib.AbstractContextManager[Any]
        if shared:
            self._lock = threading.Lock()
            self._condition = threading.Condition(self._lock)
            self.lock = self._lock
        else:
            self.lock = contextlib.nullcontext()
        # A byte on this pair interrupts the poll(2) in progress: for another
        # thread of a shared object, or a signal handler that stopped a worker
        # (poll(2) resumes after the handler: PEP 475).
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._wake_fd = self._wake_in.fileno()
        self._poll.register(self._wake_fd, _IN)

    # ------------------------------------------------------------- links

    #: jobs run in the caller's thread, one at a time.
    job_slots: ClassVar[int | None] = 1

    #: the clock: ``time.monotonic`` itself, without a Python frame per call.
    now: Callable[[], float] = staticmethod(time.monotonic)

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

        Every address ``getaddrinfo`` returns is tried in turn until the
        time is up.  Raises :class:`gearman.errors.ConnectionError`.
        """
        limit = connect_limit(time.monotonic(), deadline, self.connect_timeout)
        try:
            addresses = _resolve(server, limit)
        except OSError as error:
            raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
        failure: str = "no address"
        for family, kind, number, _, address in addresses:
            sock = socket.socket(family, kind, number)
            try:
                reason = _connect(sock, address, limit)
            except BaseException:
                sock.close()
                raise
            if reason is None:
                self.attach(server, sock, connection())
                return
            sock.close()
            failure = reason
            if limit is not None and time.monotonic() >= limit:
                break
        raise errors.ConnectionError(f"cannot connect to {server}: {failure}")

    def attach(
        self, server: proto.ServerAddress, sock: socket.socket, connection: AnyConnection
    ) -> None:
        """Serve *connection* over *sock*, a socket connected already (a TCP
        link, a Unix socket, one end of a socket pair), as the link to *server*.

        The socket is made non-blocking and, if it is TCP, tuned like the
        links :meth:`connect` opens.
        """
        sock.setblocking(False)
        tune(sock, self.keepalive)
        link = _Link(server, sock, connection)
        self._links[server] = link
        self._only = link if len(self._links) == 1 else None
        self._by_fd[link.fd] = link
        self._poll.register(link.fd, _IN)
        self.wake()  # a thread in poll(2) must watch the new socket too

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server*; its end reaches the sink."""
        link = self._links.get(server)
        if link is not None:
            self._give_up(link, link.connection.abandon())

    def close_all(self) -> None:
        """Close every link; each end reaches the sink."""
        for server in list(self._links):
            self.close(server)

    def _remove(self, link: _Link) -> None:
        if self._links.get(link.server) is link:
            del self._links[link.server]
            del self._by_fd[link.fd]
            self._poll.unregister(link.fd)
            links = list(self._links.values())
            self._only = links[0] if len(links) == 1 else None
        with contextlib.suppress(OSError):
            link.sock.close()

    def _give_up(self, link: _Link, closed: proto.ConnectionClosed) -> None:
        self._remove(link)
        self._endings += 1
        self._on_event(link.server, closed)

    # ------------------------------------------------------------ waiting

    def wake(self) -> None:
        """Interrupt the poll(2) in progress, if one is."""
        if self._pumping:
            with contextlib.suppress(BlockingIOError):
                self._wake_out.send(b"\0")

    def refresh(self) -> None:
        """Take in what already arrived (a close while idle), without waiting."""
        if time.monotonic() - self._polled_at > IDLE_CHECK_AFTER and not self._pumping:
            self._pump(0.0)

    def run_job(self, job: Callable[[T], object], argument: T) -> None:
        """Run ``job(argument)`` now, in this thread: one job at a time."""
        job(argument)

    def wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object] = ()
    ) -> bool:
        """Write, then read and hand events on until *done()* or *deadline*,
        or until a link ends (then it returns ``done()``).

        Called with :attr:`lock` held; it is released while poll(2) blocks.
        *watch* is of no use here: the waiting thread reads for itself.
        """
        condition = self._condition
        endings = self._endings
        looked = False
        while True:
            self.flush()
            if done():
                return True
            if self._endings != endings:
                return False  # a write failed: the caller may have connections to open
            if deadline is None:
                remaining: float | None = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if looked:
                        self._fail_stalled()
                        return False
                    remaining = 0.0
            looked = True
            if condition is not None and self._pumping:
                # Another thread reads for everybody; it notifies after each batch.
                self._waiters += 1
                try:
                    condition.wait(remaining)
                finally:
                    self._waiters -= 1
            elif not self._links and condition is None:
                if remaining is None:
                    return False  # nothing to watch, ever: the caller decides
                time.sleep(remaining)  # nothing to watch: the caller's wait still passes
            else:
                self._pump(remaining)
            if self._endings != endings:
                # A link ended: the caller may have connections to open.
                self.flush()
                return done()

    def _pump(self, timeout: float | None) -> None:
        """One poll(2) and everything it reports; lets go of the lock meanwhile."""
        lock = self._lock
        self._pumping = True
        try:
            if lock is not None:
                lock.release()
            try:
                ready = self._poll.poll(None if timeout is None else timeout * 1000.0)
            finally:
                if lock is not None:
                    lock.acquire()
            by_fd = self._by_fd
            for fd, mask in ready:
                link = by_fd.get(fd)
                if link is None:  # the wake pair, or a link an earlier event closed
                    if fd == self._wake_fd:
                        with contextlib.suppress(BlockingIOError):
                            self._wake_in.recv(4096)
                    continue
                if mask & select.POLLOUT and link.out:
                    self._write(link, b"")
                    if link.server not in self._links:
                        continue
                if mask & ~select.POLLOUT:
                    self._read(link)
        finally:
            self._pumping = False
            self._polled_at = time.monotonic()
            # Threads wait only on a shared runtime, which has the condition.
            if self._waiters and self._condition is not None:
                self._condition.notify_all()

    def _read(self, link: _Link) -> None:
        try:
            size = link.sock.recv_into(self._read_buffer)
        except BlockingIOError:
            return
        except OSError as error:
            logger.warning("%s: read failed: %s", link.server, error)
            size = 0
        connection = link.connection
        if not size:
            self._remove(link)
            self._endings += 1
            if connection.state is proto.ConnectionState.OPEN:
                self._feed(link, b"")
            else:
                self._on_event(link.server, connection.abandon())
            return
        self._feed(link, self._read_view[:size].tobytes())

    def _feed(self, link: _Link, data: bytes) -> None:
        connection = link.connection
        events = take_events(connection, data)
        # What the core answered on its own (GRAB_JOB after NOOP, PRE_SLEEP
        # after NO_JOB) leaves before the events are handled.
        answer = connection.data_to_send()
        if answer:
            self._write(link, answer)
        if events and type(events[-1]) is _CLOSED and self._links.get(link.server) is link:
            self._remove(link)  # a protocol error: the last event is the end
            self._endings += 1
        on_event = self._on_event
        server = link.server
        for event in events:
            on_event(server, event)

    # ------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what the core queued, as far as the sockets take it now:
        one ``send`` per link."""
        link = self._only
        if link is not None:  # the usual case, without walking the table
            data = link.connection.data_to_send()
            if data or link.out:
                self._write(link, data)
            return
        # A copy: a failed write removes its link.
        for link in list(self._links.values()):
            data = link.connection.data_to_send()
            if data or link.out:
                self._write(link, data)

    def _write(self, link: _Link, data: bytes) -> None:
        """Send what the socket takes now; keep the rest, in order, for POLLOUT."""
        had_out = bool(link.out)
        if had_out:
            if data:
                link.backlog.append(data)
            head: bytes | memoryview = link.out
        else:
            head = data
        sock = link.sock
        try:
            while True:
                sent = sock.send(head)
                if sent < len(head):
                    head = memoryview(head)[sent:]
                    break
                if not link.backlog:
                    head = b""
                    break
                head = b"".join(link.backlog)
                link.backlog.clear()
        except BlockingIOError:
            pass
        except OSError as error:
            logger.warning("%s: write failed: %s", link.server, error)
            self._give_up(link, link.connection.send_failed())
            return
        link.out = head
        if bool(head) != had_out:
            self._poll.modify(link.fd, _IN_OUT if head else _IN)
            if head:
                self.wake()

    def _fail_stalled(self) -> None:
        """The deadline passed with bytes unwritten: those links have stalled."""
        for link in [link for link in self._links.values() if link.out]:
            logger.warning(
                "%s: write stalled (%d bytes left at the deadline): closing",
                link.server,
                len(link.out),
            )
            self._give_up(link, link.connection.send_failed())


def _resolve(server: proto.ServerAddress, limit: float | None) -> list[Any]:
    """``getaddrinfo`` for *server*, by *limit*.

    A numeric address needs no lookup.  A name is looked up in a helper
    thread, because ``getaddrinfo`` takes no timeout: past *limit* the call
    gives up (the lookup finishes, unused, on its own).

    Raises:
        OSError: the lookup failed, or did not end by *limit*.
    """
    lookup = functools.partial(
        socket.getaddrinfo, server.host, server.port, type=socket.SOCK_STREAM
    )
    try:
        ipaddress.ip_address(server.host)
    except ValueError:
        pass
    else:
        return lookup()
    result: list[Any] = []
    failure: list[OSError] = []

    def run() -> None:
        try:
            result.extend(lookup())
        except OSError as error:
            failure.append(error)

    thread = threading.Thread(target=run, name=f"gearman resolve {server.host}", daemon=True)
    thread.start()
    thread.join(None if limit is None else max(0.0, limit - time.monotonic()))
    if thread.is_alive():
        raise OSError(f"looking up {server.host!r} did not end in time")
    if failure:
        raise failure[0]
    return result


def _connect(sock: socket.socket, address: Any, limit: float | None) -> str | None:
    """Connect the non-blocking *sock* by *limit*; None when connected, else why not."""
    sock.setblocking(False)
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLOUT)
        while True:
            timeout = None if limit is None else max(0.0, limit - time.monotonic()) * 1000.0
            if poller.poll(timeout):
                break
            if limit is not None and time.monotonic() >= limit:
                return "timed out"
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return os.strerror(code) if code else None
