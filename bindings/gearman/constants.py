"""python-gearman's constants: the default port, priorities and job states."""

from __future__ import annotations

from gearman_proto import DEFAULT_PORT, JobState

__all__ = [
    "DEFAULT_GEARMAN_PORT",
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
]

_DEBUG_MODE_ = False
DEFAULT_GEARMAN_PORT = DEFAULT_PORT

#: priorities as python-gearman spells them (None is normal priority).
PRIORITY_NONE = None
PRIORITY_LOW = "LOW"
PRIORITY_HIGH = "HIGH"

#: request states; equal to ``GearmanJobRequest.state`` values.
JOB_UNKNOWN = JobState.UNKNOWN.value  # not sent yet, or its connection failed
JOB_PENDING = JobState.PENDING.value  # sent, waiting for JOB_CREATED
JOB_CREATED = JobState.CREATED.value  # accepted by the server, handle known
JOB_FAILED = JobState.FAILED.value  # WORK_FAIL, WORK_EXCEPTION or a server ERROR
JOB_COMPLETE = JobState.COMPLETE.value  # WORK_COMPLETE
