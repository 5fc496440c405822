"""The trio runtime: one reader and one writer task per link, waiters parked on events.

Owns: opening links (``trio.open_tcp_stream``, with a ``trio.SSLStream``
over it for a TLS link, or any ``trio.abc.Stream`` from a user's
``open_stream``), the reader and writer tasks of each link,
deadlines and cancellation in trio's idiom, and the nursery jobs run in.
What the tasks share with every other runtime (the bytes owed, events to
the sink, giving a link up, stalled writes) is :mod:`gearman._links`.
Makes no protocol decision (``gearman_proto``) and shapes nothing.

Link tasks are trio *system* tasks: a client needs no nursery of the
caller's, as python-gearman's API has none, and they end with the link or
with the ``trio.run`` they started in.  A caller's cancel scope only ever
ends its own wait; a write is cancelled only by giving the link up, which
goes through the core (``send_failed``) like any broken link.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TypeVar

import trio

import gearman_proto as proto

from . import errors
from ._links import Link, LinkedRuntime, Links
from ._runtime import AnyConnection, EventSink, TlsSettings, connect_limit
from ._sockets import nonblocking_twin, send_without_waiting, tune
from ._tls import Target, Tls, connect_timed_out, handshake_failed

__all__ = ["READ_SIZE", "OpenStream", "TrioRuntime", "open_tcp_stream"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: bytes asked of the stream per read: many packets per read.
READ_SIZE = 256 * 1024


#: opens the stream of one link; the default is :func:`open_tcp_stream`.
OpenStream = Callable[[proto.ServerAddress], Awaitable[trio.abc.Stream]]

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


async def open_tcp_stream(server: proto.ServerAddress) -> trio.abc.Stream:
    """A TCP stream to *server* (IPv4 or IPv6, happy eyeballs: trio's own)."""
    return await trio.open_tcp_stream(server.host, server.port)


async def _handshake(
    server: proto.ServerAddress, stream: trio.abc.Stream, target: Target
) -> trio.SSLStream[trio.abc.Stream]:
    """A ``trio.SSLStream`` over *stream*, its handshake done; *stream* is
    closed when it fails or is cancelled (the connect's deadline).

    ``https_compatible``: an end without TLS close_notify reads as the end of
    the stream, which the core judges (a packet cut short is its error).

    Raises:
        gearman.errors.TlsError: the handshake failed.
    """
    try:
        tls = trio.SSLStream(
            stream, target.context, server_hostname=target.server_hostname, https_compatible=True
        )
        await tls.do_handshake()
    except (*_BROKEN, ValueError) as error:
        await trio.aclose_forcefully(stream)
        raise handshake_failed(server, target, error) from error
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return tls


class _TrioLink(Link):
    """A link's stream, its writer's event, and the cancel scope of its tasks.

    On a TCP stream the link also keeps a duplicate of the socket's
    descriptor, a plain non-blocking socket, so that bytes the kernel takes at
    once are sent without waking the writer task (one task switch less per
    write); only what does not fit goes through ``send_all``.  A TLS link has
    none: every byte goes through its ``SSLStream``.
    """

    __slots__ = ("raw", "scope", "stream", "wanted")

    def __init__(
        self,
        server: proto.ServerAddress,
        stream: trio.abc.Stream,
        connection: AnyConnection,
        raw: socket.socket | None,
    ) -> None:
        super().__init__(server, connection)
        self.stream = stream
        self.wanted = trio.Event()
        self.scope = trio.CancelScope()
        self.raw = raw

    def send_now(self, data: bytes) -> int:
        return send_without_waiting(self.raw, data)

    def wake_writer(self) -> None:
        self.wanted.set()

    def stop(self) -> None:
        self.scope.cancel()  # the link's task closes the stream on its way out
        if self.raw is not None:
            self.raw.close()  # the duplicate would keep the connection open


class TrioRuntime(LinkedRuntime):
    """The :class:`gearman._runtime.AsyncRuntime` on trio.

    Args:
        on_event: receives every event read, and each link's end.
        keepalive: TCP keepalive on TCP links.
        connect_timeout: the cap of one connect (None: only the deadline).
        open_stream: opens a link's stream (default: TCP to the server);
            any ``trio.abc.Stream`` will do, TLS or in-memory included.
        tls: which links are TLS (a ``trio.SSLStream`` over the stream;
            None: none).
    """

    def __init__(
        self,
        on_event: EventSink,
        *,
        keepalive: bool = True,
        connect_timeout: float | None = 5.0,
        open_stream: OpenStream | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._tls = Tls(tls)
        self._open_stream: OpenStream = open_stream or open_tcp_stream
        self._links = Links(on_event)
        self._connecting: dict[proto.ServerAddress, trio.Lock] = {}
        self._jobs: trio.Nursery | None = None

    now: Callable[[], float] = staticmethod(trio.current_time)

    # ------------------------------------------------------------- links

    async def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Open a link to *server* by *deadline* (and within ``connect_timeout``),
        the TLS handshake included.

        Raises :class:`gearman.errors.ConnectionError`
        (:class:`gearman.errors.TlsError`: the handshake failed).
        """
        limit = connect_limit(trio.current_time(), deadline, self.connect_timeout)
        target = self._tls.target(server)
        lock = self._connecting.setdefault(server, trio.Lock())
        handshaking: Target | None = None
        with trio.move_on_at(math.inf if limit is None else limit):
            async with lock:  # one connect per server at a time: no duplicate links
                if server in self._links:
                    return  # another task connected it meanwhile
                try:
                    stream = await self._open_stream(server)
                except OSError as error:
                    raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
                try:
                    twin = None
                    if isinstance(stream, trio.SocketStream):
                        tune(stream.socket, self.keepalive)
                        if target is None:
                            twin = nonblocking_twin(stream.socket.fileno())
                except OSError as error:
                    await trio.aclose_forcefully(stream)
                    raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error
                if target is not None:
                    handshaking = target
                    stream = await _handshake(server, stream, target)
                # Only now, with nothing left to fail, the core learns of the link.
                link = _TrioLink(server, stream, connection(), twin)
                self._links.add(link)
                trio.lowlevel.spawn_system_task(self._serve, link, name=f"gearman link {server}")
                return
        raise connect_timed_out(server, handshaking)

    async def _serve(self, link: _TrioLink) -> None:
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
            self._links.give_up(link, link.connection.abandon())
            await trio.aclose_forcefully(link.stream)

    async def _read_loop(self, link: _TrioLink) -> None:
        stream = link.stream
        received = self._links.received
        while True:
            try:
                data = await stream.receive_some(READ_SIZE)
            except _BROKEN as error:
                self._links.read_failed(link, error)
                return
            if not received(link, data):
                return

    async def _write_loop(self, link: _TrioLink) -> None:
        write_pending = self._links.write_pending
        send = link.stream.send_all
        while True:
            await link.wanted.wait()
            link.wanted = trio.Event()
            if not await write_pending(link, send, trio.current_time, _BROKEN):
                return

    # ------------------------------------------------------------ waiting

    async def drain(self, deadline: float | None) -> bool:
        """Wait until every byte queued so far is written (see the interface)."""
        self._links.flush()
        return await self.wait(self._links.drained(self._links.marks()), deadline)

    async def wait(
        self, done: Callable[[], bool], deadline: float | None, watch: Collection[object] = ()
    ) -> bool:
        """Park until *done()*, *deadline*, or a link's end; see
        :meth:`gearman._links.Links.end_wait` for a wait that ends unwoken
        (its deadline, or the caller's cancel scope)."""
        if done():
            return True
        event = trio.Event()
        started = trio.current_time()
        marks = self._links.begin_wait(event, done, watch)
        try:
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await event.wait()
        finally:
            self._links.end_wait(event, marks, event.is_set(), started, trio.current_time())
        return done()

    def lock(self) -> trio.Lock:
        """A new ``trio.Lock``."""
        return trio.Lock()

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
            self._links.close_all()
