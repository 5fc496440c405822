"""Server addresses and the choice among several servers.

Owns: parsing host specifications (``"host"``, ``"host:port"``,
``"[::1]:4730"``, ``("host", port)``), and the pool that rotates jobs across
servers and keeps failed ones out for a growing back-off.  Does not own:
connecting (the bindings) or the clock: every method that cares about time
takes ``now`` in seconds from any monotonic source.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import NamedTuple

from ._errors import LocalValueError

__all__ = ["DEFAULT_PORT", "ServerAddress", "ServerPool", "parse_server"]

DEFAULT_PORT = 4730


class ServerAddress(NamedTuple):
    """Where a gearmand listens. Fields: host (name or IP literal, no brackets); port.

    A named tuple: it keys every per-server table, and hashes in C.
    """

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _port(text: str, spec: object) -> int:
    # Only ASCII digits: str.isdigit() and int() also take the digits of
    # other scripts ("\u0664\u0667\u0663\u0660" reads as 4730).
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise LocalValueError(f"bad port in server {spec!r}: 1 to 65535 in ASCII digits")
    return int(text)


def parse_server(spec: str | tuple[str, int] | ServerAddress) -> ServerAddress:
    """Turn a host specification into a :class:`ServerAddress`.

    Accepts ``"host"``, ``"host:port"``, ``"[v6]"``, ``"[v6]:port"``, a bare
    IPv6 literal such as ``"::1"`` (more than one colon: no port), a
    ``(host, port)`` tuple, or a :class:`ServerAddress`.

    Raises:
        LocalValueError: the specification cannot be read (a ``ValueError``).
    """
    if isinstance(spec, ServerAddress):
        return spec
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise LocalValueError(f"bad server {spec!r}: a (host, port) pair is needed")
        host, port = spec
        return ServerAddress(str(host), _port(str(port), spec))
    if not isinstance(spec, str) or not spec.strip():
        raise LocalValueError(f"bad server {spec!r}")
    text = spec.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise LocalValueError(f"bad server {spec!r}")
        return ServerAddress(host, _port(rest[1:], spec) if rest else DEFAULT_PORT)
    if text.count(":") > 1:
        return ServerAddress(text)
    name, colon, port_text = text.partition(":")
    if not name:
        raise LocalValueError(f"bad server {spec!r}")
    return ServerAddress(name, _port(port_text, spec) if colon else DEFAULT_PORT)


class ServerPool:
    """Rotates over servers and keeps failed ones out for a while.

    A failure to connect puts a server in back-off for *backoff_initial* seconds,
    doubled at every further failure up to *backoff_max*, with +-20 %
    jitter (so a fleet of clients does not reconnect in lock step); a
    connection that works clears it.  Losing a working connection is not a
    failure (see :meth:`lost`).

    Args:
        servers: the addresses, in preference order.
        backoff_initial, backoff_max: back-off bounds in seconds.
        rng: the random source for jitter (seed it in tests).
    """

    def __init__(
        self,
        servers: Iterable[ServerAddress],
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        #: may be empty: then no job can be placed (:class:`NoServerAvailable`).
        self.servers: tuple[ServerAddress, ...] = tuple(servers)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._next = 0
        self._failures: dict[ServerAddress, int] = {}
        self._retry_at: dict[ServerAddress, float] = {}

    def candidates(self, now: float) -> list[ServerAddress]:
        """Servers to try for the next job, best first.

        Starts at the next server in rotation and lists every server not in
        back-off; the rotation advances by one per call, which spreads jobs.
        """
        servers = self.servers
        if not servers:
            return []
        start = self._next
        self._next = (start + 1) % len(servers)
        order = servers[start:] + servers[:start] if start else servers
        if not self._retry_at:  # nobody in back-off: the common case
            return list(order)
        return [server for server in order if self.available(server, now)]

    def available(self, server: ServerAddress, now: float) -> bool:
        """Whether *server* is out of back-off at *now*."""
        return self._retry_at.get(server, 0.0) <= now

    def failed(self, server: ServerAddress, now: float) -> float:
        """Record a failure of *server*; return when it may be tried again."""
        failures = self._failures.get(server, 0) + 1
        self._failures[server] = failures
        delay = min(self.backoff_max, self.backoff_initial * 2.0 ** (failures - 1))
        delay *= 1 + self._rng.uniform(-0.2, 0.2)
        self._retry_at[server] = now + delay
        return now + delay

    def lost(self, server: ServerAddress, now: float, *, proven: bool = True) -> float:
        """Record that a connection to *server* ended; return when to connect again.

        A connection that had *proven* itself (the server answered on it)
        may be replaced at once, however many such losses came before: a
        restarted server is used as soon as it accepts again.  One that the
        server dropped before answering anything counts as a failed connect
        (back-off), so a server that accepts and drops does not make its
        clients spin.
        """
        if not proven:
            return self.failed(server, now)
        self._retry_at.pop(server, None)
        return now

    def succeeded(self, server: ServerAddress) -> None:
        """Record that *server* works: clear its back-off."""
        self._failures.pop(server, None)
        self._retry_at.pop(server, None)

    def next_retry(self, servers: Iterable[ServerAddress] | None = None) -> float:
        """The earliest time one of *servers* (default: all) leaves back-off."""
        pool = self.servers if servers is None else servers
        return min((float(self._retry_at.get(server, 0.0)) for server in pool), default=0.0)
