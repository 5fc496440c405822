"""The worker's kernel: everything python-gearman-shaped about a worker, no I/O.

Owns: the task table (names as the user registered them), turning each
:class:`gearman_proto.JobAssigned` into a :class:`GearmanJob`, the jobs
waiting to run, and the replies of a job through
:class:`gearman_proto.WorkerSession` with payloads encoded and errors
mapped.  Shared by the sync and the async facades; imports no I/O library
and never waits.
"""

from __future__ import annotations

import collections
import logging
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

import gearman_proto as proto

from . import errors
from ._common import TEXT, DataEncoder, encode_payload, map_error, name_bytes
from .connection import GearmanConnection, server_of
from .job import GearmanJob

__all__ = ["Encoding", "ExcInfo", "Wait", "WorkerKernel"]

logger = logging.getLogger("gearman.worker")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

#: how a worker's next wait goes (:meth:`WorkerKernel.next_wait`): when it
#: ends (None: only when a job arrives), whether a reconnect came due (then
#: connect the missing servers first), when those connects must end, and the
#: servers whose link gave no sign of life (close those links first, then ask
#: again). A plain tuple: it is made on every turn of the loop.
Wait = tuple[float | None, bool, float | None, Sequence[proto.ServerAddress]]

_NONE: tuple[proto.ServerAddress, ...] = ()


class WorkerKernel:
    """A worker's core session and python-gearman's shapes around it.

    Args:
        servers: the parsed host list.
        owner: the worker, whose ``data_encoder`` (read at every use, so it
            may be changed at any time) encodes and decodes payloads.
        connection_for: the worker's connection object of a server, which
            becomes ``job.connection``.
        send_exceptions, epoch_poll_interval, liveness_interval, liveness_timeout,
            reducer_info: see :class:`gearman.GearmanWorker`.
        max_jobs: jobs held at once over all servers.
    """

    def __init__(
        self,
        servers: Sequence[proto.ServerAddress],
        *,
        owner: Encoding,
        connection_for: Callable[[proto.ServerAddress], GearmanConnection],
        send_exceptions: bool,
        epoch_poll_interval: float | None,
        max_jobs: int = 1,
        liveness_interval: float | None = None,
        liveness_timeout: float = 10.0,
        reducer_info: bool = False,
    ) -> None:
        # GRAB_JOB_UNIQ: jobs carry their unique id, and every Gearman server
        # knows it; GRAB_JOB_ALL adds a reduce job's reducer, but only
        # gearmand answers it (gear's Server ignores it: no job ever comes).
        self.session = proto.WorkerSession(
            servers,
            grab_mode=proto.GrabMode.ALL if reducer_info else proto.GrabMode.UNIQ,
            max_jobs=max_jobs,
            send_exceptions=send_exceptions,
            epoch_poll_interval=epoch_poll_interval,
            liveness_interval=liveness_interval,
            liveness_timeout=liveness_timeout,
        )
        self.names: dict[bytes, str | bytes] = {}
        self.jobs: collections.deque[GearmanJob] = collections.deque()
        self.owner = owner
        self.connection_for = connection_for
        #: the runtime's clock, set by the facade once its runtime exists.
        self.now: Callable[[], float] = _no_clock

    def start(self) -> None:
        """``work()`` begins: the worker takes jobs from now on.

        Raises:
            ServerUnavailable: the host list is empty, so there is no server
                to serve or to retry (python-gearman raised it too).
        """
        if not self.session.pool.servers:
            raise errors.ServerUnavailable("the worker's host list names no server")
        self.session.accepting = True

    def register(self, task: str | bytes, timeout: float | None) -> bytes:
        """Register *task* (CAN_DO, or CAN_DO_TIMEOUT with *timeout* seconds)."""
        function = name_bytes(task, "task", errors.InvalidWorkerState)
        milliseconds = None if timeout is None else max(1, round(timeout * 1000))
        self._call(self.session.register, function, milliseconds)
        self.names[function] = task
        return function

    def unregister(self, task: str | bytes) -> str | bytes:
        """Unregister *task* (CANT_DO); returns the name it was registered under."""
        function = name_bytes(task, "task", errors.InvalidWorkerState)
        self.session.unregister(function)
        return self.names.pop(function, task)

    def set_client_id(self, client_id: str | bytes) -> None:
        """SET_CLIENT_ID on every connection."""
        self._call(
            self.session.set_client_id,
            name_bytes(client_id, "client_id", errors.InvalidWorkerState),
        )

    def next_wait(self, poll_timeout: float | None) -> Wait:
        """Fire the session's timers that are due, and say how the next wait goes.

        The wait ends after *poll_timeout* seconds, or at the session's next
        timer (a reconnect, an epoch wake-up, a liveness check) if that comes
        sooner.
        """
        session = self.session
        now = self.now()
        connect_by = None if poll_timeout is None else now + poll_timeout
        due = session.next_deadline()
        reconnect = False
        unresponsive: Sequence[proto.ServerAddress] = _NONE
        if due is not None and due <= now:
            reconnect = bool(session.tick(now))
            unresponsive = session.unresponsive
            due = session.next_deadline()
        until = connect_by if due is None or (connect_by is not None and connect_by <= due) else due
        return until, reconnect, connect_by, unresponsive

    def receive(self, server: proto.ServerAddress, event: proto.Event) -> None:
        """The runtime's sink: jobs the session hands out are queued to run.

        A payload the worker's ``data_encoder`` cannot decode fails that job
        (WORK_FAIL, logged) instead of the link: gearmand would hand the
        same job to the next worker with the same encoder, and so on.
        """
        session = self.session
        for assigned in session.receive(server, event, self.now()):
            try:
                data = self.owner.data_encoder.decode(assigned.payload)
            except Exception:
                logger.exception("%s: cannot decode the payload of job %r", server, assigned.handle)
                session.fail(server, assigned.handle)
                continue
            task = self.names.get(assigned.function, assigned.function)
            unique = None if assigned.unique is None else assigned.unique.decode(*TEXT)
            reducer = None if assigned.reducer is None else assigned.reducer.decode(*TEXT)
            job = GearmanJob(
                self.connection_for(server),
                assigned.handle.decode(*TEXT),
                task,
                unique,
                data,
                reducer,
            )
            job._assigned_on = session.connections.get(server)
            job._server = server
            self.jobs.append(job)

    # -------------------------------------------------------------- replies

    def returned(self, job: GearmanJob, result: Any) -> bool:
        """The task returned *result*: WORK_COMPLETE (None: an empty result).

        A result the ``data_encoder`` cannot encode (an int or a dict with
        the default encoder) is logged and the job failed (WORK_FAIL): the
        worker goes on and the server does not keep the job waiting.
        """
        try:
            payload = None if result is None else self.encode(result)
        except Exception:
            logger.exception(
                "task %r (job %s) returned a result that cannot be sent", job.task, job.handle
            )
            return self.reply(job, self.session.job_abandoned)  # WORK_FAIL if still held
        return self.reply(job, self.session.job_returned, payload)

    def raised(self, job: GearmanJob, exc_info: ExcInfo) -> bool:
        """The task raised: log it, then WORK_EXCEPTION or WORK_FAIL (the session's rule).

        WORK_FAIL also when the ``data_encoder`` cannot encode the description.
        """
        logger.error("task %r (job %s) raised", job.task, job.handle, exc_info=exc_info)
        formatted = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        try:
            description = self.encode(formatted)
        except Exception:
            logger.exception("job %s: the exception's description cannot be encoded", job.handle)
            return self.reply(job, self.session.job_abandoned)
        return self.reply(job, self.session.job_raised, description)

    def abandoned(self, job: GearmanJob) -> bool:
        """The job's run ended without an answer (cancelled): WORK_FAIL if still held."""
        return self.reply(job, self.session.job_abandoned)

    def encode(self, data: Any) -> bytes:
        """A payload through the worker's encoder (see :func:`encode_payload`).

        Raises:
            InvalidWorkerType: the encoder cannot turn *data* into bytes.
        """
        return encode_payload(self.owner.data_encoder, data, errors.InvalidWorkerType)

    def reply(self, job: GearmanJob, send: Callable[..., bool], *arguments: Any) -> bool:
        """Send one reply for *job*; False when its connection is gone.

        The core checks the arguments before it queues anything: status
        numbers must be ints from 0 to 2**32 - 1 (:class:`InvalidWorkerType`
        for a float or bool, :class:`InvalidWorkerValue` out of range).
        """
        server = job._server  # the usual case: a job this kernel made
        if server is None:
            if job.connection is None:
                raise errors.InvalidWorkerState(f"{job!r} was not assigned by a server")
            server = server_of(job.connection, errors.InvalidWorkerState)
        if job.handle is None:
            raise errors.InvalidWorkerState(f"{job!r} was not assigned by a server")
        with_handle = job.handle.encode("utf-8", "surrogateescape")
        try:
            return bool(send(server, with_handle, *arguments, on=job._assigned_on))
        except proto.ProtocolError as error:
            raise map_error(error, errors.InvalidWorkerState) from error

    @staticmethod
    def _call(send: Callable[..., Any], *arguments: Any) -> Any:
        try:
            return send(*arguments)
        except proto.ProtocolError as error:
            raise map_error(error, errors.InvalidWorkerState) from error


class Encoding(Protocol):
    """What the kernel reads of its worker: the payload encoder."""

    data_encoder: type[DataEncoder]


def _no_clock() -> float:
    raise RuntimeError("the kernel has no clock: the facade sets one")
