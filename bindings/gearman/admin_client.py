"""The blocking :class:`GearmanAdminClient`: gearmand's admin text protocol.

Replies are parsed by :class:`gearman_proto.AdminConnection`; this module
sends one command, waits for its reply (at most ``poll_timeout`` seconds),
and shapes it the way python-gearman 2.0.2 returned it.
"""

from __future__ import annotations

import time
from typing import Any

import gearman_proto as proto

from . import errors
from ._blocking import Link, Pump, deadline_after, open_socket
from ._common import name_bytes, text
from .connection_manager import GearmanConnectionManager

__all__ = ["DEFAULT_ADMIN_CLIENT_TIMEOUT", "ECHO_STRING", "GearmanAdminClient"]

ECHO_STRING = "ping? pong!"
DEFAULT_ADMIN_CLIENT_TIMEOUT = 10.0

_C = proto.AdminCommand


class GearmanAdminClient(GearmanConnectionManager):
    """Queries and controls one gearmand through its admin protocol.

    Args:
        host_list: one server (python-gearman takes a list of exactly one).
        poll_timeout: seconds to wait for each reply; running out raises
            :class:`gearman.errors.InvalidAdminClientState`.
        connect_timeout: seconds allowed for the TCP connect.

    An ``ERR`` reply raises :class:`gearman.errors.AdminCommandError`.
    """

    def __init__(
        self,
        host_list: Any = None,
        poll_timeout: float | None = DEFAULT_ADMIN_CLIENT_TIMEOUT,
        *,
        connect_timeout: float | None = 5.0,
    ) -> None:
        super().__init__(host_list)
        if len(self.servers) != 1:
            raise errors.InvalidAdminClientState("an admin client talks to exactly one server")
        self.poll_timeout = poll_timeout
        self.connect_timeout = connect_timeout
        self._replies: list[proto.Event] = []
        self._pump = Pump(self._on_event)
        self._link: Link | None = None

    # ------------------------------------------------------ python-gearman

    def ping_server(self) -> float:
        """Seconds an ECHO round trip takes."""
        payload = ECHO_STRING.encode()
        start = time.time()
        reply = self._ask(proto.EchoRequest(payload=payload))
        if not isinstance(reply, proto.EchoReply) or reply.payload != payload:
            raise errors.InvalidAdminClientState(f"bad echo reply {reply!r}")
        return time.time() - start

    def send_maxqueue(self, task: str | bytes, max_size: int | None) -> str:
        """Limit the queue of *task* to *max_size* jobs (None or 0: no limit); returns ``'OK'``."""
        arguments = [name_bytes(task, "task")]
        if max_size is not None:
            arguments.append(b"%d" % int(max_size))
        self._command(_C.MAXQUEUE, *arguments)
        return "OK"

    def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to shut down.

        gearmand 1.1.20 has no such command and answers ``ERR``, which is
        raised as :class:`gearman.errors.AdminCommandError` (python-gearman
        hid it); stop gearmand with SIGTERM or SIGUSR1 instead.
        """
        self._command(_C.SHUTDOWN, *([b"graceful"] if graceful else []))

    def get_status(self) -> tuple[dict[str, Any], ...]:
        """Per function: ``{'task', 'queued', 'running', 'workers'}``.

        ``queued`` counts every job of the function, running ones included.
        """
        reply = self._command(_C.STATUS)
        assert isinstance(reply, proto.StatusReply)
        return tuple(
            {
                "task": text(f.function),
                "queued": f.total,
                "running": f.running,
                "workers": f.workers,
            }
            for f in reply.functions
        )

    def get_workers(self) -> tuple[dict[str, Any], ...]:
        """Per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}`` (all text)."""
        reply = self._command(_C.WORKERS)
        assert isinstance(reply, proto.WorkersReply)
        return tuple(
            {
                "file_descriptor": text(w.fd),
                "ip": text(w.ip),
                "client_id": text(w.client_id),
                "tasks": tuple(text(f) for f in w.functions),
            }
            for w in reply.workers
        )

    def get_version(self) -> str:
        """The server's version, e.g. ``'1.1.20+ds'`` (without the ``OK`` prefix)."""
        reply = self._command(_C.VERSION)
        assert isinstance(reply, proto.VersionReply)
        return text(reply.version)

    def get_pid(self) -> str:
        """The server's process id, as text."""
        reply = self._command(_C.GETPID)
        assert isinstance(reply, proto.PidReply)
        return str(reply.pid)

    def cancel_job(self, handle: str | bytes) -> str:
        """Cancel the job *handle*; returns ``'OK'``, raises if it is unknown."""
        self._command(_C.CANCEL_JOB, name_bytes(handle, "handle"))
        return "OK"

    def get_jobs(self) -> tuple[dict[str, Any], ...]:
        """Per job: ``{'handle', 'retries', 'ignored', 'background'}`` (``show jobs``).

        The same columns also appear under python-gearman master's names, as
        ints: ``queued`` (= retries), ``canceled`` (= ignored) and
        ``enabled`` (= background).
        """
        reply = self._command(_C.SHOW_JOBS)
        assert isinstance(reply, proto.JobsReply)
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

    def get_unique_jobs(self) -> tuple[dict[str, str], ...]:
        """Per job: ``{'unique'}`` (``show unique jobs``; empty for jobs without one)."""
        reply = self._command(_C.SHOW_UNIQUE_JOBS)
        assert isinstance(reply, proto.UniqueJobsReply)
        return tuple({"unique": text(u)} for u in reply.uniques)

    # ---------------------------------------------------------- additions

    def get_priority_status(self) -> tuple[dict[str, Any], ...]:
        """Per function: ``{'task', 'high', 'normal', 'low', 'workers'}`` (queued jobs)."""
        reply = self._command(_C.PRIORITY_STATUS)
        assert isinstance(reply, proto.PriorityStatusReply)
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

    def get_verbose(self) -> str:
        """The server's log level, e.g. ``'ERROR'``."""
        reply = self._command(_C.VERBOSE)
        assert isinstance(reply, proto.VerboseReply)
        return text(reply.level)

    def create_function(self, task: str | bytes) -> str:
        """Create an empty function entry; returns ``'OK'``."""
        self._command(_C.CREATE_FUNCTION, name_bytes(task, "task"))
        return "OK"

    def drop_function(self, task: str | bytes) -> str:
        """Drop a function without workers or running jobs; returns ``'OK'``."""
        self._command(_C.DROP_FUNCTION, name_bytes(task, "task"))
        return "OK"

    def shutdown(self) -> None:
        """Close the connection (the next call reconnects)."""
        if self._link is not None:
            self._pump.remove(self._link)
            self._link = None

    def __enter__(self) -> GearmanAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # ---------------------------------------------------------- internals

    def _command(self, command: proto.AdminCommand, *arguments: bytes) -> proto.Event:
        try:
            request = proto.AdminRequest(command=command, arguments=arguments)
        except proto.LocalProtocolError as error:
            raise errors.InvalidAdminClientState(str(error)) from error
        reply = self._ask(request)
        if isinstance(reply, proto.AdminError):
            raise errors.AdminCommandError(text(reply.code), text(reply.message))
        return reply

    def _ask(self, request: proto.Event) -> proto.Event:
        link = self._connect()
        link.connection.queue(request)
        deadline = deadline_after(self.poll_timeout)
        while not self._replies:
            self._pump.flush()
            if self._link is None:
                raise errors.InvalidAdminClientState("the server closed the admin connection")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                # The reply may still come and would then answer the next
                # command: start afresh instead.
                self.shutdown()
                raise errors.InvalidAdminClientState(
                    f"no reply from {link.server} within {self.poll_timeout} s"
                )
            self._pump.run_once(remaining)
        return self._replies.pop(0)

    def _connect(self) -> Link:
        if self._link is None:
            server = self.servers[0]
            try:
                sock = open_socket(server, timeout=self.connect_timeout)
            except errors.ConnectionError as error:
                raise errors.ServerUnavailable(str(error)) from error
            self._link = Link(server, sock, proto.AdminConnection())
            self._pump.add(self._link)
        return self._link

    def _on_event(self, link: Link, event: proto.Event) -> None:
        if isinstance(event, proto.ConnectionClosed):
            self._link = None
        else:
            self._replies.append(event)
