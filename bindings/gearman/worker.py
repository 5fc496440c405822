"""The sync :class:`GearmanWorker`: python-gearman 2.0.2's worker on Python 3.

:class:`gearman_proto.WorkerSession` decides registrations, grabs, timers
and what a job's outcome sends; the kernel (:mod:`gearman._worker_kernel`)
turns jobs into :class:`GearmanJob` objects and encodes replies.  This
module is the loop: connect what the session asks for, wait until a job
arrives or a timer is due, run the task functions, call the hooks.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import gearman_proto as proto

from . import errors
from ._blocking import BlockingRuntime
from ._runtime import RuntimeFactory
from ._sync import connect, deadline_after
from ._worker_kernel import ExcInfo, WorkerKernel
from .connection import GearmanConnection
from .connection_manager import GearmanConnectionManager
from .constants import LIVENESS_INTERVAL, LIVENESS_TIMEOUT, POLL_TIMEOUT_IN_SECONDS

# python-gearman 2.0.2 had these in this module, and code imports them from here.
from .errors import (
    ConnectionError,  # noqa: A004  (python-gearman's name)
    InvalidWorkerState,
    ServerUnavailable,
)
from .job import GearmanJob

if TYPE_CHECKING:  # the type only: the runtimes do the TLS
    import ssl

__all__ = [
    "POLL_TIMEOUT_IN_SECONDS",
    "ConnectionError",
    "GearmanWorker",
    "InvalidWorkerState",
    "ServerUnavailable",
]

logger = logging.getLogger("gearman.worker")


Task = Callable[["GearmanWorker", GearmanJob], Any]


class GearmanWorker(GearmanConnectionManager):
    """Registers task functions and runs the jobs gearmand hands out.

    Args:
        host_list: servers (see :class:`gearman.GearmanClient`); the worker
            registers on every one and keeps serving the live ones while
            others are down, reconnecting with back-off.
        connect_timeout: seconds allowed for each TCP connect.
        keepalive: enable TCP keepalive on every connection.
        send_exceptions: report a task's exception with WORK_EXCEPTION
            (carrying the formatted exception) instead of WORK_FAIL.
        epoch_poll_interval: how often sleeping connections grab anyway, so
            SUBMIT_JOB_EPOCH jobs that come due are found (None: never).
        liveness_interval: seconds of quiet on a connection after which the
            worker sends it an ECHO (None: never), so a server that stopped
            answering without closing (frozen, or behind a middlebox that
            black-holes the link) is noticed even while the worker sleeps.
        liveness_timeout: seconds the answer may take; then the connection
            is given up and reconnected like any lost one.
        max_jobs: jobs run at once over all servers, on runtimes that run
            jobs concurrently (``gearman.gevent``: a greenlet each); the
            worker asks for a job only when it has room for one.  The
            blocking runtime runs jobs in the loop's thread, one at a time,
            so it takes 1 only (more would hold jobs it cannot run:
            :class:`gearman.errors.InvalidWorkerState`).
        reducer_info: ask for jobs with GRAB_JOB_ALL, so ``job.reducer``
            names a map/reduce job's reducer; gearmand only (other servers,
            such as gear's, never answer it).  By default the worker asks
            with GRAB_JOB_UNIQ, which every server knows, and
            ``job.reducer`` is None.
        ssl_context, server_hostname: TLS on every connection, as for
            :class:`gearman.GearmanClient`; a server whose handshake fails
            is retried with back-off like one that is down (each failure
            is logged with its reason), never in plaintext.
    """

    _misuse = errors.InvalidWorkerState

    #: the I/O runtime (blocking sockets; ``gearman.gevent`` swaps in its own).
    runtime_factory: ClassVar[RuntimeFactory] = BlockingRuntime

    def __init__(
        self,
        host_list: Any = None,
        *,
        connect_timeout: float | None = 5.0,
        keepalive: bool = True,
        send_exceptions: bool = False,
        epoch_poll_interval: float | None = None,
        liveness_interval: float | None = LIVENESS_INTERVAL,
        liveness_timeout: float = LIVENESS_TIMEOUT,
        max_jobs: int = 1,
        reducer_info: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(host_list, ssl_context=ssl_context, server_hostname=server_hostname)
        slots = type(self).runtime_factory.job_slots
        if slots is not None and max_jobs > slots:
            raise errors.InvalidWorkerState(
                f"max_jobs={max_jobs}: this runtime runs {slots} job at a time "
                "(gearman.gevent, gearman.trio and gearman.asyncio run several)"
            )
        self.max_jobs = max_jobs
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.send_exceptions = send_exceptions
        self.epoch_poll_interval = epoch_poll_interval
        self.reducer_info = reducer_info
        self.worker_abilities: dict[str | bytes, Task] = {}
        self.worker_client_id: str | bytes | None = None
        self._kernel = WorkerKernel(
            self.servers,
            owner=self,
            connection_for=self._connection_for,
            send_exceptions=send_exceptions,
            epoch_poll_interval=epoch_poll_interval,
            liveness_interval=liveness_interval,
            liveness_timeout=liveness_timeout,
            max_jobs=max_jobs,
            reducer_info=reducer_info,
        )
        self._session = self._kernel.session
        self._io = type(self).runtime_factory(
            self._kernel.receive,
            shared=False,
            keepalive=keepalive,
            connect_timeout=connect_timeout,
            tls=self._tls,
        )
        self._kernel.now = self._io.now
        self._continue = True
        self._working = False

    # ---------------------------------------------------------- abilities

    def register_task(
        self, task: str | bytes, callback_function: Task, timeout: float | None = None
    ) -> str | bytes:
        """Run *callback_function(worker, job)* for jobs of *task*.

        *task* may be ``str`` (UTF-8) or ``bytes``; jobs report it the way it
        was registered.  *timeout* (seconds) registers with CAN_DO_TIMEOUT:
        gearmand re-queues a job this worker holds longer than that.  Only
        the change is sent to the servers.
        """
        self._kernel.register(task, timeout)
        self.worker_abilities[task] = callback_function
        self._io.flush()
        return task

    def unregister_task(self, task: str | bytes) -> str | bytes:
        """Stop taking jobs of *task* (CANT_DO)."""
        registered = self._kernel.unregister(task)
        self.worker_abilities.pop(registered, None)
        self._io.flush()
        return task

    def set_client_id(self, client_id: str | bytes) -> str | bytes:
        """Label this worker's connections in the admin ``workers`` list."""
        self._kernel.set_client_id(client_id)
        self.worker_client_id = client_id
        self._io.flush()
        return client_id

    # ----------------------------------------------------------- the loop

    def work(self, poll_timeout: float | None = POLL_TIMEOUT_IN_SECONDS) -> None:
        """Serve jobs until :meth:`after_poll` or :meth:`after_job` returns False.

        :meth:`after_poll` is called once before the first wait and after
        every wait, which lasts at most *poll_timeout* seconds (and ends
        early when a job arrives, or a reconnect or epoch wake-up is due).
        Servers that are down are retried with back-off; the loop never
        gives up on them.
        """
        self._kernel.start()
        self._continue = True
        self._working = True
        keep_going = self.after_poll(False)
        self._continue = self._continue and bool(keep_going)  # stop() meanwhile
        io = self._io
        session = self._session
        jobs = self._kernel.jobs
        try:
            if session.tick(io.now()):  # schedules the timers, asks for the first connections
                self._connect(deadline_after(io, poll_timeout))
            while self._continue:
                until, reconnect, connect_by, unresponsive = self._kernel.next_wait(poll_timeout)
                if unresponsive:
                    for server in unresponsive:
                        io.close(server)  # the session reconnects it next turn
                    continue
                if reconnect:
                    self._connect(connect_by)
                activity = io.wait(self._has_news, until)
                if jobs:
                    self._run_jobs()
                if self._continue:
                    keep_going = self.after_poll(activity)
                    self._continue = self._continue and bool(keep_going)  # stop() meanwhile
            session.accepting = False  # grab no more ...
            self._io.flush()
            while session.held_jobs:  # ... but finish the jobs in hand
                io.wait(self._has_jobs_or_none_held, None)
                self._run_jobs()
        finally:
            self._working = False
            self.shutdown()  # also when a hook raised or the greenlet was killed

    def establish_worker_connections(self) -> list[GearmanConnection]:
        """Connect to every server that has no connection and is out of back-off.

        A new connection is registered at once (client id and abilities
        sent).  Returns the connections (of ``connection_list``) up now.
        """
        self._connect(None)
        return self._live_connections()

    def _connect(self, deadline: float | None) -> None:
        """:meth:`establish_worker_connections`, every connect ending by *deadline*."""
        io = self._io
        session = self._session
        for server in session.missing_servers(io.now()):
            connect(io, session, server, deadline)
        self._io.flush()

    def after_poll(self, any_activity: bool) -> bool:
        """Override: called around every wait; return False to leave :meth:`work`."""
        return True

    def after_job(self) -> bool:
        """Override: called after every job; return False to leave :meth:`work`."""
        return True

    def shutdown(self) -> None:
        """Close every connection (held jobs go back to the servers' queues).

        Called while :meth:`work` runs (from a job, a hook, another thread or
        greenlet, or a signal handler such as SIGTERM's), it makes
        :meth:`work` return as :meth:`stop` does, and :meth:`work` closes
        the connections on its way out.  It only sets a flag and wakes the
        loop then, which is safe from a signal handler.
        """
        if self._working:
            self._continue = False
            self._io.wake()
            return
        self._io.close_all()

    def has_job_lock(self) -> bool:
        """Whether the worker holds a job right now."""
        return self._session.held_jobs > 0

    # -------------------------------------------------------- job hooks

    def on_job_execute(self, current_job: GearmanJob) -> bool:
        """Run the task's callback; route its result or exception."""
        try:
            function = self.worker_abilities[current_job.task]
            job_result = function(self, current_job)
        except Exception:
            return self.on_job_exception(current_job, sys.exc_info())  # type: ignore[arg-type]
        return self.on_job_complete(current_job, job_result)

    def on_job_exception(self, current_job: GearmanJob, exc_info: ExcInfo) -> bool:
        """Log the traceback and report the failure (WORK_EXCEPTION with
        ``send_exceptions``, else WORK_FAIL); returns False."""
        self._kernel.raised(current_job, exc_info)
        self._io.flush()
        return False

    def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
        """Send the result (``None`` becomes an empty result); returns True."""
        self._kernel.returned(current_job, job_result)
        self._io.flush()
        return True

    # ------------------------------------------------------- job replies

    def send_job_complete(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with *data* (encoded with ``data_encoder``)."""
        self._reply(current_job, self._session.complete, self._kernel.encode(data))

    def send_job_failure(self, current_job: GearmanJob, poll_timeout: float | None = None) -> None:
        """End *current_job* as failed (WORK_FAIL)."""
        self._reply(current_job, self._session.fail)

    def send_job_exception(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with an exception payload (WORK_EXCEPTION only)."""
        self._reply(current_job, self._session.fail, self._kernel.encode(data))

    def send_job_data(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send partial data for *current_job* (WORK_DATA), now."""
        self._reply(current_job, self._session.data, self._kernel.encode(data))

    def send_job_warning(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send a warning for *current_job* (WORK_WARNING), now."""
        self._reply(current_job, self._session.warning, self._kernel.encode(data))

    def send_job_status(
        self,
        current_job: GearmanJob,
        numerator: int,
        denominator: int,
        poll_timeout: float | None = None,
    ) -> None:
        """Send progress *numerator*/*denominator* for *current_job* (WORK_STATUS), now.

        Both numbers are ints from 0 to 2**32 - 1, what gearmand stores: a
        float or bool raises :class:`gearman.errors.InvalidWorkerType`, a
        number out of range :class:`gearman.errors.InvalidWorkerValue`,
        before anything is sent.
        """
        self._reply(current_job, self._session.status, numerator, denominator)

    # ---------------------------------------- python-gearman's poll loop

    def _connect_server(self, server: proto.ServerAddress, deadline: float | None) -> None:
        connect(self._io, self._session, server, deadline)

    def _core_connection(self, server: proto.ServerAddress) -> proto.WorkerConnection | None:
        return self._session.connections.get(server)

    def _poll(self, done: Callable[[], bool], deadline: float | None) -> None:
        # Polling is working: jobs are taken, and run here, as in work().
        self._kernel.start()
        self._io.wait(lambda: done() or self._has_news(), deadline)
        if self._kernel.jobs:
            self._run_jobs()

    # ---------------------------------------------------------- internals

    def _reply(self, job: GearmanJob, send: Callable[..., bool], *arguments: Any) -> None:
        if self._kernel.reply(job, send, *arguments):
            self._io.flush()

    def _has_news(self) -> bool:
        return bool(self._kernel.jobs) or not self._continue

    def _has_jobs_or_none_held(self) -> bool:
        return bool(self._kernel.jobs) or not self._session.held_jobs

    def _run_jobs(self) -> None:
        jobs = self._kernel.jobs
        while jobs:
            job = jobs.popleft()
            self._io.run_job(self._run_one, job)
            if not self._continue:
                return

    def _run_one(self, job: GearmanJob) -> None:
        try:
            self.on_job_execute(job)
        except BaseException:
            # A hook raised, or the greenlet was killed: the server must not
            # keep the job waiting for an answer nobody will send.
            if self._kernel.abandoned(job):
                self._io.flush()
            raise
        finally:
            if not self._continue:
                self._io.wake()  # a job ended: the graceful stop may be over
        if not self.after_job():
            self.stop()

    def stop(self) -> None:
        """Leave :meth:`work` gracefully: finish the jobs in hand, grab no more.

        For a job, a hook or another greenlet; :meth:`after_poll` or
        :meth:`after_job` returning False does the same.
        """
        self._continue = False
        self._session.accepting = False
        self._io.flush()
        self._io.wake()

    def __enter__(self) -> GearmanWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

