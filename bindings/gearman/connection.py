"""python-gearman's ``GearmanConnection``: one server of a client, worker or admin client.

In python-gearman a connection object wrapped a socket and buffered
packets.  Here sockets belong to the runtime and packets to the core, so a
:class:`GearmanConnection` is the view python-gearman code expects of one
server: ``gearman_host``, ``gearman_port``, ``connected``, ``connect()``,
``close()``.  Each client, worker and admin client keeps one per server of
its host list in ``connection_list``; ``job.connection`` is one of them.
Built by hand (``GearmanConnection(host, port)``), it names a server, for
instance to ask for a job's status by handle.
"""

from __future__ import annotations

from typing import Any, Protocol

import gearman_proto as proto

from . import errors
from ._common import invalid_value
from .constants import DEFAULT_GEARMAN_PORT

# python-gearman 2.0.2 had these in this module, and code imports them from here.
from .errors import (
    ConnectionError,  # noqa: A004  (python-gearman's name)
    ProtocolError,
    ServerUnavailable,
)

__all__ = [
    "ConnectionError",
    "GearmanConnection",
    "ProtocolError",
    "ServerUnavailable",
    "server_of",
]


class _Owner(Protocol):
    """What a connection asks of the client, worker or admin client it belongs to."""

    def _is_connected(self, server: proto.ServerAddress) -> bool: ...

    def _open(self, server: proto.ServerAddress) -> None: ...

    def _close(self, server: proto.ServerAddress) -> None: ...


class GearmanConnection:
    """One gearmand server as python-gearman code sees it.

    Args:
        host: the server's host name or IP address (required).
        port: its port (None or 0: 4730).

    Raises:
        gearman.errors.ServerUnavailable: no host (python-gearman's check).
        ValueError: a port that is not a number from 1 to 65535.
    """

    #: python-gearman's pause between two connects to one server; here the
    #: core's back-off decides, and this is kept for code that reads it.
    connect_cooldown_seconds = 1.0

    def __init__(self, host: str | None = None, port: int | None = DEFAULT_GEARMAN_PORT) -> None:
        if host is None:
            raise errors.ServerUnavailable("No host specified")
        #: the server, as the core names it.
        self.server = proto.parse_server((host, port or DEFAULT_GEARMAN_PORT))
        self._owner: _Owner | None = None

    @property
    def gearman_host(self) -> str:
        """The server's host name or address (IPv6 without brackets)."""
        return self.server.host

    @property
    def gearman_port(self) -> int:
        """The server's port."""
        return self.server.port

    @property
    def connected(self) -> bool:
        """Whether its owner has a live link to the server right now."""
        owner = self._owner
        return owner is not None and owner._is_connected(self.server)

    def get_address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return self.server.host, self.server.port

    def connect(self) -> None:
        """Connect now (the owner also connects by itself when it needs to).

        Raises:
            gearman.errors.ConnectionError: the server cannot be reached, or
                the object belongs to no client, worker or admin client.
        """
        if self._owner is None:
            raise errors.ConnectionError(f"{self!r} belongs to no client, worker or admin client")
        self._owner._open(self.server)

    def close(self) -> None:
        """Close the link, if there is one; the owner reconnects when it needs to."""
        if self._owner is not None:
            self._owner._close(self.server)

    def _attach(self, owner: _Owner) -> GearmanConnection:
        self._owner = owner
        return self

    def __repr__(self) -> str:
        return f"<GearmanConnection {self.server} connected={self.connected}>"


def server_of(
    connection: Any, misuse: type[errors.GearmanError] = errors.InvalidClientState
) -> proto.ServerAddress:
    """The server a ``job.connection`` names: a :class:`GearmanConnection`, a
    :class:`gearman_proto.ServerAddress`, ``"host:port"`` or ``(host, port)``.

    Raises:
        GearmanError: *misuse*'s ``ValueError`` flavour (for a client,
            ``InvalidClientValue``): it names no server.
    """
    if isinstance(connection, GearmanConnection):
        return connection.server
    try:
        return proto.parse_server(connection)
    except (ValueError, TypeError) as error:
        raise invalid_value(misuse, f"{connection!r} names no server: {error}") from None
