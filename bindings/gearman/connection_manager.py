"""python-gearman's ``connection_manager`` module: the base of clients, workers
and admin clients.

This is where python-gearman's connection-level API meets the new design:
``connection_list`` (one :class:`gearman.connection.GearmanConnection` per
server of the host list), ``connection_class``, ``establish_connection``,
and the poll loop, ``poll_connections_once`` and
``poll_connections_until_stopped``, which drive the object's real runtime:
a client's requests advance, a worker runs the jobs that arrive, exactly as
in its own waits.  What python-gearman kept underneath (command handlers,
packet buffers) has no equivalent: the core and the runtime do that work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import gearman_proto as proto

from . import errors
from ._common import (
    DataEncoder,
    Misuse,
    NoopEncoder,
    host_entries,
    parse_host_list,
    tls_settings,
)
from ._runtime import AnyConnection, TlsSettings, deadline_after
from .connection import GearmanConnection

# python-gearman 2.0.2 had these in this module, and code imports them from here.
from .errors import (
    ConnectionError,  # noqa: A004  (python-gearman's name)
    ServerUnavailable,
)

if TYPE_CHECKING:  # the type only: the runtimes do the TLS
    import ssl

__all__ = [
    "AsyncGearmanConnectionManager",
    "ConnectionError",
    "DataEncoder",
    "GearmanConnectionManager",
    "NoopEncoder",
    "ServerUnavailable",
]

#: what ``poll_connections_once`` returns: readable, writable, failed connections.
PollResult = tuple[set[GearmanConnection], set[GearmanConnection], set[GearmanConnection]]

_Traffic = tuple[object, int, int]


class _ConnectionTable(dict[proto.ServerAddress, GearmanConnection]):
    """An owner's connection objects by server; looking up a server it has no
    object for makes one (a status query may name a server outside the host
    list).  ``table[server]`` is what the kernels call once per job: a dict
    lookup, no Python frame."""

    def __init__(self, owner: _ConnectionList) -> None:
        super().__init__()
        self._owner = owner

    def __missing__(self, server: proto.ServerAddress) -> GearmanConnection:
        owner = self._owner
        connection = owner.connection_class(server.host, server.port)._attach(owner)
        self[server] = connection
        return connection


class _ConnectionList:
    """The host list, the encoder and ``connection_list``, for either colour.

    Args:
        host_list: see :func:`gearman._common.parse_host_list`.
        ssl_context: TLS on every link, checked as the context says.
        server_hostname: the name certificates are checked against (default:
            each server's host).
        open_stream: an async facade's custom transport (never with TLS).

    Attributes:
        servers: the parsed host list (:class:`gearman_proto.ServerAddress`).
        connection_list: one ``connection_class`` object per server.
        data_encoder: a :class:`DataEncoder` class applied to job payloads.
    """

    data_encoder: type[DataEncoder] = NoopEncoder
    #: the class of ``connection_list`` entries and of ``job.connection``.
    connection_class: type[GearmanConnection] = GearmanConnection
    #: the facade's runtime (sync or async); both colours answer ``connected``
    #: and ``close`` alike.
    _io: Any
    #: the role's error class (a bad host list raises its ValueError flavour).
    _misuse: ClassVar[Misuse] = errors.GearmanError

    def __init__(
        self,
        host_list: Any = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        open_stream: object = None,
    ) -> None:
        entries = host_entries(host_list, self._misuse)
        self.servers = parse_host_list(entries, self._misuse)
        #: what the runtime makes TLS (None: nothing).
        self._tls: TlsSettings | None = tls_settings(
            entries, ssl_context, server_hostname, open_stream
        )
        self._connections = _ConnectionTable(self)
        #: the connection object of a server (made on first use).
        self._connection_for = self._connections.__getitem__
        self.connection_list: list[GearmanConnection] = [
            self._connection_for(server) for server in self.servers
        ]

    def _live_connections(self) -> list[GearmanConnection]:
        """The entries of ``connection_list`` connected now."""
        return [connection for connection in self.connection_list if connection.connected]

    def _is_connected(self, server: proto.ServerAddress) -> bool:
        return bool(self._io.connected(server))

    def _close(self, server: proto.ServerAddress) -> None:
        self._io.close(server)

    def _open(self, server: proto.ServerAddress) -> None:
        raise errors.ConnectionError(
            f"cannot connect {server} by hand: this object connects when it needs to"
        )


class GearmanConnectionManager(_ConnectionList):
    """What sync clients, workers and admin clients share.

    Attributes: see :class:`_ConnectionList`; subclasses add their runtime.
    """

    def shutdown(self) -> None:
        """Close every connection."""
        raise NotImplementedError

    def establish_connection(self, current_connection: GearmanConnection) -> GearmanConnection:
        """Connect *current_connection* (one of ``connection_list``) if it is not.

        Raises:
            gearman.errors.ConnectionError: it cannot be reached, or is not
                one of this object's connections.
        """
        if self._connections.get(current_connection.server) is not current_connection:
            raise errors.ConnectionError(f"{current_connection!r} is not a connection of {self!r}")
        if not current_connection.connected:
            self._open(current_connection.server)
        return current_connection

    def poll_connections_once(
        self, submitted_connections: Iterable[GearmanConnection], timeout: float | None = None
    ) -> PollResult:
        """Wait up to *timeout* seconds (None: no limit) for traffic on the
        connected ones of *submitted_connections*, handling what arrives as the
        object's own waits do.

        Returns ``(readable, writable, failed)``: the connections that
        received bytes, that had bytes written, and that ended meanwhile.
        """
        readable: set[GearmanConnection] = set()
        writable: set[GearmanConnection] = set()
        failed: set[GearmanConnection] = set()
        watched = [connection for connection in submitted_connections if connection.connected]
        if not watched or (timeout is not None and timeout < 0):
            return readable, writable, failed
        before = {connection: self._traffic(connection.server) for connection in watched}

        def moved() -> bool:
            return any(self._traffic(c.server) != before[c] for c in watched)

        self._poll(moved, deadline_after(self._io, timeout))
        for connection in watched:
            core, received, sent = before[connection]
            now_core, now_received, now_sent = self._traffic(connection.server)
            if now_core is not core:
                failed.add(connection)
                continue
            if now_received != received:
                readable.add(connection)
            if now_sent != sent:
                writable.add(connection)
        return readable, writable, failed

    def handle_connection_activity(
        self,
        rd_connections: Iterable[GearmanConnection],
        wr_connections: Iterable[GearmanConnection],
        ex_connections: Iterable[GearmanConnection],
    ) -> PollResult:
        """python-gearman's second step of a poll: :meth:`handle_read` each
        readable connection, :meth:`handle_write` each writable one,
        :meth:`handle_error` each failed one.  Returns ``(readable,
        writable, failed)``; failed includes the connections that ended meanwhile.
        """
        readable, writable, failed = set(rd_connections), set(wr_connections), set(ex_connections)
        for connection in readable:
            self.handle_read(connection)
        for connection in writable:
            self.handle_write(connection)
        failed |= {c for c in readable | writable if not c.connected}
        for connection in failed:
            self.handle_error(connection)
        return readable, writable, failed

    def handle_read(self, current_connection: GearmanConnection) -> None:
        """Take in what arrived on *current_connection*, without waiting (the
        runtime hands every event on as it reads: this only catches up)."""
        with self._io.lock:
            self._io.refresh()

    def handle_write(self, current_connection: GearmanConnection) -> None:
        """Write what is queued, without waiting."""
        with self._io.lock:
            self._io.flush()

    def handle_error(self, current_connection: GearmanConnection) -> None:
        """*current_connection* failed: close it (the object reconnects when it needs to)."""
        current_connection.close()

    def poll_connections_until_stopped(
        self,
        submitted_connections: Iterable[GearmanConnection],
        callback_fxn: Callable[[bool], object],
        timeout: float | None = None,
    ) -> bool:
        """Poll until *callback_fxn(any_activity)* returns false, *timeout*
        seconds pass (None: no limit), or none of the connections is connected.

        *callback_fxn* is called once before the first poll (with False) and
        after every poll.  Returns whether it and the connections were both
        still willing at the end.

        Raises:
            gearman.errors.ServerUnavailable: no connection is connected.
        """
        connections = list(submitted_connections)
        io = self._io
        deadline = deadline_after(io, timeout)
        callback_ok = bool(callback_fxn(False))
        connection_ok = any(connection.connected for connection in connections)
        while connection_ok and callback_ok:
            remaining = None if deadline is None else deadline - io.now()
            if remaining is not None and remaining <= 0:
                break
            readable, writable, failed = self.poll_connections_once(connections, remaining)
            readable, writable, failed = self.handle_connection_activity(readable, writable, failed)
            callback_ok = bool(callback_fxn(bool(readable or writable or failed)))
            connection_ok = any(connection.connected for connection in connections)
        if not connection_ok:
            raise errors.ServerUnavailable(
                f"found no valid connections in list: {self.connection_list!r}"
            )
        return connection_ok and callback_ok

    def _open(self, server: proto.ServerAddress) -> None:
        io = self._io
        with io.lock:
            if not io.connected(server):
                self._connect_server(server, deadline_after(io, self.connect_timeout))
        if not io.connected(server):
            raise errors.ConnectionError(f"cannot connect to {server}")

    # The facades' part of connecting and of the poll loop.
    #: seconds one connect may take (set by the facade).
    connect_timeout: float | None

    def _connect_server(self, server: proto.ServerAddress, deadline: float | None) -> None:
        """Open a link to *server* by *deadline*, as the facade's own loop does."""
        raise NotImplementedError

    def _core_connection(self, server: proto.ServerAddress) -> AnyConnection | None:
        """The core connection of *server*'s live link, if any."""
        raise NotImplementedError

    def _poll(self, done: Callable[[], bool], deadline: float | None) -> None:
        """One wait of the object's own loop, until *done()* or *deadline*."""
        raise NotImplementedError

    def _traffic(self, server: proto.ServerAddress) -> _Traffic:
        connection = self._core_connection(server)
        if connection is None:
            return None, 0, 0
        return connection, connection.bytes_received, connection.bytes_sent


class AsyncGearmanConnectionManager(_ConnectionList):
    """:class:`GearmanConnectionManager` for the async facades: the same host
    list, encoder and ``connection_list``, with an awaitable :meth:`shutdown`
    (python-gearman's poll loop is sync only: an async object's links are
    served by their own tasks)."""

    async def shutdown(self) -> None:
        """Close every connection."""
        raise NotImplementedError
