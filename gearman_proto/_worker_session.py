"""Worker session level: abilities and jobs across one or more servers.

Owns: the set of registered functions (sent incrementally to every live
connection, and whole to each new one), the client id, how many jobs the
worker holds across all its servers (it grabs only while it has room, so
it never hoards jobs another worker could run), the replies to the jobs it
holds and what a job's outcome sends (a result, None, an exception, a job
for a function no longer registered), and its timers: when to reconnect a
missing server and when sleeping connections grab anyway for due epoch
jobs (:meth:`WorkerSession.next_deadline`, :meth:`WorkerSession.tick`).
Does not own: running the job (the binding calls user code), sockets, or
the clock (``now`` is passed in).

Each :class:`WorkerConnection` runs its own GRAB_JOB / PRE_SLEEP loop; the
session only decides which connections may grab now, by flipping their
``accepting`` flag after every change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._connection import DEFAULT_MAX_PACKET_SIZE, drain
from ._errors import LocalProtocolError
from ._events import (
    CanDo,
    CantDo,
    ConnectionClosed,
    Event,
    GrabMode,
    JobAssigned,
    ServerError,
    SetClientId,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    status_number,
)
from ._liveness import Liveness
from ._servers import ServerAddress, ServerPool
from ._worker_connection import WorkerConnection, WorkerState

__all__ = ["WorkerSession"]

logger = logging.getLogger("gearman_proto.worker")


#: the connection a job was assigned on, for replies (None: do not check).
Assigned = WorkerConnection | None


class WorkerSession:
    """A worker's abilities, connections and held jobs.

    The binding reports connections with :meth:`connection_made` /
    :meth:`connection_lost`, feeds every event to :meth:`receive` (which
    returns the new jobs to run), reports each job's outcome with
    :meth:`complete`, :meth:`fail` and the update methods, and writes
    :meth:`data_to_send` after every call.

    Args:
        servers: the server addresses (for the :class:`ServerPool`).
        grab_mode: the GRAB_JOB variant (``UNIQ``: jobs carry their unique).
        max_jobs: how many jobs the worker holds at once, over all servers.
        pool: the :class:`ServerPool` used for reconnect back-off.
        max_packet_size: the per-connection receive limit.
        send_exceptions: a job that raised ends with WORK_EXCEPTION carrying
            its description (else WORK_FAIL).
        epoch_poll_interval: seconds between wake-ups of sleeping
            connections, so SUBMIT_JOB_EPOCH jobs that come due are grabbed
            (gearmand sends no NOOP for them); None: never.
        liveness_interval: seconds of quiet after which a connection is
            sent an ECHO (see :class:`Liveness`); None: never.
        liveness_timeout: seconds the answer may take before
            :attr:`unresponsive` names the server.
    """

    def __init__(
        self,
        servers: Sequence[ServerAddress],
        *,
        grab_mode: GrabMode = GrabMode.UNIQ,
        max_jobs: int = 1,
        pool: ServerPool | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        send_exceptions: bool = False,
        epoch_poll_interval: float | None = None,
        liveness_interval: float | None = None,
        liveness_timeout: float = 10.0,
    ) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        if epoch_poll_interval is not None and epoch_poll_interval <= 0:
            raise ValueError("epoch_poll_interval must be positive")
        self.send_exceptions = send_exceptions
        self.epoch_poll_interval = epoch_poll_interval
        self._next_wake: float | None = None
        self._liveness = (
            None if liveness_interval is None else Liveness(liveness_interval, liveness_timeout)
        )
        #: servers whose connection gave no sign of life in time (filled by
        #: :meth:`tick`): the binding gives each link up, and the session then
        #: reconnects it as after any loss.
        self.unresponsive: list[ServerAddress] = []
        self.pool = pool or ServerPool(servers)
        self.grab_mode = grab_mode
        self.max_jobs = max_jobs
        self.max_packet_size = max_packet_size
        self.abilities: dict[bytes, int | None] = {}
        self.client_id: bytes | None = None
        self.connections: dict[ServerAddress, WorkerConnection] = {}
        #: several connections share the job budget, so a move on one of them
        #: (a job in or out, NO_JOB, NOOP) rebalances them all.  A single one
        #: keeps the budget itself (its ``max_jobs``), and only a change of
        #: :attr:`accepting` or of the set of connections concerns it.  Kept
        #: by connection_made() and connection_lost(), the only writers of
        #: ``connections``, so the per-job moves test a flag.
        self._shared = False
        self._accepting = True
        self._rotation = 0

    # ------------------------------------------------------------ abilities

    def register(self, function: bytes, timeout: int | None = None) -> None:
        """Register *function* on every connection (CAN_DO or CAN_DO_TIMEOUT, in ms)."""
        event = CanDo(function=function, timeout=timeout)
        self.abilities[function] = timeout
        for connection in self.connections.values():
            connection.queue(event)
        self._rebalance()

    def unregister(self, function: bytes) -> None:
        """Unregister *function* everywhere (CANT_DO); unknown names are ignored."""
        if self.abilities.pop(function, False) is False:
            return
        event = CantDo(function=function)
        for connection in self.connections.values():
            connection.queue(event)
        self._rebalance()

    def set_client_id(self, client_id: bytes) -> None:
        """Label every connection, now and later, with *client_id*."""
        event = SetClientId(client_id=client_id)
        self.client_id = client_id
        for connection in self.connections.values():
            connection.queue(event)

    @property
    def accepting(self) -> bool:
        """Whether the worker takes new jobs (False: finish held jobs, grab no more)."""
        return self._accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        self._accepting = bool(value)
        self._rebalance()

    # ---------------------------------------------------------- connections

    def connection_made(self, server: ServerAddress) -> WorkerConnection:
        """A connection to *server* is up: register everything on it."""
        if server in self.connections:
            raise LocalProtocolError(f"{server} already has a connection")
        connection = WorkerConnection(
            grab_mode=self.grab_mode, max_jobs=self.max_jobs, max_packet_size=self.max_packet_size
        )
        connection.accepting = False  # the session decides when it grabs
        if self.client_id is not None:
            connection.queue(SetClientId(client_id=self.client_id))
        for function, timeout in self.abilities.items():
            connection.queue(CanDo(function=function, timeout=timeout))
        self.connections[server] = connection
        self._shared = len(self.connections) > 1
        if self._liveness is not None:
            self._liveness.connection_made()
        self.pool.succeeded(server)
        self._rebalance()
        return connection

    def connect_failed(self, server: ServerAddress, now: float) -> None:
        """Connecting to *server* failed: put it in back-off."""
        self.pool.failed(server, now)

    def connection_lost(self, server: ServerAddress, now: float) -> tuple[bytes, ...]:
        """The connection to *server* died; return the handles of jobs held there.

        gearmand re-queues those jobs itself (PROTOCOL.md 6); their results
        can no longer be delivered from here.
        """
        connection = self.connections.pop(server, None)
        self._shared = len(self.connections) > 1
        if self._liveness is not None:
            self._liveness.forget(server)
        if connection is not None:
            self.pool.lost(server, now, proven=connection.proven)
        self._rebalance()
        if connection is None:
            return ()
        return tuple(job.handle for job in connection.jobs)

    def missing_servers(self, now: float) -> list[ServerAddress]:
        """Servers without a connection and out of back-off: connect to these."""
        return [
            server
            for server in self.pool.servers
            if server not in self.connections and self.pool.available(server, now)
        ]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing scheduled).

        The earliest of the next epoch wake-up, the next liveness check and
        the end of back-off of a server without a connection; the binding
        sleeps at most until then.
        """
        deadline = self._next_wake
        if self._liveness is not None:
            check = self._liveness.deadline
            if check is not None and (deadline is None or check < deadline):
                deadline = check
        if len(self.connections) == len(self.pool.servers):
            return deadline  # the usual case: nothing to reconnect
        missing = [s for s in self.pool.servers if s not in self.connections]
        if missing:
            retry = self.pool.next_retry(missing)
            if deadline is None or retry < deadline:
                deadline = retry
        return deadline

    def tick(self, now: float) -> list[ServerAddress]:
        """Do what is due at *now*; return the servers to connect to now.

        Wakes sleeping connections when the epoch interval has passed (the
        first call only schedules the first wake-up), sends the liveness
        ECHOs that are due and lists in :attr:`unresponsive` the servers
        whose connection stayed silent past its deadline.
        """
        liveness = self._liveness
        if liveness is not None:
            self.unresponsive = liveness.check(self.connections, now)
        interval = self.epoch_poll_interval
        if interval is not None:
            if self._next_wake is None:
                self._next_wake = now + interval
            elif now >= self._next_wake:
                self.wake()
                self._next_wake = now + interval
        if len(self.connections) == len(self.pool.servers):
            return []
        return self.missing_servers(now)

    def wake(self) -> None:
        """Make sleeping connections grab again (for due SUBMIT_JOB_EPOCH jobs)."""
        for connection in self.connections.values():
            if connection.worker_state is WorkerState.SLEEPING:
                connection.wake()
        self._rebalance()

    def data_to_send(self) -> dict[ServerAddress, bytes]:
        """Bytes queued per server, one string each."""
        return drain(self.connections)

    @property
    def held_jobs(self) -> int:
        """Jobs held over all connections."""
        return sum(connection.held_jobs for connection in self.connections.values())

    # --------------------------------------------------------------- events

    def receive(self, server: ServerAddress, event: Event, now: float) -> list[JobAssigned]:
        """Apply one event read from *server*; return jobs to run (0 or 1)."""
        kind = type(event)
        if kind is JobAssigned:
            job: JobAssigned = event  # type: ignore[assignment]
            if job.function not in self.abilities:
                # Unregistered while the grab was on its way: give it back failed.
                logger.warning(
                    "%s: job %r for unregistered function %r: failing it",
                    server,
                    job.handle,
                    job.function,
                )
                self._reply(server, WorkFail(handle=job.handle), None)
                return []
            if self._shared:
                self._rebalance()
            return [job]
        if kind is ConnectionClosed:
            self.connection_lost(server, now)
        elif kind is ServerError:
            error: ServerError = event  # type: ignore[assignment]
            logger.warning("%s: server error %r: %r", server, error.code, error.text)
        elif self._shared:
            self._rebalance()
        return []

    # ------------------------------------------------------------- replies

    def job_returned(
        self, server: ServerAddress, handle: bytes, payload: bytes | None, *, on: Assigned = None
    ) -> bool:
        """The job's function returned *payload*: WORK_COMPLETE (None: empty result).

        Nothing is sent (False) for a job the function answered itself
        (``complete``/``fail`` from inside it), or whose connection is gone.
        """
        connection = self._holding(server, handle, on)
        if connection is None:
            return False
        connection.queue(WorkComplete(handle=handle, payload=b"" if payload is None else payload))
        if self._shared:
            self._rebalance()
        return True

    def job_raised(
        self, server: ServerAddress, handle: bytes, description: bytes, *, on: Assigned = None
    ) -> bool:
        """The job's function raised: WORK_EXCEPTION with *description* if
        ``send_exceptions`` is set, else WORK_FAIL; nothing (False) for a job
        answered already or whose connection is gone."""
        if self._holding(server, handle, on) is None:
            return False
        return self.fail(server, handle, description if self.send_exceptions else None, on=on)

    def job_abandoned(self, server: ServerAddress, handle: bytes, *, on: Assigned = None) -> bool:
        """The binding stopped running a job it holds (cancelled, or a hook raised):
        WORK_FAIL, so no client waits for a job nobody runs.

        Returns False, sending nothing, when the job is no longer held (it
        was answered already) or its connection is gone.
        """
        if self._holding(server, handle, on) is None:
            return False
        return self.fail(server, handle, on=on)

    def complete(
        self, server: ServerAddress, handle: bytes, payload: bytes, *, on: Assigned = None
    ) -> bool:
        """End a held job successfully (WORK_COMPLETE)."""
        return self._reply(server, WorkComplete(handle=handle, payload=payload), on)

    def fail(
        self,
        server: ServerAddress,
        handle: bytes,
        exception: bytes | None = None,
        *,
        on: Assigned = None,
    ) -> bool:
        """End a held job as failed: WORK_EXCEPTION with *exception*, else WORK_FAIL.

        Never both (gearmand answers the second with JOB_NOT_FOUND).
        """
        if exception is None:
            return self._reply(server, WorkFail(handle=handle), on)
        return self._reply(server, WorkException(handle=handle, payload=exception), on)

    def data(
        self, server: ServerAddress, handle: bytes, payload: bytes, *, on: Assigned = None
    ) -> bool:
        """Send partial data for a held job (WORK_DATA)."""
        return self._reply(server, WorkData(handle=handle, payload=payload), on)

    def warning(
        self, server: ServerAddress, handle: bytes, payload: bytes, *, on: Assigned = None
    ) -> bool:
        """Send a warning for a held job (WORK_WARNING)."""
        return self._reply(server, WorkWarning(handle=handle, payload=payload), on)

    def status(
        self,
        server: ServerAddress,
        handle: bytes,
        numerator: int,
        denominator: int,
        *,
        on: Assigned = None,
    ) -> bool:
        """Send progress for a held job (WORK_STATUS).

        Raises:
            LocalTypeError: a number is not an ``int`` (floats and bools
                are refused, not truncated).
            LocalValueError: a number is negative or above 2**32 - 1
                (gearmand stores them as unsigned 32-bit integers).
        """
        event = WorkStatus(
            handle=handle,
            numerator=status_number(numerator, "numerator"),
            denominator=status_number(denominator, "denominator"),
        )
        return self._reply(server, event, on)

    def _holding(
        self, server: ServerAddress, handle: bytes, on: Assigned
    ) -> WorkerConnection | None:
        """The connection that was assigned job *handle*, if it still holds it
        (not a job the function ended itself, nor one of a lost connection)."""
        connection = self.connections.get(server)
        if connection is not None and (on is None or connection is on):
            if handle in connection._jobs:  # holds(), inlined: this runs once per job
                return connection
            logger.debug("%s: job %r was answered already", server, handle)
            return None
        logger.warning("%s: connection lost, dropping the outcome of job %r", server, handle)
        return None

    def _reply(self, server: ServerAddress, event: Event, on: Assigned) -> bool:
        """Send *event*; False when the connection that held the job is gone.

        *on* is the connection the job was assigned on (``connections[server]``
        then): a reply for a job of an earlier connection to the server is
        dropped, not sent on its successor, where a new job may carry the
        same handle (gearmand numbers handles afresh after a restart).
        """
        connection = self.connections.get(server)
        if connection is None or (on is not None and connection is not on):
            logger.warning("%s: connection lost, dropping %s", server, type(event).__name__)
            return False
        connection.queue(event)
        if self._shared:
            self._rebalance()
        return True

    def _rebalance(self) -> None:
        """Let connections grab while the worker has room, in turn."""
        if len(self.connections) <= 1:
            # One connection enforces the budget itself (its max_jobs), so
            # only a change of the session's own flag needs passing on.
            for connection in self.connections.values():
                connection.accepting = self._accepting  # a no-op unless it changed
            return
        connections = list(self.connections.values())
        busy = sum(c.held_jobs + _grabbing(c) for c in connections)
        start = self._rotation % len(connections)
        self._rotation += 1
        for connection in connections[start:] + connections[:start]:
            if _grabbing(connection):
                continue
            connection.accepting = self._accepting and busy < self.max_jobs
            busy += _grabbing(connection)


def _grabbing(connection: WorkerConnection) -> bool:
    return connection.worker_state is WorkerState.GRABBING
