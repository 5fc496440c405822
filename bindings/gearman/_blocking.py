"""The blocking runtime: non-blocking sockets and poll(2) in the caller's thread.

Owns: opening TCP links (IPv4 or IPv6, bounded by the caller's deadline and
``connect_timeout``, TCP_NODELAY, keepalive) and TLS links (the handshake
on the non-blocking socket, within the same deadline), writing what the
core queued without ever blocking in ``send``, reading many packets per
``recv``, and the one wait loop (:meth:`BlockingRuntime.wait`).  A TLS
link reads until the SSL object holds nothing more (poll(2) cannot see the
bytes it decrypted already), and follows the SSL object when a read must
wait for the socket to take bytes or a write for bytes to arrive.  Several
threads may share one object: whichever thread waits reads for all of them
and hands every event to the kernel, the others sleep on a condition until
their own condition holds (httpcore's HTTP/2 pattern).  Makes no protocol
decision: those live in ``gearman_proto``.
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
import ssl
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

import gearman_proto as proto

from . import errors
from ._runtime import AnyConnection, EventSink, TlsSettings, connect_limit, take_events
from ._sockets import tune
from ._tls import Target, Tls, handshake_failed

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

    __slots__ = (
        "backlog",
        "connection",
        "fd",
        "mask",
        "out",
        "read_waits_write",
        "server",
        "sock",
        "tls",
        "write_waits_read",
    )

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
        #: the poll(2) events watched.
        self.mask = _IN
        #: a TLS socket: its SSL object may hold bytes poll(2) does not see ...
        self.tls = isinstance(sock, ssl.SSLSocket)
        #: ... a read it must retry once the socket is writable ...
        self.read_waits_write = False
        #: ... and a write it must retry once it has read.
        self.write_waits_read = False


class BlockingRuntime:
    """The :class:`gearman._runtime.Runtime` on blocking-free sockets and poll(2).

    Args:
        on_event: receives every event read, and each link's end.
        shared: several threads may use the object at once.
        keepalive: TCP keepalive on every link.
        connect_timeout: the cap of one connect (None: only the deadline).
        tls: which links are TLS (None: none).
    """

    def __init__(
        self,
        on_event: EventSink,
        *,
        shared: bool = False,
        keepalive: bool = True,
        connect_timeout: float | None = 5.0,
        tls: TlsSettings | None = None,
    ) -> None:
        self._on_event = on_event
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._tls = Tls(tls)
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
        time is up; a TLS link then shakes hands on the first one that
        connected.  Raises :class:`gearman.errors.ConnectionError`
        (:class:`gearman.errors.TlsError` when the handshake fails).
        """
        limit = connect_limit(time.monotonic(), deadline, self.connect_timeout)
        target = self._tls.target(server)
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
                if target is not None:
                    sock = _handshake(server, sock, target, limit)
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
        links :meth:`connect` opens; an ``ssl.SSLSocket`` (its handshake
        done) is served as a TLS link.
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
                if link.tls:
                    self._tls_ready(link, mask)
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
        if not size:
            self._end(link)
            return
        self._feed(link, self._read_view[:size].tobytes())

    def _end(self, link: _Link) -> None:
        """The peer ended *link* (or reading it failed): the core hears of it."""
        self._remove(link)
        self._endings += 1
        connection = link.connection
        if connection.state is proto.ConnectionState.OPEN:
            self._feed(link, b"")
        else:
            self._on_event(link.server, connection.abandon())

    def _tls_ready(self, link: _Link, mask: int) -> None:
        """poll(2) reported *mask* on a TLS link: write what waits if the socket
        takes bytes, and read if bytes arrived or a read waited for POLLOUT."""
        if mask & select.POLLOUT and link.out and not link.write_waits_read:
            self._write(link, b"")
            if self._links.get(link.server) is not link:
                return
        if mask & ~select.POLLOUT or link.read_waits_write:
            self._read_tls(link)

    def _read_tls(self, link: _Link) -> None:
        """Read a TLS link until its SSL object has nothing more to give.

        One record is decrypted per ``recv``; bytes the SSL object has taken
        from the socket already are invisible to poll(2), so the reads go on
        until the SSL object wants more from the socket (or the buffer is
        full, then once more).
        """
        sock = link.sock
        view = self._read_view
        while True:
            size = 0
            ended = False
            link.read_waits_write = False
            try:
                while size < READ_SIZE:
                    got = sock.recv_into(view[size:])
                    if not got:
                        ended = True
                        break
                    size += got
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLWantWriteError:  # the SSL object must send first
                link.read_waits_write = True
            except OSError as error:  # an alert (a refused client certificate), a reset
                logger.warning("%s: read failed: %s", link.server, error)
                ended = True
            if size:
                self._feed(link, view[:size].tobytes())
                if self._links.get(link.server) is not link:
                    return  # a protocol error ended it
            if ended:
                self._end(link)
                return
            if size < READ_SIZE:
                break
        if link.write_waits_read and link.out:
            self._write(link, b"")  # what waited for this read
        else:
            self._watch(link)

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
        link.write_waits_read = False
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
        except (BlockingIOError, ssl.SSLWantWriteError):
            pass  # a TLS write is retried with the same bytes, as OpenSSL wants
        except ssl.SSLWantReadError:  # a TLS link must read first: _read_tls retries
            link.write_waits_read = True
        except OSError as error:
            logger.warning("%s: write failed: %s", link.server, error)
            self._give_up(link, link.connection.send_failed())
            return
        link.out = head
        if head or link.mask is not _IN or link.read_waits_write:  # else nothing to change
            self._watch(link)

    def _watch(self, link: _Link) -> None:
        """Poll *link* for POLLOUT too while it has bytes the socket did not
        take, or a TLS read waits to send."""
        mask = (
            _IN_OUT
            if (link.out and not link.write_waits_read) or link.read_waits_write
            else _IN
        )
        if mask != link.mask:
            link.mask = mask
            self._poll.modify(link.fd, mask)
            if mask == _IN_OUT:
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


def _ready(fd: int, events: int, limit: float | None) -> bool:
    """Wait until *fd* has one of the poll(2) *events*; False if *limit* came first."""
    poller = select.poll()
    poller.register(fd, events)
    while True:
        timeout = None if limit is None else max(0.0, limit - time.monotonic()) * 1000.0
        if poller.poll(timeout):
            return True
        if limit is not None and time.monotonic() >= limit:
            return False


def _connect(sock: socket.socket, address: Any, limit: float | None) -> str | None:
    """Connect the non-blocking *sock* by *limit*; None when connected, else why not."""
    sock.setblocking(False)
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        if not _ready(sock.fileno(), select.POLLOUT, limit):
            return "timed out"
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return os.strerror(code) if code else None


def _handshake(
    server: proto.ServerAddress, sock: socket.socket, target: Target, limit: float | None
) -> ssl.SSLSocket:
    """The TLS socket over the connected non-blocking *sock*, its handshake
    done by *limit*; *sock* is closed when it fails.

    Raises:
        gearman.errors.TlsError: the handshake failed or did not end in time.
    """
    try:
        tls = target.context.wrap_socket(
            sock, server_hostname=target.server_hostname, do_handshake_on_connect=False
        )
    except (OSError, ValueError) as error:  # a context that cannot make client sockets
        sock.close()
        raise handshake_failed(server, target, error) from error
    try:
        done = _shake_hands(tls, limit)
    except OSError as error:  # ssl.SSLError included
        tls.close()
        raise handshake_failed(server, target, error) from error
    except BaseException:
        tls.close()
        raise
    if not done:
        tls.close()
        raise handshake_failed(server, target, None)
    return tls


def _shake_hands(tls: ssl.SSLSocket, limit: float | None) -> bool:
    """Run the handshake of the non-blocking *tls*; False if *limit* came first."""
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            events = select.POLLIN
        except ssl.SSLWantWriteError:
            events = select.POLLOUT
        else:
            return True
        if not _ready(tls.fileno(), events, limit):
            return False
