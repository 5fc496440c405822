"""The asyncio runtime: one reader and one writer task per link, waiters parked on events.

Owns: opening links (``asyncio.open_connection``, over a socket connected
first for a TLS link so that the handshake is told apart from the TCP
connect, or any stream pair from a user's ``open_stream``), the reader
and writer tasks of each link, deadlines (``poll_timeout``) and
cancellation in asyncio's idiom (``asyncio.wait_for``, ``asyncio.timeout``,
``Task.cancel``), and the task group jobs run in.  What the tasks share
with every other runtime (the bytes owed, events to the sink, giving a
link up, stalled writes) is :mod:`gearman._links`.  Standard library
only; runs on any event loop that implements asyncio's (uvloop included).
Makes no protocol decision (``gearman_proto``) and shapes nothing (the
kernel).

A cancelled task only ever ends its own wait; a write is cancelled only by
giving the link up, which goes through the core (``send_failed``) like any
broken link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine
from typing import Any, TypeVar

import gearman_proto as proto

from . import errors
from ._links import Link, LinkedRuntime, Links
from ._runtime import AnyConnection, EventSink, TlsSettings, connect_limit
from ._sockets import tune
from ._tls import Target, Tls, connect_timed_out, handshake_failed

__all__ = ["READ_SIZE", "AsyncioRuntime", "OpenStream", "open_tcp_stream"]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")

#: bytes asked of the stream per read: many packets per read.
READ_SIZE = 256 * 1024


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

#: opens the stream pair of one link; the default is :func:`open_tcp_stream`.
OpenStream = Callable[[proto.ServerAddress], Awaitable[Streams]]


async def open_tcp_stream(server: proto.ServerAddress) -> Streams:
    """A TCP stream pair to *server*, with a read buffer fit for large payloads."""
    return await asyncio.open_connection(server.host, server.port, limit=READ_SIZE)


async def _open_tls_stream(
    server: proto.ServerAddress, target: Target, handshaking: list[Target]
) -> Streams:
    """A TLS stream pair to *server*: TCP first (each address in turn), then
    the handshake, which puts *target* in *handshaking* when it starts.

    Raises:
        gearman.errors.TlsError: the handshake failed.
        OSError: no TCP connection.
    """
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
    failure = OSError(f"no address for {server.host!r}")
    for family, kind, number, _, address in addresses:
        sock = socket.socket(family, kind, number)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            failure = error
            continue
        except BaseException:
            sock.close()
            raise
        handshaking.append(target)
        try:
            return await asyncio.open_connection(
                sock=sock,
                ssl=target.context,
                server_hostname=target.server_hostname,
                limit=READ_SIZE,
            )
        except (OSError, ValueError) as error:  # the transport closed the socket
            raise handshake_failed(server, target, error) from error
    raise failure


class _AsyncioLink(Link):
    """A link's stream pair, its writer's event and its two tasks."""

    __slots__ = ("reader", "tasks", "wanted", "writer")

    def __init__(
        self,
        server: proto.ServerAddress,
        streams: Streams,
        connection: AnyConnection,
    ) -> None:
        super().__init__(server, connection)
        self.reader, self.writer = streams
        self.wanted = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def wake_writer(self) -> None:
        self.wanted.set()

    def stop(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.writer.close()


class AsyncioRuntime(LinkedRuntime):
    """The :class:`gearman._runtime.AsyncRuntime` on asyncio.

    Args:
        on_event: receives every event read, and each link's end.
        keepalive: TCP keepalive on TCP links.
        connect_timeout: the cap of one connect (None: only the deadline).
        open_stream: opens a link's ``(StreamReader, StreamWriter)`` (default:
            TCP to the server); TLS or any other transport will do.
        tls: which links are TLS (asyncio's TLS transport; None: none).
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
        self._connecting: dict[proto.ServerAddress, asyncio.Lock] = {}
        self._jobs: set[asyncio.Task[Any]] | None = None

    def now(self) -> float:
        """The running loop's clock."""
        return asyncio.get_running_loop().time()

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
        now = self.now()
        limit = connect_limit(now, deadline, self.connect_timeout)
        handshaking: list[Target] = []  # the target, once the TLS handshake began
        try:
            await asyncio.wait_for(
                self._connect(server, connection, handshaking),
                None if limit is None else max(0.0, limit - now),
            )
        except asyncio.TimeoutError:
            raise connect_timed_out(server, handshaking[0] if handshaking else None) from None
        except errors.ConnectionError:
            raise  # a TlsError: said already
        except OSError as error:
            raise errors.ConnectionError(f"cannot connect to {server}: {error}") from error

    async def _connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        handshaking: list[Target],
    ) -> None:
        lock = self._connecting.setdefault(server, asyncio.Lock())
        async with lock:  # one connect per server at a time: no duplicate links
            if server in self._links:
                return  # another task connected it meanwhile
            target = self._tls.target(server)
            if target is None:
                streams = await self._open_stream(server)
            else:
                streams = await _open_tls_stream(server, target, handshaking)
            try:
                sock = streams[1].get_extra_info("socket")
                if sock is not None:
                    tune(sock, self.keepalive)
                # drain() then means "handed to the kernel", so ``written``
                # counts no byte that still sits in the transport's buffer.  A
                # TLS transport pauses at size >= high (a plain one at > high):
                # 0 would pause it for good.
                tls = streams[1].get_extra_info("sslcontext") is not None
                streams[1].transport.set_write_buffer_limits(1 if tls else 0)
            except OSError:
                streams[1].close()
                raise
            # Only now, with nothing left to fail, the core learns of the link.
            link = _AsyncioLink(server, streams, connection())
            self._links.add(link)
            link.tasks = [
                asyncio.ensure_future(self._read_loop(link)),
                asyncio.ensure_future(self._write_loop(link)),
            ]

    async def _read_loop(self, link: _AsyncioLink) -> None:
        reader = link.reader
        received = self._links.received
        try:
            while True:
                try:
                    data = await reader.read(READ_SIZE)
                except OSError as error:
                    self._links.read_failed(link, error)
                    return
                if not received(link, data):
                    return
                # read() returns buffered bytes without yielding: a server that
                # never stops sending would run this loop for several chunks
                # per turn of the event loop, the waiters' deadlines waiting.
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Our own close (the link is out already: nothing happens), or
            # the loop ending under the link: its end must reach the core.
            self._links.give_up(link, link.connection.abandon())
            raise
        except Exception:  # a bug here must not leave the link half alive
            logger.exception("%s: reader failed", link.server)
            self._links.give_up(link, link.connection.abandon())

    async def _write_loop(self, link: _AsyncioLink) -> None:
        write_pending = self._links.write_pending
        writer = link.writer

        async def send(chunk: memoryview) -> None:
            writer.write(chunk)
            await writer.drain()

        while True:
            await link.wanted.wait()
            link.wanted.clear()
            # RuntimeError: a write on a transport that is closing
            if not await write_pending(link, send, self.now, (OSError, RuntimeError)):
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
        (its deadline, or the task's cancellation)."""
        if done():
            return True
        event = asyncio.Event()
        started = self.now()
        marks = self._links.begin_wait(event, done, watch)
        expired: list[bool] = []
        timer = None
        if deadline is not None:
            # The deadline sets the event itself: wait_for's cancellation
            # took several turns of the loop, each one a chunk of a flood.
            def expire() -> None:
                expired.append(True)
                event.set()

            timer = asyncio.get_running_loop().call_at(deadline, expire)
        try:
            await event.wait()
        finally:
            if timer is not None:
                timer.cancel()
            woken = event.is_set() and not expired
            self._links.end_wait(event, marks, woken, started, self.now())
        return done()

    def lock(self) -> asyncio.Lock:
        """A new ``asyncio.Lock``."""
        return asyncio.Lock()

    # --------------------------------------------------------------- jobs

    @contextlib.asynccontextmanager
    async def job_group(self) -> AsyncIterator[object]:
        """The tasks of one ``work()`` call's jobs.

        Leaving waits for the jobs still running and raises the first error
        one of them raised; an error or cancellation of the body cancels
        them (and waits until they have reported themselves).
        """
        tasks: set[asyncio.Task[Any]] = set()
        self._jobs = tasks
        try:
            yield tasks
            while pending := {task for task in tasks if not task.done()}:
                await asyncio.wait(pending)
        except BaseException:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
            raise
        finally:
            self._jobs = None
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def run_job(self, job: Callable[[T], Awaitable[object]], argument: T) -> None:
        """Start ``job(argument)`` as a task of the open job group."""
        if self._jobs is None:
            raise RuntimeError("run_job() outside job_group()")
        coroutine: Coroutine[Any, Any, object] = job(argument)  # type: ignore[assignment]
        task = asyncio.ensure_future(coroutine)
        self._jobs.add(task)

    async def aclose(self, grace: float) -> None:
        """Write what is queued (at most *grace* s, also when cancelled), then close
        every link."""
        try:
            await asyncio.shield(self._drain_briefly(grace))
        finally:
            self._links.close_all()

    async def _drain_briefly(self, grace: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.drain(None), grace)
