"""The sync colour's one wait loop, shared by the blocking and gevent facades.

Owns: waiting for a condition over the core's state while opening the
connections the core asks for (:func:`wait_connecting`), and deadlines from
python-gearman's ``poll_timeout`` seconds.  Decides nothing about the
protocol: the session says which server to connect, the runtime connects.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection

import gearman_proto as proto

from . import errors
from ._common import unreachable
from ._runtime import Failures, Runtime, deadline_after

__all__ = ["connect", "connect_first", "connect_wanted", "deadline_after", "wait_connecting"]

logger = logging.getLogger("gearman.io")


def connect(
    runtime: Runtime,
    session: proto.ClientSession | proto.WorkerSession,
    server: proto.ServerAddress,
    deadline: float | None,
    failures: Failures | None = None,
) -> None:
    """Connect *server* by *deadline* and tell the session how it went; a
    failure is logged, and kept in *failures* until the server connects."""
    try:
        runtime.connect(server, functools.partial(session.connection_made, server), deadline)
    except errors.ConnectionError as error:
        logger.warning("%s", error)
        session.connect_failed(server, runtime.now())
        if failures is not None:
            failures[server] = error
    else:
        if failures:
            failures.pop(server, None)


def connect_first(
    runtime: Runtime, session: proto.ClientSession, deadline: float | None
) -> proto.ServerAddress:
    """The first server in the session's rotation that is connected, or that
    connects by *deadline* (python-gearman's ``establish_request_connection``).

    Raises:
        gearman.errors.ServerUnavailable: none could be reached.
    """
    candidates = session.candidates(runtime.now())
    for server in candidates:
        if not runtime.connected(server):
            connect(runtime, session, server, deadline)
        if runtime.connected(server):
            return server
    raise unreachable(candidates)


def connect_wanted(
    runtime: Runtime,
    session: proto.ClientSession,
    deadline: float | None,
    failures: Failures | None = None,
) -> None:
    """Open every connection the session waits for, in its order, by *deadline*."""
    while (server := session.connection_wanted(runtime.now())) is not None:
        connect(runtime, session, server, deadline, failures)


def wait_connecting(
    runtime: Runtime,
    session: proto.ClientSession,
    done: Callable[[], bool],
    deadline: float | None,
    watch: Collection[object] = (),
    failures: Failures | None = None,
) -> bool:
    """Wait until *done()* or *deadline*, connecting whatever the session asks for
    meanwhile (requests resent after a lost connection, status queries).
    *done* depends only on the objects in *watch* (empty: on anything).

    The runtime's wait returns early when a link ends, which is when the
    session may start wanting a connection.
    """
    while True:
        if session.wants_connection:
            connect_wanted(runtime, session, deadline, failures)
        if runtime.wait(done, deadline, watch):
            return True
        if deadline is not None and runtime.now() >= deadline:
            return done()
        if not session.wants_connection and not session.connections:
            return done()  # nothing left to wait on
