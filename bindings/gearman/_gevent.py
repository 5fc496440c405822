"""The gevent runtime: one reader and one writer greenlet per link, waiters parked on events.

Owns: opening links on gevent's own sockets (so it is cooperative with or
without ``gevent.monkey.patch_all()``; a TLS link on gevent's SSL socket,
whatever the caller's ``ssl.SSLContext``), the reader greenlet that feeds each
link's bytes to its core connection and hands the events on, the writer
greenlet that sends what the core queued, deadlines (``gevent.Timeout`` of
the caller's or ``poll_timeout``), and the greenlets jobs run in.  What the
greenlets share with every other runtime (the bytes owed, events to the
sink, giving a link up, stalled writes) is :mod:`gearman._links`.  Makes
no protocol decision (``gearman_proto``) and shapes nothing (the kernel).

It implements the sync :class:`gearman._runtime.Runtime`: the sync facades
run on it unchanged.  Greenlets switch only where they wait, so the core
needs no lock (``lock`` is a no-op); a greenlet whose wait is cut short (its
``gevent.Timeout``, ``kill()``) leaves the link and every other greenlet's
request alone.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

import gevent
import gevent.event
import gevent.lock
import gevent.pool
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.monkey import get_original

import gearman_proto as proto

from . import errors
from ._links import Link, LinkedRuntime, Links, chunks
from ._runtime import AnyConnection, EventSink, TlsSettings, connect_limit
from ._sockets import nonblocking_twin, send_without_waiting, tune
from ._tls import Target, Tls, connect_timed_out, handshake_failed

__all__ = ["IDLE_CHECK_AFTER", "READ_SIZE", "REFRESH_LIMIT", "GeventRuntime"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: the system's select(2), patched or not: a zero-timeout look, no switch to the hub.
_select = get_original("select", "select")

#: bytes asked of the socket per read: many packets per read.
READ_SIZE = 256 * 1024

#: seconds after the hub last ran past which :meth:`GeventRuntime.refresh`
#: looks for bytes or an end that wait unread ...
IDLE_CHECK_AFTER = 0.001
#: ... and the most seconds it lets the readers take them in.
REFRESH_LIMIT = 0.05


class _GeventLink(Link):
    """A link's socket, its writer's event and its two greenlets, and a plain
    non-blocking twin of the socket for what the kernel takes at once (not
    on a TLS link: its SSL state is the socket's own)."""

    __slots__ = ("greenlets", "raw", "sock", "wanted")

    def __init__(
        self,
        server: proto.ServerAddress,
        sock: Any,
        connection: AnyConnection,
        raw: socket.socket | None,
    ) -> None:
        super().__init__(server, connection)
        self.sock = sock
        self.raw = raw
        self.wanted = gevent.event.Event()
        self.greenlets: list[gevent.Greenlet[..., None]] = []

    def send_now(self, data: bytes) -> int:
        return send_without_waiting(self.raw, data)

    def arrived(self) -> bool:
        """Whether bytes, the end or an error wait unread on the socket."""
        if self.raw is None:  # TLS: bytes decrypted already, or more on the socket
            return bool(self.sock.pending()) or bool(_select([self.sock], [], [], 0)[0])
        try:
            self.raw.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True

    def wake_writer(self) -> None:
        self.wanted.set()

    def stop(self) -> None:
        current = gevent.getcurrent()
        for greenlet in self.greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.raw is not None:
            self.raw.close()  # the twin would keep the connection open


class GeventRuntime(LinkedRuntime):
    """The :class:`gearman._runtime.Runtime` on gevent.

    Args:
        on_event: receives every event read, and each link's end.
        shared: accepted for the interface; greenlets always may share.
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
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._tls = Tls(tls)
        self._links = Links(on_event)
        self._looked_at = float("-inf")  # when refresh() or a wait last let the hub run
        self._connecting: dict[proto.ServerAddress, gevent.lock.Semaphore] = {}
        self._jobs = gevent.pool.Group()
        #: greenlets switch only where they wait: the core needs no lock.
        self.lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    #: a greenlet per job: the session's ``max_jobs`` is the only limit.
    job_slots: ClassVar[int | None] = None

    now: Callable[[], float] = staticmethod(time.monotonic)

    # ------------------------------------------------------------- links

    def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Connect to *server* by *deadline* (and within ``connect_timeout``),
        the TLS handshake included.

        Raises :class:`gearman.errors.ConnectionError`
        (:class:`gearman.errors.TlsError`: the handshake failed).
        """
        limit = connect_limit(time.monotonic(), deadline, self.connect_timeout)
        target = self._tls.target(server)
        seconds = None if limit is None else max(0.0, limit - time.monotonic())
        timeout = gevent.Timeout(seconds)
        timeout.start()
        lock = self._connecting.setdefault(server, gevent.lock.Semaphore())
        handshaking: Target | None = None
        try:
            with lock:  # one connect per server at a time: no duplicate links
                if server in self._links:
                    return  # another greenlet connected it meanwhile
                sock = gsocket.create_connection((server.host, server.port))
                try:
                    tune(sock, self.keepalive)
                    twin = None if target else nonblocking_twin(sock.fileno())
                except OSError:
                    sock.close()
                    raise
                if target is not None:
                    handshaking = target
                    sock = _handshake(server, sock, target)
                # Only now, with nothing left to fail, the core learns of the link.
                link = _GeventLink(server, sock, connection(), twin)
                self._links.add(link)
                link.greenlets = [
                    gevent.spawn(self._read_loop, link),
                    gevent.spawn(self._write_loop, link),
                ]
        except gevent.Timeout as expired:
            if expired is not timeout:
                raise  # the caller's own gevent.Timeout
            raise connect_timed_out(server, handshaking) from None
        except errors.ConnectionError:
            raise  # a TlsError: said already
        except OSError as error:
            raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
        finally:
            timeout.close()

    def _read_loop(self, link: _GeventLink) -> None:
        sock = link.sock
        received = self._links.received
        try:
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except OSError as error:
                    self._links.read_failed(link, error)
                    return
                if not received(link, data):
                    return
                if len(data) == READ_SIZE:
                    # A full read: more may wait, and a recv that finds bytes
                    # does not switch, so a server that never stops sending
                    # would starve every other greenlet (the waiters'
                    # deadlines, the writers).  Let the loop cycle; a short
                    # read has drained the socket and leaves as it came.
                    gevent.idle()
        except gevent.GreenletExit:
            raise
        except Exception:  # a bug here must not leave the link half alive
            logger.exception("%s: reader failed", link.server)
            self._links.give_up(link, link.connection.abandon())

    def _write_loop(self, link: _GeventLink) -> None:
        links = self._links
        sock = link.sock
        while True:
            link.wanted.wait()
            link.wanted.clear()
            while data := link.take_pending():
                links.sending(link, time.monotonic())
                try:
                    for chunk in chunks(data):
                        sock.sendall(chunk)
                        links.sent(link, len(chunk), time.monotonic())
                except OSError as error:
                    links.write_failed(link, error)
                    return
                link.sending = False
            links.wrote()

    # ------------------------------------------------------------ waiting

    def refresh(self) -> None:
        """Let the readers take in what already arrived (a link the server
        closed meanwhile), without waiting for more.

        Readers run only while the hub does: a greenlet that has not waited
        since (blocking code, no monkey-patching) would otherwise submit on
        a link that is already gone.
        """
        now = time.monotonic()
        if now - self._looked_at < IDLE_CHECK_AFTER:
            return  # the hub ran a moment ago: nothing can be waiting unread
        self._looked_at = now
        if any(link.arrived() for link in self._links if isinstance(link, _GeventLink)):
            # Until the loop has polled and the readers ran; bounded, so a busy
            # hub never holds the caller up.
            limit = gevent.Timeout(REFRESH_LIMIT)
            limit.start()
            try:
                gevent.idle()
            except gevent.Timeout as expired:
                if expired is not limit:
                    raise  # the caller's own gevent.Timeout
            finally:
                limit.close()

    def wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object] = ()
    ) -> bool:
        """Park until *done()*, *deadline*, or a link's end; see
        :meth:`gearman._links.Links.end_wait` for a wait that ends unwoken
        (its deadline, the caller's ``gevent.Timeout``, ``kill()``)."""
        self._links.flush()
        if done():
            return True
        event = gevent.event.Event()
        started = time.monotonic()
        marks = self._links.begin_wait(event, done, watch)
        try:
            event.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        finally:
            self._looked_at = time.monotonic()
            self._links.end_wait(event, marks, event.is_set(), started, self._looked_at)
        return done()

    # --------------------------------------------------------------- jobs

    def run_job(self, job: Callable[[T], object], argument: T) -> None:
        """Start ``job(argument)`` in a greenlet; the session's ``max_jobs`` is the limit."""
        self._jobs.spawn(job, argument)


def _handshake(server: proto.ServerAddress, sock: Any, target: Target) -> Any:
    """gevent's SSL socket over the connected *sock*, its handshake done;
    *sock* is closed when it fails or is interrupted (the connect's timeout).

    gevent's ``SSLSocket`` takes any ``ssl.SSLContext`` as ``_context``, so
    the caller's context (gevent's own under monkey-patching, the standard
    library's without) is used as it is.

    Raises:
        gearman.errors.TlsError: the handshake failed.
    """
    try:
        tls = gssl.SSLSocket(
            sock=sock,
            server_hostname=target.server_hostname,
            do_handshake_on_connect=False,
            _context=target.context,
        )
    except (OSError, ValueError) as error:
        sock.close()
        raise handshake_failed(server, target, error) from error
    try:
        tls.do_handshake()
    except OSError as error:  # ssl.SSLError included
        tls.close()
        raise handshake_failed(server, target, error) from error
    except BaseException:
        tls.close()
        raise
    return tls
