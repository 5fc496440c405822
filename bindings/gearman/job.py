"""python-gearman's job and job request classes.

:class:`GearmanJob` is one job as a client submits it or a worker receives
it.  :class:`GearmanJobRequest` is a client's submission of one job and
everything heard about it; its state machine is the core's
:class:`gearman_proto.JobRequest`, which it extends with python-gearman's
attributes and payload decoding.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import gearman_proto as proto

from . import errors
from ._common import (
    DataEncoder,
    NoopEncoder,
    encode_payload,
    from_priority,
    invalid_value,
    job_status,
    name_bytes,
    random_unique,
    text,
    to_priority,
)
from ._shapes import RequestStatus
from .constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_NONE,
)

__all__ = [
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "GearmanJob",
    "GearmanJobRequest",
]


_logger = logging.getLogger("gearman.job")

#: what a request holds until the client builds its submission.
_UNSENT = proto.SubmitJob(function=b"")


def _the_server(server: proto.ServerAddress) -> proto.ServerAddress:
    return server


#: what keeping one update costs beyond its payload (its object, its deque
#: slot and the record of its size), charged against ``max_update_bytes``:
#: a flood of empty WORK_DATA, or of WORK_STATUS, is bounded too.
UPDATE_OVERHEAD = 128

#: called with (request, kind, value) for every WORK_DATA ("data") and
#: WORK_WARNING ("warning"), value decoded.
UpdateCallback = Callable[["GearmanJobRequest", str, Any], object]


class UpdatePolicy:
    """What a client keeps of the WORK_DATA and WORK_WARNING a job streams.

    Args:
        max_bytes: bytes kept in ``data_updates``, ``warning_updates`` and
            ``status_updates`` together, per request, each update counting
            its payload plus :data:`UPDATE_OVERHEAD`; past it the oldest
            updates are dropped and counted in ``dropped_updates`` (None:
            no limit, python-gearman's behaviour, unsafe with a server or
            worker that streams without end).
        callback: if set, every WORK_DATA and WORK_WARNING goes to it
            instead, and none is kept.
    """

    __slots__ = ("callback", "max_bytes")

    def __init__(self, max_bytes: int | None, callback: UpdateCallback | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_update_bytes must be positive or None")
        self.max_bytes = max_bytes
        self.callback = callback


_KEEP_ALL = UpdatePolicy(None)


class GearmanJob:
    """One job.

    Attributes:
        connection: the server the job lives on, as the submitting client's or
            the receiving worker's :class:`gearman.connection.GearmanConnection`
            (``gearman_host``, ``gearman_port``); None before submission.  A job
            built by hand for a status query may name its server with a
            ``GearmanConnection``, ``"host:port"`` or ``(host, port)``.
        handle: the job handle as ``str`` (None before JOB_CREATED).
        task: the function name, as the caller gave it (``str`` or ``bytes``).
        unique: the unique id (``str``; ``bytes`` if the caller passed bytes).
        data: the payload: what the caller submitted, or on a worker the
            payload after ``data_encoder.decode``.
        reducer: on a worker asking for it (``reducer_info=True``), the
            reducer of a map/reduce job, else None.
    """

    def __init__(
        self,
        connection: Any,
        handle: str | None,
        task: str | bytes,
        unique: str | bytes | None,
        data: Any,
        reducer: str | None = None,
    ) -> None:
        self.connection = connection
        self.handle = handle
        self.task = task
        self.unique = unique
        self.data = data
        self.reducer = reducer
        #: the core connection a worker's job was assigned on: its replies
        #: go there or nowhere (never to a successor holding the same handle).
        self._assigned_on: proto.WorkerConnection | None = None
        #: the server that assigned it (None for a job built by hand).
        self._server: proto.ServerAddress | None = None

    def to_dict(self) -> dict[str, Any]:
        """``task``, ``job_handle``, ``unique`` and ``data`` as a dict."""
        return {
            "task": self.task,
            "job_handle": self.handle,
            "unique": self.unique,
            "data": self.data,
        }

    def __repr__(self) -> str:
        return (
            f"<GearmanJob connection={self.connection} handle={self.handle!r} "
            f"task={self.task!r} unique={self.unique!r}>"
        )


class GearmanJobRequest(proto.JobRequest):
    """A client's request to run one :class:`GearmanJob`.

    Attributes (python-gearman's, with Python 3 types):
        gearman_job / job: the :class:`GearmanJob`.
        state: one of the ``JOB_*`` strings.
        priority: ``PRIORITY_NONE``, ``PRIORITY_LOW`` or ``PRIORITY_HIGH``.
        background: submitted as a background job (always, for epoch jobs).
        epoch: for a delayed job, the Unix time before which it does not run
            (SUBMIT_JOB_EPOCH); else None.
        reducer: for a map/reduce job, the reducer function (SUBMIT_REDUCE_JOB);
            else None.
        result: the decoded WORK_COMPLETE payload (None until then).
        exception: the decoded WORK_EXCEPTION payload, if any.
        data_updates, warning_updates: deques of decoded WORK_DATA and
            WORK_WARNING payloads, oldest first; with ``status_updates``
            within the client's ``max_update_bytes`` (see ``dropped_updates``).
        status: ``{'handle', 'known', 'running', 'numerator',
            'denominator', 'time_received'}`` from the last WORK_STATUS or
            status query (numbers are ints; empty dict until one arrives).
        timed_out: the last wait on it ended at its deadline.
        connection_attempts / max_connection_attempts: sends so far, cap.
        lost: its connection died after JOB_CREATED (outcome unknown).
        error: the server's :class:`gearman_proto.ServerError` if it refused
            the job (state ``FAILED``), else None.
    """

    def __init__(
        self,
        gearman_job: GearmanJob,
        initial_priority: str | None = PRIORITY_NONE,
        background: bool = False,
        max_attempts: int = 1,
        *,
        epoch: int | None = None,
        reducer: str | bytes | None = None,
    ) -> None:
        self.gearman_job = gearman_job
        self.data_encoder: type[DataEncoder] = NoopEncoder
        self._priority = to_priority(initial_priority)
        self._background = bool(background) or epoch is not None
        self.epoch = epoch
        self.reducer = reducer
        if epoch is not None and (
            reducer is not None or self._priority is not proto.Priority.NORMAL
        ):
            raise invalid_value(
                errors.InvalidClientState, "an epoch job has normal priority and no reducer"
            )
        if reducer is not None and self._priority is not proto.Priority.NORMAL:
            raise invalid_value(errors.InvalidClientState, "a reduce job has normal priority")
        # The real submission is built when the client sends the request, with
        # the client's encoder (python-gearman encodes at send time too).
        self._connection_for: Callable[[proto.ServerAddress], Any] = _the_server
        #: the size of the unique the client generated for it (0: the caller's
        #: own unique): a resend gets a fresh one (see :meth:`_on_resend`).
        self._generated_unique_bytes = 0
        self._updates = _KEEP_ALL
        super().__init__(_UNSENT, max_attempts=max_attempts)

    def _prepare(
        self,
        data_encoder: type[DataEncoder],
        connection_for: Callable[[proto.ServerAddress], Any],
        updates: UpdatePolicy = _KEEP_ALL,
    ) -> None:
        """Build the submission from the job and the attributes as they are now,
        with the client's encoder; *connection_for* names the client's
        connection object of a server, for ``job.connection``; *updates*
        says what to keep of streamed updates.

        Raises:
            InvalidClientType: the encoder cannot encode the data, or a name
                is neither str nor bytes.
            gearman_proto.LocalProtocolError: a field the protocol cannot carry.
        """
        self.data_encoder = data_encoder
        self._connection_for = connection_for
        self._updates = updates
        job = self.gearman_job
        self.submission = proto.make_submission(
            name_bytes(job.task, "task"),
            encode_payload(data_encoder, job.data, errors.InvalidClientType),
            b"" if job.unique is None else name_bytes(job.unique, "unique"),
            priority=self._priority,
            background=self._background,
            epoch=None if self.epoch is None else int(self.epoch),
            reducer=None if self.reducer is None else name_bytes(self.reducer, "reducer"),
        )

    def initialize_request(self) -> None:
        """Forget every update (python-gearman's name for :meth:`reset`)."""
        self.reset()

    def reset(self) -> None:
        """Back to ``JOB_UNKNOWN`` with no updates, ready to be submitted again."""
        super().reset()
        self.result: Any = None
        self.exception: Any = None
        self.data_updates: collections.deque[Any] = collections.deque()
        self.warning_updates: collections.deque[Any] = collections.deque()
        self.status_updates: collections.deque[tuple[int, int]] = collections.deque()
        self.status: RequestStatus = {}
        #: updates dropped to stay within the client's ``max_update_bytes``.
        self.dropped_updates = 0
        self._kept: collections.deque[tuple[collections.deque[Any], int]] = collections.deque()
        self._kept_bytes = 0

    # python-gearman's attribute names over the core's.  The assignable ones
    # take effect at the next submission, as in python-gearman.
    @property
    def background(self) -> bool:
        """Whether it is (to be) submitted as a background job."""
        return self._background

    @background.setter
    def background(self, value: bool) -> None:
        self._background = bool(value) or self.epoch is not None

    @property
    def job(self) -> GearmanJob:
        """The :class:`GearmanJob` (alias of ``gearman_job``)."""
        return self.gearman_job

    @property
    def priority(self) -> str | None:
        """``PRIORITY_NONE``, ``PRIORITY_LOW`` or ``PRIORITY_HIGH``."""
        return from_priority(self._priority)

    @priority.setter
    def priority(self, value: str | None) -> None:
        self._priority = to_priority(value)

    @property
    def connection_attempts(self) -> int:
        """How many times it was sent."""
        return self.attempts

    @connection_attempts.setter
    def connection_attempts(self, value: int) -> None:
        self.attempts = int(value)

    @property
    def max_connection_attempts(self) -> int:
        """How many times it may be sent (``max_retries + 1``)."""
        return self.max_attempts

    @max_connection_attempts.setter
    def max_connection_attempts(self, value: int) -> None:
        self.max_attempts = int(value)

    @property
    def server_status(self) -> RequestStatus:
        """Deprecated alias of :attr:`status`."""
        return self.status

    def _on_resend(self) -> None:
        # gearmand 1.1.20 keeps a foreground job whose client left before a
        # worker took it as abandoned, and attaches a new submission with the
        # same unique to it, which then never runs.  A unique the client made
        # up means nothing to the caller: the resend gets a fresh one.
        if self._generated_unique_bytes:
            unique = random_unique(self._generated_unique_bytes)
            self.gearman_job.unique = unique
            self.submission = dataclasses.replace(self.submission, unique=unique.encode())

    # Hooks called by the core after it recorded an event.
    def _on_sent(self) -> None:
        self.gearman_job.connection = self._connection_for(self.server)  # type: ignore[arg-type]

    def _on_created(self) -> None:
        self.gearman_job.handle = text(self.handle)  # type: ignore[arg-type]

    def _on_data(self, payload: bytes) -> None:
        self._on_update(self.data_updates, "data", payload)

    def _on_warning(self, payload: bytes) -> None:
        self._on_update(self.warning_updates, "warning", payload)

    def _on_update(self, kept: collections.deque[Any], kind: str, payload: bytes) -> None:
        value = self.data_encoder.decode(payload)
        policy = self._updates
        if policy.callback is not None:
            try:
                policy.callback(self, kind, value)
            except Exception:
                _logger.exception("the update callback raised for %r", self)
            return
        kept.append(value)
        self._keep(kept, len(payload) + UPDATE_OVERHEAD)

    def _keep(self, kept: collections.deque[Any], cost: int) -> None:
        """Charge the update just appended to *kept*; drop the oldest past the limit."""
        limit = self._updates.max_bytes
        if limit is None:
            return
        self._kept.append((kept, cost))
        self._kept_bytes += cost
        while self._kept_bytes > limit:
            oldest, size = self._kept.popleft()
            oldest.popleft()
            self._kept_bytes -= size
            if not self.dropped_updates:
                _logger.warning(
                    "%r streams more than max_update_bytes=%d: dropping the oldest updates",
                    self,
                    limit,
                )
            self.dropped_updates += 1

    def _on_status(self) -> None:
        numerator = job_status(self.numerator)
        denominator = job_status(self.denominator)
        self.status = {
            "handle": self.gearman_job.handle,
            "known": self.known,
            "running": self.running,
            "numerator": numerator,
            "denominator": denominator,
            "time_received": time.time(),
        }
        self.status_updates.append((numerator, denominator))
        self._keep(self.status_updates, UPDATE_OVERHEAD)

    def _on_result(self, payload: bytes) -> None:
        self.result = self.data_encoder.decode(payload)

    def _on_exception(self, payload: bytes) -> None:
        self.exception = self.data_encoder.decode(payload)

    def __repr__(self) -> str:
        return (
            f"<GearmanJobRequest task={self.gearman_job.task!r} "
            f"unique={self.gearman_job.unique!r} priority={self.priority!r} "
            f"background={self.background} state={self.state} timed_out={self.timed_out}>"
        )


# States re-exported for ``from gearman.job import JOB_COMPLETE`` and friends.
_STATES = (JOB_UNKNOWN, JOB_PENDING, JOB_CREATED, JOB_FAILED, JOB_COMPLETE)
