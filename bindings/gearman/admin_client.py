"""The blocking :class:`GearmanAdminClient`: gearmand's admin text protocol.

Replies are parsed by :class:`gearman_proto.AdminConnection`; this module
sends one command on a runtime (blocking sockets by default), waits for its
reply (at most ``poll_timeout`` seconds, the connect included), checks that
the reply is of the kind the command has, and shapes it the way
python-gearman 2.0.2 returned it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import gearman_proto as proto

from . import errors
from ._admin_kernel import (
    ECHO_STRING,
    AdminKernel,
    argument,
    check_echo,
    check_reply,
    jobs_rows,
    maxqueue_arguments,
    priority_rows,
    request,
    status_rows,
    unique_rows,
    workers_rows,
)
from ._blocking import BlockingRuntime
from ._common import text
from ._runtime import RuntimeFactory
from ._shapes import JobRow, PriorityRow, StatusRow, UniqueRow, WorkerRow
from ._sync import deadline_after
from .connection_manager import GearmanConnectionManager
from .constants import DEFAULT_ADMIN_CLIENT_TIMEOUT

# python-gearman 2.0.2 had these in this module, and code imports them from here.
from .errors import (
    ConnectionError,  # noqa: A004  (python-gearman's name)
    InvalidAdminClientState,
    ServerUnavailable,
)

if TYPE_CHECKING:  # the type only: the runtimes do the TLS
    import ssl

__all__ = [
    "DEFAULT_ADMIN_CLIENT_TIMEOUT",
    "ECHO_STRING",
    "ConnectionError",
    "GearmanAdminClient",
    "InvalidAdminClientState",
    "ServerUnavailable",
]


_C = proto.AdminCommand

R = TypeVar("R", bound=proto.Event)


class GearmanAdminClient(GearmanConnectionManager):
    """Queries and controls one gearmand through its admin protocol.

    Args:
        host_list: one server (python-gearman takes a list of exactly one).
        poll_timeout: seconds to wait for each reply; running out raises
            :class:`gearman.errors.InvalidAdminClientState`.
        connect_timeout: seconds allowed for the TCP connect.
        ssl_context, server_hostname: TLS on the connection, as for
            :class:`gearman.GearmanClient`; a failed handshake raises
            :class:`gearman.errors.ServerUnavailable` from the
            :class:`gearman.errors.TlsError` that says why.

    An ``ERR`` reply raises :class:`gearman.errors.AdminCommandError`; a
    reply of the wrong kind raises :class:`gearman.errors.InvalidAdminClientState`.
    """

    _misuse = errors.InvalidAdminClientState

    #: the I/O runtime (blocking sockets; ``gearman.gevent`` swaps in its own).
    runtime_factory: ClassVar[RuntimeFactory] = BlockingRuntime

    def __init__(
        self,
        host_list: Any = None,
        poll_timeout: float | None = DEFAULT_ADMIN_CLIENT_TIMEOUT,
        *,
        connect_timeout: float | None = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(host_list, ssl_context=ssl_context, server_hostname=server_hostname)
        self.poll_timeout = poll_timeout
        self.connect_timeout = connect_timeout
        self._kernel = AdminKernel(self.servers)
        self._io = type(self).runtime_factory(
            self._kernel.receive,
            shared=False,
            keepalive=True,
            connect_timeout=connect_timeout,
            tls=self._tls,
        )

    # ------------------------------------------------------ python-gearman

    def ping_server(self) -> float:
        """Seconds an ECHO round trip takes."""
        payload = ECHO_STRING.encode()
        start = time.time()
        check_echo(self._ask(proto.EchoRequest(payload=payload)), payload)
        return time.time() - start

    def send_maxqueue(self, task: str | bytes, max_size: int | None) -> str:
        """Limit the queue of *task* to *max_size* jobs (None or 0: no limit); returns ``'OK'``."""
        self._command(_C.MAXQUEUE, *maxqueue_arguments(task, max_size))
        return "OK"

    def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to shut down.

        gearmand 1.1.20 has no such command and answers ``ERR``, which is
        raised as :class:`gearman.errors.AdminCommandError` (python-gearman
        hid it); stop gearmand with SIGTERM or SIGUSR1 instead.
        """
        self._command(_C.SHUTDOWN, *([b"graceful"] if graceful else []))

    def get_status(self) -> tuple[StatusRow, ...]:
        """Per function: ``{'task', 'queued', 'running', 'workers'}``.

        ``queued`` counts every job of the function, running ones included.
        """
        return status_rows(self._command(_C.STATUS, kind=proto.StatusReply))

    def get_workers(self) -> tuple[WorkerRow, ...]:
        """Per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}`` (all text)."""
        return workers_rows(self._command(_C.WORKERS, kind=proto.WorkersReply))

    def get_version(self) -> str:
        """The server's version, e.g. ``'1.1.20+ds'`` (without the ``OK`` prefix)."""
        reply = self._command(_C.VERSION, kind=proto.VersionReply)
        return text(reply.version)

    def get_pid(self) -> str:
        """The server's process id, as text."""
        reply = self._command(_C.GETPID, kind=proto.PidReply)
        return str(reply.pid)

    def cancel_job(self, handle: str | bytes) -> str:
        """Cancel the job *handle*; returns ``'OK'``, raises if it is unknown."""
        self._command(_C.CANCEL_JOB, argument(handle, "handle"))
        return "OK"

    def get_jobs(self) -> tuple[JobRow, ...]:
        """Per job: ``{'handle', 'retries', 'ignored', 'background'}`` (``show jobs``).

        The same columns also appear under python-gearman master's names, as
        ints: ``queued`` (= retries), ``canceled`` (= ignored) and
        ``enabled`` (= background).
        """
        return jobs_rows(self._command(_C.SHOW_JOBS, kind=proto.JobsReply))

    def get_unique_jobs(self) -> tuple[UniqueRow, ...]:
        """Per job: ``{'unique'}`` (``show unique jobs``; empty for jobs without one)."""
        return unique_rows(self._command(_C.SHOW_UNIQUE_JOBS, kind=proto.UniqueJobsReply))

    # ---------------------------------------------------------- additions

    def get_priority_status(self) -> tuple[PriorityRow, ...]:
        """Per function: ``{'task', 'high', 'normal', 'low', 'workers'}`` (queued jobs)."""
        return priority_rows(
            self._command(_C.PRIORITY_STATUS, kind=proto.PriorityStatusReply)
        )

    def get_verbose(self) -> str:
        """The server's log level, e.g. ``'ERROR'``."""
        reply = self._command(_C.VERBOSE, kind=proto.VerboseReply)
        return text(reply.level)

    def create_function(self, task: str | bytes) -> str:
        """Create an empty function entry; returns ``'OK'``."""
        self._command(_C.CREATE_FUNCTION, argument(task, "task"))
        return "OK"

    def drop_function(self, task: str | bytes) -> str:
        """Drop a function without workers or running jobs; returns ``'OK'``."""
        self._command(_C.DROP_FUNCTION, argument(task, "task"))
        return "OK"

    def shutdown(self) -> None:
        """Close the connection (the next call reconnects)."""
        self._io.close_all()

    def __enter__(self) -> GearmanAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # ---------------------------------------- python-gearman's poll loop

    def _connect_server(self, server: proto.ServerAddress, deadline: float | None) -> None:
        self._io.connect(server, self._kernel.new_connection, deadline)

    def _core_connection(self, server: proto.ServerAddress) -> proto.AdminConnection | None:
        return self._kernel.connection if self._io.connected(server) else None

    def _poll(self, done: Callable[[], bool], deadline: float | None) -> None:
        self._io.wait(done, deadline)

    # ---------------------------------------------------------- internals

    def _command(
        self,
        command: proto.AdminCommand,
        *arguments: bytes,
        kind: type[R] = proto.AdminOk,  # type: ignore[assignment]
    ) -> R:
        return check_reply(command, self._ask(request(command, *arguments)), kind)

    def _ask(self, question: proto.Event) -> proto.Event:
        io = self._io
        kernel = self._kernel
        server = kernel.server
        deadline = deadline_after(io, self.poll_timeout)
        if not io.connected(server):
            try:
                io.connect(server, kernel.new_connection, deadline)
            except errors.ConnectionError as error:
                raise errors.ServerUnavailable(str(error)) from error
        kernel.ask(question)
        answered = io.wait(lambda: kernel.answered() or not io.connected(server), deadline)
        if not answered:
            self.shutdown()  # a late reply would answer the next command: start afresh
        return kernel.reply(server, answered, self.poll_timeout)
