"""python-gearman's job and job request classes.

:class:`GearmanJob` is one job as a client submits it or a worker receives
it.  :class:`GearmanJobRequest` is a client's submission of one job and
everything heard about it; its state machine is the core's
:class:`gearman_proto.JobRequest`, which it extends with python-gearman's
attributes and payload decoding.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import gearman_proto as proto

from . import errors
from ._common import (
    DataEncoder,
    NoopEncoder,
    encode_payload,
    from_priority,
    job_status,
    name_bytes,
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


#: what a request holds until the client builds its submission.
_UNSENT = proto.SubmitJob(function=b"")


class GearmanJob:
    """One job.

    Attributes:
        connection: the server the job lives on (a
            :class:`gearman_proto.ServerAddress`), or None before submission.
        handle: the job handle as ``str`` (None before JOB_CREATED).
        task: the function name, as the caller gave it (``str`` or ``bytes``).
        unique: the unique id (``str``; ``bytes`` if the caller passed bytes).
        data: the payload: what the caller submitted, or on a worker the
            payload after ``data_encoder.decode``.
        reducer: on a worker, the reducer of a map/reduce job, else None.
    """

    def __init__(
        self,
        connection: proto.ServerAddress | None,
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
            WORK_WARNING payloads, oldest first.
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
            raise ValueError("an epoch job has normal priority and no reducer")
        if reducer is not None and self._priority is not proto.Priority.NORMAL:
            raise ValueError("a reduce job has normal priority")
        # The real submission is built when the client sends the request, with
        # the client's encoder (python-gearman encodes at send time too).
        super().__init__(_UNSENT, max_attempts=max_attempts)

    def _prepare(self, data_encoder: type[DataEncoder]) -> None:
        """Build the submission with the client's encoder (first send only).

        Raises:
            TypeError: the encoder cannot encode the data, or a name is neither
                str nor bytes.
            gearman_proto.LocalProtocolError: a field the protocol cannot carry.
        """
        self.data_encoder = data_encoder
        if self.attempts:
            return
        job = self.gearman_job
        self.submission = proto.make_submission(
            name_bytes(job.task, "task"),
            encode_payload(data_encoder, job.data, errors.InvalidClientState),
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

    # python-gearman's attribute names over the core's
    @property
    def background(self) -> bool:
        """Whether it is (to be) submitted as a background job."""
        return self._background

    @property
    def job(self) -> GearmanJob:
        """The :class:`GearmanJob` (alias of ``gearman_job``)."""
        return self.gearman_job

    @property
    def priority(self) -> str | None:
        """``PRIORITY_NONE``, ``PRIORITY_LOW`` or ``PRIORITY_HIGH``."""
        return from_priority(self._priority)

    @property
    def connection_attempts(self) -> int:
        """How many times it was sent."""
        return self.attempts

    @property
    def max_connection_attempts(self) -> int:
        """How many times it may be sent (``max_retries + 1``)."""
        return self.max_attempts

    @property
    def server_status(self) -> RequestStatus:
        """Deprecated alias of :attr:`status`."""
        return self.status

    # Hooks called by the core after it recorded an event.
    def _on_sent(self) -> None:
        self.gearman_job.connection = self.server

    def _on_created(self) -> None:
        self.gearman_job.handle = text(self.handle)  # type: ignore[arg-type]

    def _on_data(self, payload: bytes) -> None:
        self.data_updates.append(self.data_encoder.decode(payload))

    def _on_warning(self, payload: bytes) -> None:
        self.warning_updates.append(self.data_encoder.decode(payload))

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
