"""The async colour's one wait loop, shared by the trio and asyncio facades.

Owns: waiting for a condition over the core's state while opening the
connections the core asks for (:func:`wait_connecting`), as
:mod:`gearman._sync` does for the sync colour.  Decides nothing about the
protocol: the session says which server to connect, the runtime connects.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import gearman_proto as proto

from . import errors
from ._common import unreachable
from ._runtime import AsyncRuntime, Failures, deadline_after

__all__ = [
    "connect",
    "connect_first",
    "connect_wanted",
    "deadline_after",
    "maybe_await",
    "wait_connecting",
]

logger = logging.getLogger("gearman.io")

T = TypeVar("T")


async def maybe_await(value: T | Awaitable[T]) -> T:
    """*value*, awaited if it is awaitable: hooks and tasks may be sync or async."""
    if isinstance(value, Awaitable):
        return await value
    return value


async def connect(
    runtime: AsyncRuntime,
    session: proto.ClientSession | proto.WorkerSession,
    server: proto.ServerAddress,
    deadline: float | None,
    failures: Failures | None = None,
) -> None:
    """Connect *server* by *deadline* and tell the session how it went; a
    failure is logged, and kept in *failures* until the server connects."""
    try:
        await runtime.connect(server, functools.partial(session.connection_made, server), deadline)
    except errors.ConnectionError as error:
        logger.warning("%s", error)
        session.connect_failed(server, runtime.now())
        if failures is not None:
            failures[server] = error
    else:
        if failures:
            failures.pop(server, None)


async def connect_first(
    runtime: AsyncRuntime, session: proto.ClientSession, deadline: float | None
) -> proto.ServerAddress:
    """:func:`gearman._sync.connect_first` for the async runtimes."""
    candidates = session.candidates(runtime.now())
    for server in candidates:
        if not runtime.connected(server):
            await connect(runtime, session, server, deadline)
        if runtime.connected(server):
            return server
    raise unreachable(candidates)


async def connect_wanted(
    runtime: AsyncRuntime,
    session: proto.ClientSession,
    deadline: float | None,
    failures: Failures | None = None,
) -> None:
    """Open every connection the session waits for, in its order, by *deadline*."""
    while (server := session.connection_wanted(runtime.now())) is not None:
        await connect(runtime, session, server, deadline, failures)


async def wait_connecting(
    runtime: AsyncRuntime,
    session: proto.ClientSession,
    done: Callable[[], bool],
    deadline: float | None,
    watch: Collection[object] = (),
    failures: Failures | None = None,
) -> bool:
    """Wait until *done()* or *deadline*, connecting whatever the session asks for
    meanwhile (requests resent after a lost connection, status queries)."""
    while True:
        if session.wants_connection:
            await connect_wanted(runtime, session, deadline, failures)
        runtime.flush()
        if await runtime.wait(done, deadline, watch):
            return True
        if deadline is not None and runtime.now() >= deadline:
            return done()
        if not session.wants_connection and not session.connections:
            return done()  # nothing left to wait on


