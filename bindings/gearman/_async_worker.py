"""The async :class:`AsyncGearmanWorker`: the sync worker's API with ``await``, N jobs at once.

:class:`gearman_proto.WorkerSession` decides registrations, grabs (only
with room: ``max_jobs``), timers and what a job's outcome sends; the kernel
(:mod:`gearman._worker_kernel`) makes :class:`GearmanJob` objects and
encodes replies.  This module is the loop on an async runtime: connect what
the session asks for, wait until a job arrives or a timer is due, start
each job as a task of the runtime's job group, call the hooks.

Task functions, :meth:`~AsyncGearmanWorker.after_poll` and
:meth:`~AsyncGearmanWorker.after_job` may be plain functions or coroutine
functions.  A plain task function runs in the event loop: if it blocks, it
blocks every job and the connections (run blocking work in a thread, e.g.
with ``trio.to_thread.run_sync`` or ``asyncio.to_thread``, from an async
task function).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from . import errors
from ._async import connect, deadline_after, maybe_await
from ._runtime import AsyncRuntimeFactory
from ._worker_kernel import ExcInfo, WorkerKernel
from .connection import GearmanConnection
from .connection_manager import AsyncGearmanConnectionManager
from .constants import LIVENESS_INTERVAL, LIVENESS_TIMEOUT, POLL_TIMEOUT_IN_SECONDS
from .job import GearmanJob

if TYPE_CHECKING:  # the type only: the runtime does the TLS
    import ssl

__all__ = ["AsyncGearmanWorker"]

logger = logging.getLogger("gearman.worker")

#: seconds a ``send_job_*`` call waits for its bytes to be written when it is
#: given no ``poll_timeout``: no call waits without a bound.
REPLY_TIMEOUT = POLL_TIMEOUT_IN_SECONDS

#: seconds a leaving worker lets its last replies (a WORK_FAIL for a
#: cancelled job, say) go out before it closes the connections.
CLOSE_GRACE = 1.0

Task = Callable[["AsyncGearmanWorker", GearmanJob], Any]


class AsyncGearmanWorker(AsyncGearmanConnectionManager):
    """Registers task functions and runs up to *max_jobs* jobs at once.

    Arguments as :class:`gearman.GearmanWorker`, plus:

    Args:
        max_jobs: jobs run at once over all servers; the worker asks for a
            job only when it has room for one.
        open_stream: how a link's stream is opened (the runtime's default:
            TCP; not with TLS: ``ssl_context``, as for the sync worker).

    Leaving :meth:`work` gracefully (:meth:`stop`, or a hook returning
    False) finishes the jobs in hand and grabs no more.  Cancelling
    :meth:`work` cancels the running jobs and reports each to the server
    as failed (WORK_FAIL) before the connections close.
    """

    _misuse = errors.InvalidWorkerState

    runtime_factory: ClassVar[AsyncRuntimeFactory]

    def __init__(
        self,
        host_list: Any = None,
        *,
        max_jobs: int = 1,
        connect_timeout: float | None = 5.0,
        keepalive: bool = True,
        send_exceptions: bool = False,
        epoch_poll_interval: float | None = None,
        liveness_interval: float | None = LIVENESS_INTERVAL,
        liveness_timeout: float = LIVENESS_TIMEOUT,
        reducer_info: bool = False,
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
            keepalive=keepalive,
            connect_timeout=connect_timeout,
            open_stream=open_stream,
            tls=self._tls,
        )
        self._kernel.now = self._io.now
        self._continue = True
        self._leaving = False  # work() is ending: runners return once no job is held
        self._started = 0  # jobs started, for after_poll's any_activity

    # ---------------------------------------------------------- abilities

    def register_task(
        self, task: str | bytes, callback_function: Task, timeout: float | None = None
    ) -> str | bytes:
        """Run *callback_function(worker, job)* (plain or async) for jobs of *task*;
        see :meth:`gearman.GearmanWorker.register_task`."""
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

    async def work(self, poll_timeout: float | None = POLL_TIMEOUT_IN_SECONDS) -> None:
        """Serve jobs until :meth:`stop`, or until :meth:`after_poll` or
        :meth:`after_job` returns False; see :meth:`gearman.GearmanWorker.work`.

        ``max_jobs`` runner tasks take the jobs as they arrive, so up to
        that many run at once.  :meth:`after_poll` is called once before
        the first wait and after every wait, which lasts *poll_timeout*
        seconds or until a reconnect or epoch wake-up is due; its
        ``any_activity`` says whether a job started meanwhile.  Leaving
        finishes the jobs in hand (running any a server assigned meanwhile)
        and closes the connections.
        """
        self._kernel.start()
        self._continue = True
        keep_going = bool(await maybe_await(self.after_poll(False)))
        self._continue = self._continue and keep_going  # stop() meanwhile
        io = self._io
        session = self._session
        self._leaving = False
        try:
            async with io.job_group():
                for _ in range(self.max_jobs):
                    io.run_job(self._runner, None)
                if session.tick(io.now()):  # schedules the timers, asks for connections
                    await self._connect(deadline_after(io, poll_timeout))
                while self._continue:
                    until, reconnect, connect_by, unresponsive = self._kernel.next_wait(
                        poll_timeout
                    )
                    if unresponsive:
                        for server in unresponsive:
                            io.close(server)  # the session reconnects it next turn
                        continue
                    if reconnect:
                        await self._connect(connect_by)
                    io.flush()  # what the timers queued (epoch wake-up grabs)
                    started = self._started
                    await io.wait(self._stopping, until)
                    if self._continue:
                        activity = self._started != started
                        keep_going = bool(await maybe_await(self.after_poll(activity)))
                        self._continue = self._continue and keep_going  # stop() meanwhile
                session.accepting = False  # grab no more: the runners finish the
                io.flush()  # jobs in hand, and any assigned meanwhile, then return
                self._leaving = True
                io.wake()
        finally:
            self._leaving = True
            await io.aclose(CLOSE_GRACE)

    def _stopping(self) -> bool:
        return not self._continue

    async def _runner(self, _: None) -> None:
        """One of the ``max_jobs`` tasks that run jobs, one after another."""
        jobs = self._kernel.jobs
        session = self._session
        wait = self._io.wait
        claimed: list[GearmanJob] = []

        def runnable() -> bool:
            # The condition claims the job it found, so that one job
            # arriving wakes one idle runner, not all of them; it claims
            # one job at most, however often it is asked.
            if claimed:
                return True
            if jobs:
                claimed.append(jobs.popleft())
                return True
            return self._leaving and not session.held_jobs

        while True:
            try:
                await wait(runnable, None)  # also returns when a link ends
            except BaseException:
                for job in claimed:  # claimed, then cancelled before it started
                    self._abandon(job)
                raise
            if claimed:
                self._started += 1
                await self._run_one(claimed.pop())
            elif self._leaving and not session.held_jobs:
                return

    async def _run_one(self, job: GearmanJob) -> None:
        """Run one job through the hooks; the runner survives what they raise.

        A hook that raises (an ``on_job_complete`` override, a result the
        encoder refuses) is logged and the job reported failed; the runner
        then takes the next job.  Cancellation reports the job failed too,
        and goes on.
        """
        try:
            await self.on_job_execute(job)
        except Exception:
            logger.exception(
                "job %s of %r: a hook raised, reporting it failed", job.handle, job.task
            )
            self._abandon(job)
        except BaseException:
            self._abandon(job)  # cancelled: no client may wait for a job nobody runs
            raise
        finally:
            if self._leaving:
                self._io.wake()  # a job ended: the graceful stop may be over
        if not await maybe_await(self.after_job()):
            self.stop()

    def _abandon(self, job: GearmanJob) -> None:
        if self._kernel.abandoned(job):
            self._io.flush()

    def stop(self) -> None:
        """Leave :meth:`work` gracefully: finish the jobs in hand, grab no more."""
        self._continue = False
        self._session.accepting = False
        self._io.flush()
        self._io.wake()

    async def establish_worker_connections(self) -> list[GearmanConnection]:
        """Connect to every server that has no connection and is out of back-off;
        returns the connections (of ``connection_list``) up now."""
        await self._connect(None)
        return self._live_connections()

    async def _connect(self, deadline: float | None) -> None:
        io = self._io
        session = self._session
        for server in session.missing_servers(io.now()):
            await connect(io, session, server, deadline)
        io.flush()

    def after_poll(self, any_activity: bool) -> Any:
        """Override (plain or async): called around every wait; False leaves :meth:`work`."""
        return True

    def after_job(self) -> Any:
        """Override (plain or async): called after every job; False leaves :meth:`work`."""
        return True

    async def shutdown(self) -> None:
        """Close every connection (held jobs go back to the servers' queues)."""
        await self._io.aclose(0)

    def has_job_lock(self) -> bool:
        """Whether the worker holds a job right now."""
        return self._session.held_jobs > 0

    # -------------------------------------------------------- job hooks

    async def on_job_execute(self, current_job: GearmanJob) -> bool:
        """Run the task's callback (awaited if async); route its result or exception."""
        try:
            function = self.worker_abilities[current_job.task]
            job_result = await maybe_await(function(self, current_job))
        except Exception:
            return await self.on_job_exception(current_job, sys.exc_info())  # type: ignore[arg-type]
        return await self.on_job_complete(current_job, job_result)

    async def on_job_exception(self, current_job: GearmanJob, exc_info: ExcInfo) -> bool:
        """Log the traceback and report the failure; returns False."""
        if self._kernel.raised(current_job, exc_info):
            self._io.flush()
        return False

    async def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
        """Send the result (``None`` becomes an empty result); returns True."""
        if self._kernel.returned(current_job, job_result):
            self._io.flush()
        return True

    # ------------------------------------------------------- job replies

    async def send_job_complete(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with *data* (encoded with ``data_encoder``)."""
        await self._reply(
            poll_timeout, current_job, self._session.complete, self._kernel.encode(data)
        )

    async def send_job_failure(
        self, current_job: GearmanJob, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* as failed (WORK_FAIL)."""
        await self._reply(poll_timeout, current_job, self._session.fail)

    async def send_job_exception(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """End *current_job* with an exception payload (WORK_EXCEPTION only)."""
        await self._reply(
            poll_timeout, current_job, self._session.fail, self._kernel.encode(data)
        )

    async def send_job_data(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send partial data for *current_job* (WORK_DATA); returns once written."""
        await self._reply(
            poll_timeout, current_job, self._session.data, self._kernel.encode(data)
        )

    async def send_job_warning(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send a warning for *current_job* (WORK_WARNING); returns once written."""
        await self._reply(
            poll_timeout, current_job, self._session.warning, self._kernel.encode(data)
        )

    async def send_job_status(
        self,
        current_job: GearmanJob,
        numerator: int,
        denominator: int,
        poll_timeout: float | None = None,
    ) -> None:
        """Send progress for *current_job* (WORK_STATUS); returns once written.

        Both numbers are ints from 0 to 2**32 - 1, what gearmand stores: a
        float or bool raises :class:`gearman.errors.InvalidWorkerType`, a
        number out of range :class:`gearman.errors.InvalidWorkerValue`,
        before anything is sent.
        """
        await self._reply(
            poll_timeout,
            current_job,
            self._session.status,
            numerator,
            denominator,
        )

    async def _reply(
        self,
        poll_timeout: float | None,
        job: GearmanJob,
        send: Callable[..., bool],
        *arguments: Any,
    ) -> None:
        """Queue one reply and wait until it is written: at most *poll_timeout* s
        (None: :data:`REPLY_TIMEOUT`), after which a link that did not take it
        is given up."""
        if self._kernel.reply(job, send, *arguments):
            timeout = REPLY_TIMEOUT if poll_timeout is None else poll_timeout
            await self._io.drain(deadline_after(self._io, timeout))

    async def __aenter__(self) -> AsyncGearmanWorker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()
