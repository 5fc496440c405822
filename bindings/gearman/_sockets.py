"""TCP options every runtime sets on its links.

Owns: TCP_NODELAY (requests are small and latency-bound) and the keepalive
timings (a dead peer is noticed within about two minutes of silence).  Used
by the blocking, gevent, trio and asyncio runtimes on the socket each one
opened; decides nothing else.
"""

from __future__ import annotations

import socket
from typing import Protocol

__all__ = ["KEEPALIVE", "tune"]

#: (option name, value): idle seconds before probing, seconds between
#: probes, probes before the link is declared dead.
KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5))


class Options(Protocol):
    """A socket, or anything with its ``setsockopt`` (trio's ``SocketStream``)."""

    def setsockopt(self, level: int, option: int, value: int) -> object:
        """Set one socket option."""


def tune(sock: Options, keepalive: bool) -> None:
    """TCP_NODELAY, and keepalive with :data:`KEEPALIVE` timings when asked."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in KEEPALIVE:
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
