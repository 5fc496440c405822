"""TCP options every runtime sets on its links, and sending without waiting.

Owns: TCP_NODELAY (requests are small and latency-bound), the keepalive
timings (a dead peer is noticed within about two minutes of silence), and
the plain non-blocking twin of an event loop's socket through which the
trio and gevent runtimes send what the kernel takes at once, without a
task switch.  Decides nothing else.
"""

from __future__ import annotations

import os
import socket
from typing import Protocol

__all__ = ["KEEPALIVE", "nonblocking_twin", "send_without_waiting", "tune"]

#: (option name, value): idle seconds before probing, seconds between
#: probes, probes before the link is declared dead.
KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5))


class Options(Protocol):
    """A socket, or anything with its ``setsockopt`` (trio's ``SocketStream``)."""

    def setsockopt(self, level: int, option: int, value: int) -> object:
        """Set one socket option."""


def tune(sock: Options, keepalive: bool) -> None:
    """TCP_NODELAY, and keepalive with :data:`KEEPALIVE` timings when asked; a
    socket that is not TCP (a Unix socket from a user's ``open_stream``) is
    left as it is."""
    if getattr(sock, "family", socket.AF_INET) not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in KEEPALIVE:
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def nonblocking_twin(fileno: int) -> socket.socket:
    """A plain socket on a duplicate of *fileno*: same connection, own descriptor.

    Close it with the original: while it is open, the connection is.
    """
    twin = socket.socket(fileno=os.dup(fileno))
    twin.setblocking(False)
    return twin


def send_without_waiting(sock: socket.socket | None, data: bytes) -> int:
    """The bytes of *data* the kernel takes at once (0: none, or no socket).

    An error sends nothing here: the caller's writer meets it again and
    gives the link up in order.
    """
    if sock is None:
        return 0
    try:
        return sock.send(data)
    except OSError:  # EAGAIN, or an error the writer meets in order
        return 0
