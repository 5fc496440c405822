"""The blocking :class:`GearmanWorker`: python-gearman 2.0.2's worker on Python 3.

One selector loop serves every server: :class:`gearman_proto.WorkerSession`
decides registrations and grabs (it holds one job at a time across all
servers), this module connects, reads, writes and calls the task functions.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

import gearman_proto as proto

from . import errors
from ._blocking import Link, Pump, open_socket
from ._common import name_bytes, text
from .connection_manager import GearmanConnectionManager
from .job import GearmanJob

__all__ = ["POLL_TIMEOUT_IN_SECONDS", "GearmanWorker"]

logger = logging.getLogger("gearman.worker")

POLL_TIMEOUT_IN_SECONDS = 60.0

Task = Callable[["GearmanWorker", GearmanJob], Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


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
    """

    def __init__(
        self,
        host_list: Any = None,
        *,
        connect_timeout: float | None = 5.0,
        keepalive: bool = True,
        send_exceptions: bool = False,
        epoch_poll_interval: float | None = None,
    ) -> None:
        super().__init__(host_list)
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.send_exceptions = send_exceptions
        self.epoch_poll_interval = epoch_poll_interval
        self.worker_abilities: dict[str | bytes, Task] = {}
        self.worker_client_id: str | bytes | None = None
        self._names: dict[bytes, str | bytes] = {}
        # GRAB_JOB_ALL: jobs carry their unique id and, for reduce jobs, the reducer.
        self._session = proto.WorkerSession(self.servers, grab_mode=proto.GrabMode.ALL)
        self._pump = Pump(self._on_event)
        self._jobs: collections.deque[GearmanJob] = collections.deque()
        self._continue = True

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
        function = name_bytes(task, "task")
        self._names[function] = task
        self.worker_abilities[task] = callback_function
        milliseconds = None if timeout is None else max(1, round(timeout * 1000))
        self._session.register(function, milliseconds)
        self._pump.flush()
        return task

    def unregister_task(self, task: str | bytes) -> str | bytes:
        """Stop taking jobs of *task* (CANT_DO)."""
        function = name_bytes(task, "task")
        registered = self._names.pop(function, task)
        self.worker_abilities.pop(registered, None)
        self._session.unregister(function)
        self._pump.flush()
        return task

    def set_client_id(self, client_id: str | bytes) -> str | bytes:
        """Label this worker's connections in the admin ``workers`` list."""
        self.worker_client_id = client_id
        self._session.set_client_id(name_bytes(client_id, "client_id"))
        self._pump.flush()
        return client_id

    # ----------------------------------------------------------- the loop

    def work(self, poll_timeout: float | None = POLL_TIMEOUT_IN_SECONDS) -> None:
        """Serve jobs until :meth:`after_poll` or :meth:`after_job` returns False.

        :meth:`after_poll` is called once before the first wait and after
        every wait, which lasts at most *poll_timeout* seconds.  Servers that
        are down are retried with back-off; the loop never gives up on them.
        """
        self._continue = self.after_poll(False)
        next_wake = self._next_wake()
        pump = self._pump
        while self._continue:
            if next_wake is None and len(pump.links) == len(self.servers):
                timeout = poll_timeout  # the usual case: nothing to reconnect or wake
            else:
                if len(pump.links) < len(self.servers):
                    self.establish_worker_connections()
                if next_wake is not None and time.monotonic() >= next_wake:
                    self._session.wake()
                    next_wake = self._next_wake()
                timeout = self._poll_timeout(poll_timeout, next_wake)
            pump.flush()
            activity = pump.run_once(timeout)
            if self._jobs:
                self._run_jobs()
            if self._continue:
                self._continue = self.after_poll(activity)
        self._pump.flush()
        self.shutdown()

    def establish_worker_connections(self) -> list[Link]:
        """Connect to every server that has no connection and is out of back-off.

        A new connection is registered at once (client id and abilities sent).
        """
        connected = False
        for server in self._session.missing_servers(time.monotonic()):
            try:
                sock = open_socket(server, timeout=self.connect_timeout, keepalive=self.keepalive)
            except errors.ConnectionError as error:
                logger.warning("%s", error)
                self._session.connect_failed(server, time.monotonic())
                continue
            self._pump.add(Link(server, sock, self._session.connection_made(server)))
            connected = True
        if connected:
            self._pump.flush()
        return list(self._pump.links.values())

    def after_poll(self, any_activity: bool) -> bool:
        """Override: called around every wait; return False to leave :meth:`work`."""
        return True

    def after_job(self) -> bool:
        """Override: called after every job; return False to leave :meth:`work`."""
        return True

    def shutdown(self) -> None:
        """Close every connection (held jobs go back to the servers' queues)."""
        for server in list(self._pump.links):
            self._pump.remove(self._pump.links[server])
            self._session.connection_lost(server, time.monotonic())

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
        """Log the traceback and report the failure; returns False."""
        logger.error(
            "task %r (job %s) raised",
            current_job.task,
            current_job.handle,
            exc_info=exc_info,
        )
        if self.send_exceptions:
            formatted = "".join(traceback.format_exception_only(exc_info[0], exc_info[1]))
            self.send_job_exception(current_job, formatted.strip())
        else:
            self.send_job_failure(current_job)
        return False

    def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
        """Send the result (``None`` becomes an empty result); returns True."""
        self.send_job_complete(current_job, b"" if job_result is None else job_result)
        return True

    # ------------------------------------------------------- job replies

    def send_job_complete(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with *data* (encoded with ``data_encoder``)."""
        self._reply(current_job, self._session.complete, self.data_encoder.encode(data))

    def send_job_failure(self, current_job: GearmanJob, poll_timeout: float | None = None) -> None:
        """End *current_job* as failed (WORK_FAIL)."""
        self._reply(current_job, self._session.fail)

    def send_job_exception(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with an exception payload (WORK_EXCEPTION only)."""
        self._reply(current_job, self._session.fail, self.data_encoder.encode(data))

    def send_job_data(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send partial data for *current_job* (WORK_DATA), now."""
        self._reply(current_job, self._session.data, self.data_encoder.encode(data))

    def send_job_warning(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send a warning for *current_job* (WORK_WARNING), now."""
        self._reply(current_job, self._session.warning, self.data_encoder.encode(data))

    def send_job_status(
        self,
        current_job: GearmanJob,
        numerator: int,
        denominator: int,
        poll_timeout: float | None = None,
    ) -> None:
        """Send progress *numerator*/*denominator* for *current_job* (WORK_STATUS), now."""
        if not isinstance(numerator, (int, float)) or not isinstance(denominator, (int, float)):
            raise TypeError("numerator and denominator must be numbers")
        self._reply(current_job, self._session.status, int(numerator), int(denominator))

    # ---------------------------------------------------------- internals

    def _reply(self, job: GearmanJob, send: Callable[..., bool], *arguments: Any) -> None:
        server = job.connection
        if server is None or job.handle is None:
            raise errors.InvalidWorkerState(f"{job!r} was not assigned by a server")
        with_handle = job.handle.encode("utf-8", "surrogateescape")
        try:
            sent = send(server, with_handle, *arguments)
        except proto.LocalProtocolError as error:
            raise errors.InvalidWorkerState(str(error)) from error
        if sent:
            self._pump.flush()

    def _on_event(self, link: Link, event: proto.Event) -> None:
        for assigned in self._session.receive(link.server, event, time.monotonic()):
            data = self.data_encoder.decode(assigned.payload)
            task = self._names.get(assigned.function)
            if task is None:  # a function unregistered meanwhile
                task = text(assigned.function)
            unique = None if assigned.unique is None else text(assigned.unique)
            reducer = None if assigned.reducer is None else text(assigned.reducer)
            job = GearmanJob(link.server, text(assigned.handle), task, unique, data, reducer)
            self._jobs.append(job)

    def _run_jobs(self) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            if job.task not in self.worker_abilities:
                logger.warning("job %s for unregistered task %r: failing it", job.handle, job.task)
                self.send_job_failure(job)
                continue
            self.on_job_execute(job)
            if not self.after_job():
                self._continue = False
                self._session.accepting = False
                return

    def _next_wake(self) -> float | None:
        if self.epoch_poll_interval is None:
            return None
        return time.monotonic() + self.epoch_poll_interval

    def _poll_timeout(self, poll_timeout: float | None, next_wake: float | None) -> float | None:
        timeouts = [poll_timeout] if poll_timeout is not None else []
        if next_wake is not None:
            timeouts.append(max(0.0, next_wake - time.monotonic()))
        if len(self._pump.links) < len(self.servers):
            retry = self._session.pool.next_retry(
                [s for s in self.servers if s not in self._pump.links]
            )
            timeouts.append(max(0.05, retry - time.monotonic()))
        return min(timeouts, default=None)

    def __enter__(self) -> GearmanWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
