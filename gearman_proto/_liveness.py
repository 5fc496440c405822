"""Liveness of quiet connections: an ECHO after a quiet interval, with a deadline.

A worker sleeping in PRE_SLEEP hears nothing until a job comes, so a
server that stopped answering without closing (a frozen gearmand, a
middlebox that black-holes the link) looks exactly like an idle one, and
TCP keepalive cannot tell while the peer's stack still acknowledges.
:class:`Liveness` notices: a connection that received nothing for
*interval* seconds is sent an ECHO_REQ; one that still received nothing
*timeout* seconds later is reported unresponsive, and the binding gives it
up (the session then reconnects it like any lost connection).

Traffic is read from each connection's ``bytes_received`` at every check,
not recorded per packet, so the check costs nothing on the job path; a
connection is asked after between one and two intervals of quiet, and an
answer is seen at the answer's deadline, so a quiet connection that does
answer is asked again every *interval* + *timeout* seconds.

Owns: when a quiet connection is asked (ECHO_REQ) and when it counts as
unresponsive.  Does not own: closing the link or reconnecting (the binding
and :class:`WorkerSession`), or the clock (``now`` is passed in).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ._connection import ConnectionState, _Connection
from ._events import EchoRequest
from ._servers import ServerAddress

__all__ = ["ECHO_PAYLOAD", "Liveness"]

logger = logging.getLogger("gearman_proto.liveness")

#: what a liveness ECHO_REQ carries (gearmand echoes it back).
ECHO_PAYLOAD = b"gearman-proto liveness"


class Liveness:
    """Asks quiet connections for a sign of life and names those that gave none.

    Args:
        interval: seconds of quiet after which a connection is sent an ECHO.
        timeout: seconds the answer (or any other byte) may take.
    """

    def __init__(self, interval: float, timeout: float) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("the liveness interval and timeout must be positive")
        self.interval = interval
        self.timeout = timeout
        #: per server: bytes received at the last check, and since when that count holds.
        self._quiet: dict[ServerAddress, tuple[int, float]] = {}
        #: per server with an ECHO out: when its answer is due.
        self._asked: dict[ServerAddress, float] = {}
        #: when :meth:`check` next has something to do (``-inf``: at once, a
        #: connection came that no check has seen yet; None: nothing to watch).
        self.deadline: float | None = None

    def connection_made(self) -> None:
        """A connection was added: the next check must look at it."""
        self.deadline = float("-inf")

    def forget(self, server: ServerAddress) -> None:
        """*server*'s connection is gone."""
        self._quiet.pop(server, None)
        self._asked.pop(server, None)

    def check(
        self, connections: Mapping[ServerAddress, _Connection], now: float
    ) -> list[ServerAddress]:
        """Look at every connection at *now*: send the ECHOs that are due, and
        return the servers whose connection stayed silent past its deadline.
        """
        unresponsive = []
        earliest: float | None = None
        for server, connection in connections.items():
            seen = connection.bytes_received
            last = self._quiet.get(server)
            if last is None or last[0] != seen:
                self._quiet[server] = (seen, now)
                self._asked.pop(server, None)
                due = now + self.interval
            elif server in self._asked:
                due = self._asked[server]
                if now >= due:
                    logger.warning(
                        "%s: no answer to ECHO within %s s: giving the connection up",
                        server,
                        self.timeout,
                    )
                    unresponsive.append(server)
                    continue
            elif now >= last[1] + self.interval:
                if connection.state is not ConnectionState.OPEN:
                    continue  # ending already: its end reaches the session anyway
                connection.queue(EchoRequest(payload=ECHO_PAYLOAD))
                due = self._asked[server] = now + self.timeout
            else:
                due = last[1] + self.interval
            if earliest is None or due < earliest:
                earliest = due
        self.deadline = earliest
        return unresponsive
