"""The admin client's kernel: python-gearman's admin shapes, no I/O.

Owns: building admin requests from python-gearman's arguments, checking
that a reply is of the kind its command has (an ``ERR`` reply raises
:class:`AdminCommandError`), and turning replies into the tuples of dicts
python-gearman 2.0.2 returned.  Shared by the sync and async admin facades;
imports no I/O library and never waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import gearman_proto as proto

from . import errors
from ._common import invalid_type, map_error, name_bytes, text
from ._shapes import JobRow, PriorityRow, StatusRow, UniqueRow, WorkerRow

__all__ = [
    "ECHO_STRING",
    "AdminKernel",
    "argument",
    "check_echo",
    "check_reply",
    "jobs_rows",
    "maxqueue_arguments",
    "priority_rows",
    "request",
    "status_rows",
    "unique_rows",
    "workers_rows",
]

ECHO_STRING = "ping? pong!"

R = TypeVar("R", bound=proto.Event)


def argument(value: str | bytes, what: str) -> bytes:
    """A function name or job handle as an admin argument (``str`` is UTF-8 encoded).

    Raises:
        InvalidAdminType: neither str nor bytes.
    """
    return name_bytes(value, what, errors.InvalidAdminClientState)


def request(command: proto.AdminCommand, *arguments: bytes) -> proto.AdminRequest:
    """The admin request, or :class:`InvalidAdminClientState` if it cannot be sent.

    The core refuses arguments that would split the command line or start a
    second command (a space, TAB, CR, LF or NUL): :class:`InvalidAdminValue`,
    before a connection is even opened.
    """
    try:
        return proto.AdminRequest(command=command, arguments=arguments)
    except proto.LocalProtocolError as error:
        raise map_error(error, errors.InvalidAdminClientState) from error


def check_reply(command: proto.AdminCommand, reply: proto.Event, kind: type[R]) -> R:
    """*reply* if it answers *command* as a *kind*; else the error it means."""
    if isinstance(reply, proto.AdminError):
        raise errors.AdminCommandError(text(reply.code), text(reply.message))
    if not isinstance(reply, kind):
        raise errors.InvalidAdminClientState(
            f"{command.value!r} was answered with {type(reply).__name__}, not {kind.__name__}"
        )
    return reply


def check_echo(reply: proto.Event, payload: bytes) -> None:
    """An ECHO must come back as it went."""
    if not isinstance(reply, proto.EchoReply) or reply.payload != payload:
        raise errors.InvalidAdminClientState(f"bad echo reply {reply!r}")


def maxqueue_arguments(task: str | bytes, max_size: int | None) -> list[bytes]:
    """``maxqueue`` arguments (no size, or 0: no limit).

    Raises:
        InvalidAdminType: *max_size* is not an int (or None).
    """
    arguments = [argument(task, "task")]
    if max_size is not None:
        if type(max_size) is not int:
            raise invalid_type(
                errors.InvalidAdminClientState,
                f"max_size must be an int or None, not {type(max_size).__name__}",
            )
        arguments.append(b"%d" % max_size)
    return arguments


def status_rows(reply: proto.StatusReply) -> tuple[StatusRow, ...]:
    """Per function: ``{'task', 'queued', 'running', 'workers'}``."""
    return tuple(
        {"task": text(f.function), "queued": f.total, "running": f.running, "workers": f.workers}
        for f in reply.functions
    )


def workers_rows(reply: proto.WorkersReply) -> tuple[WorkerRow, ...]:
    """Per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}`` (all text)."""
    return tuple(
        {
            "file_descriptor": text(w.fd),
            "ip": text(w.ip),
            "client_id": text(w.client_id),
            "tasks": tuple(text(f) for f in w.functions),
        }
        for w in reply.workers
    )


def jobs_rows(reply: proto.JobsReply) -> tuple[JobRow, ...]:
    """Per job: 2.0.2's ``{'handle', 'retries', 'ignored', 'background'}``, and
    master's ``queued``, ``canceled``, ``enabled`` for the same columns."""
    return tuple(
        {
            "handle": text(j.handle),
            "retries": j.retries,
            "ignored": j.ignored,
            "background": j.background,
            "queued": j.retries,
            "canceled": int(j.ignored),
            "enabled": int(j.background),
        }
        for j in reply.jobs
    )


def unique_rows(reply: proto.UniqueJobsReply) -> tuple[UniqueRow, ...]:
    """Per job: ``{'unique'}``."""
    return tuple({"unique": text(u)} for u in reply.uniques)


def priority_rows(reply: proto.PriorityStatusReply) -> tuple[PriorityRow, ...]:
    """Per function: ``{'task', 'high', 'normal', 'low', 'workers'}``."""
    return tuple(
        {
            "task": text(f.function),
            "high": f.high,
            "normal": f.normal,
            "low": f.low,
            "workers": f.workers,
        }
        for f in reply.functions
    )


class AdminKernel:
    """One admin connection's replies, in order, for one command at a time.

    The facade connects with :meth:`new_connection` as the factory, calls
    :meth:`ask`, waits until :meth:`answered`, then takes :meth:`reply`.

    Args:
        servers: the parsed host list: one server, or none (python-gearman
            accepted an empty list; every command then raises).

    Raises:
        InvalidAdminClientState: more than one server.
    """

    def __init__(self, servers: Sequence[proto.ServerAddress]) -> None:
        if len(servers) > 1:
            raise errors.InvalidAdminClientState("an admin client talks to exactly one server")
        self._server = servers[0] if servers else None
        self.connection = proto.AdminConnection()
        self._replies: list[proto.Event] = []

    @property
    def server(self) -> proto.ServerAddress:
        """The server commands go to.

        Raises:
            ServerUnavailable: the host list was empty.
        """
        if self._server is None:
            raise errors.ServerUnavailable("the admin client's host list names no server")
        return self._server

    def new_connection(self) -> proto.AdminConnection:
        """The connection of a new link (what an old one still owed is dropped)."""
        self.connection = proto.AdminConnection()
        self._replies.clear()
        return self.connection

    def receive(self, server: proto.ServerAddress, event: proto.Event) -> None:
        """The runtime's sink: a reply (the end of the link is not one)."""
        if not isinstance(event, proto.ConnectionClosed):
            self._replies.append(event)

    def ask(self, question: proto.Event) -> None:
        """Queue *question* on the connection."""
        self.connection.queue(question)

    def answered(self) -> bool:
        """Whether a reply is there to take."""
        return bool(self._replies)

    def reply(
        self, server: proto.ServerAddress, answered: bool, timeout: float | None
    ) -> proto.Event:
        """The reply to the question asked, after a wait that ended *answered* or not.

        Raises:
            InvalidAdminClientState: no reply within *timeout* (the facade
                must then drop the link: the late reply would answer the
                next command), the server closed the connection, or it sent
                something that breaks the protocol (a reply too long, never
                ending, or of the wrong kind), with the core's message.
        """
        if not answered:
            raise errors.InvalidAdminClientState(f"no reply from {server} within {timeout} s")
        if not self._replies:
            broken = self.connection.remote_error
            if broken is not None:
                raise errors.InvalidAdminClientState(
                    f"{server} broke the admin protocol: {broken}"
                ) from broken
            raise errors.InvalidAdminClientState("the server closed the admin connection")
        return self._replies.pop(0)
