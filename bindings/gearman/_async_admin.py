"""The async :class:`AsyncGearmanAdminClient`: gearmand's admin protocol with ``await``.

Replies are parsed by :class:`gearman_proto.AdminConnection`, checked and
shaped by the kernel (:mod:`gearman._admin_kernel`); this module sends one
command at a time on an async runtime and waits for its reply (at most
``poll_timeout`` seconds, the connect included).  Concurrent commands from
several tasks take turns, so every reply answers the command it belongs to.
"""

from __future__ import annotations

import time
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
from ._common import text
from ._runtime import AsyncRuntimeFactory, deadline_after
from ._shapes import JobRow, PriorityRow, StatusRow, UniqueRow, WorkerRow
from .connection_manager import AsyncGearmanConnectionManager
from .constants import DEFAULT_ADMIN_CLIENT_TIMEOUT

if TYPE_CHECKING:  # the type only: the runtime does the TLS
    import ssl

__all__ = ["AsyncGearmanAdminClient"]

_C = proto.AdminCommand

R = TypeVar("R", bound=proto.Event)


class AsyncGearmanAdminClient(AsyncGearmanConnectionManager):
    """Queries and controls one gearmand; see :class:`gearman.GearmanAdminClient`.

    Every command is a coroutine; *open_stream* opens the link's stream
    (the runtime's default: TCP; not with TLS: ``ssl_context`` and
    ``server_hostname`` as for the sync admin client).
    """

    _misuse = errors.InvalidAdminClientState

    runtime_factory: ClassVar[AsyncRuntimeFactory]

    def __init__(
        self,
        host_list: Any = None,
        poll_timeout: float | None = DEFAULT_ADMIN_CLIENT_TIMEOUT,
        *,
        connect_timeout: float | None = 5.0,
        open_stream: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(
            host_list,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            open_stream=open_stream,
        )
        self.poll_timeout = poll_timeout
        self.connect_timeout = connect_timeout
        self._kernel = AdminKernel(self.servers)
        self._io = type(self).runtime_factory(
            self._kernel.receive,
            keepalive=True,
            connect_timeout=connect_timeout,
            open_stream=open_stream,
            tls=self._tls,
        )
        self._turn: Any = None  # the runtime's lock, made on first use

    # ------------------------------------------------------ python-gearman

    async def ping_server(self) -> float:
        """Seconds an ECHO round trip takes."""
        payload = ECHO_STRING.encode()
        start = time.time()
        check_echo(await self._ask(proto.EchoRequest(payload=payload)), payload)
        return time.time() - start

    async def send_maxqueue(self, task: str | bytes, max_size: int | None) -> str:
        """Limit the queue of *task* to *max_size* jobs (None or 0: no limit)."""
        await self._command(_C.MAXQUEUE, *maxqueue_arguments(task, max_size))
        return "OK"

    async def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to shut down (gearmand 1.1.20 answers ``ERR``)."""
        await self._command(_C.SHUTDOWN, *([b"graceful"] if graceful else []))

    async def get_status(self) -> tuple[StatusRow, ...]:
        """Per function: ``{'task', 'queued', 'running', 'workers'}``."""
        return status_rows(await self._command(_C.STATUS, kind=proto.StatusReply))

    async def get_workers(self) -> tuple[WorkerRow, ...]:
        """Per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}``."""
        return workers_rows(await self._command(_C.WORKERS, kind=proto.WorkersReply))

    async def get_version(self) -> str:
        """The server's version, e.g. ``'1.1.20+ds'``."""
        return text((await self._command(_C.VERSION, kind=proto.VersionReply)).version)

    async def get_pid(self) -> str:
        """The server's process id, as text."""
        return str((await self._command(_C.GETPID, kind=proto.PidReply)).pid)

    async def cancel_job(self, handle: str | bytes) -> str:
        """Cancel the job *handle*; returns ``'OK'``, raises if it is unknown."""
        await self._command(_C.CANCEL_JOB, argument(handle, "handle"))
        return "OK"

    async def get_jobs(self) -> tuple[JobRow, ...]:
        """Per job: ``{'handle', 'retries', 'ignored', 'background', ...}``."""
        return jobs_rows(await self._command(_C.SHOW_JOBS, kind=proto.JobsReply))

    async def get_unique_jobs(self) -> tuple[UniqueRow, ...]:
        """Per job: ``{'unique'}``."""
        return unique_rows(await self._command(_C.SHOW_UNIQUE_JOBS, kind=proto.UniqueJobsReply))

    async def get_priority_status(self) -> tuple[PriorityRow, ...]:
        """Per function: ``{'task', 'high', 'normal', 'low', 'workers'}``."""
        reply = await self._command(_C.PRIORITY_STATUS, kind=proto.PriorityStatusReply)
        return priority_rows(reply)

    async def get_verbose(self) -> str:
        """The server's log level, e.g. ``'ERROR'``."""
        return text((await self._command(_C.VERBOSE, kind=proto.VerboseReply)).level)

    async def create_function(self, task: str | bytes) -> str:
        """Create an empty function entry; returns ``'OK'``."""
        await self._command(_C.CREATE_FUNCTION, argument(task, "task"))
        return "OK"

    async def drop_function(self, task: str | bytes) -> str:
        """Drop a function without workers or running jobs; returns ``'OK'``."""
        await self._command(_C.DROP_FUNCTION, argument(task, "task"))
        return "OK"

    async def shutdown(self) -> None:
        """Close the connection (the next call reconnects)."""
        await self._io.aclose(0)

    async def aclose(self) -> None:
        """Close the connection."""
        await self.shutdown()

    async def __aenter__(self) -> AsyncGearmanAdminClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------- internals

    async def _command(
        self,
        command: proto.AdminCommand,
        *arguments: bytes,
        kind: type[R] = proto.AdminOk,  # type: ignore[assignment]
    ) -> R:
        return check_reply(command, await self._ask(request(command, *arguments)), kind)

    async def _ask(self, question: proto.Event) -> proto.Event:
        io = self._io
        if self._turn is None:
            self._turn = io.lock()
        async with self._turn:  # one command in flight: replies carry no id
            kernel = self._kernel
            server = kernel.server
            deadline = deadline_after(io, self.poll_timeout)
            if not io.connected(server):
                try:
                    await io.connect(server, kernel.new_connection, deadline)
                except errors.ConnectionError as error:
                    raise errors.ServerUnavailable(str(error)) from error
            kernel.ask(question)
            io.flush()
            answered = False
            try:
                answered = await io.wait(
                    lambda: kernel.answered() or not io.connected(server), deadline
                )
            finally:
                if not answered:  # timed out or cancelled: a late reply would
                    io.close(server)  # answer the next command; start afresh
            return kernel.reply(server, answered, self.poll_timeout)
