"""python-gearman's constants: the default port, priorities, job states, default timeouts.

The defaults are also importable from the modules python-gearman kept them
in (``gearman.client.RANDOM_UNIQUE_BYTES``, ``gearman.worker.POLL_TIMEOUT_IN_SECONDS``,
``gearman.admin_client.DEFAULT_ADMIN_CLIENT_TIMEOUT``); they live here so the
async facades share them without importing the blocking ones.
"""

from __future__ import annotations

from gearman_proto import DEFAULT_PORT, JobState

__all__ = [
    "DEFAULT_ADMIN_CLIENT_TIMEOUT",
    "DEFAULT_GEARMAN_PORT",
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "LIVENESS_INTERVAL",
    "LIVENESS_TIMEOUT",
    "MAX_UPDATE_BYTES",
    "POLL_TIMEOUT_IN_SECONDS",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
    "RANDOM_UNIQUE_BYTES",
]

_DEBUG_MODE_ = False
DEFAULT_GEARMAN_PORT = DEFAULT_PORT

#: size of the random unique id given to jobs submitted without one.
RANDOM_UNIQUE_BYTES = 16
#: seconds a worker's wait lasts at most, by default.
POLL_TIMEOUT_IN_SECONDS = 60.0
#: seconds an admin client waits for each reply, by default.
DEFAULT_ADMIN_CLIENT_TIMEOUT = 10.0
#: seconds of quiet after which a worker asks a connection for a sign of
#: life (ECHO), and seconds the answer may take, by default.
LIVENESS_INTERVAL = 30.0
LIVENESS_TIMEOUT = 10.0
#: bytes of WORK_DATA / WORK_WARNING / WORK_STATUS updates a client request
#: keeps, by default (each counts its payload plus ``job.UPDATE_OVERHEAD``).
MAX_UPDATE_BYTES = 16 * 1024 * 1024

#: priorities as python-gearman spells them (None is normal priority).
PRIORITY_NONE = None
PRIORITY_LOW = "LOW"
PRIORITY_HIGH = "HIGH"

#: request states: the core's :class:`gearman_proto.JobState` members, which
#: equal (and print as) python-gearman's strings, so code may compare them with
#: ``"COMPLETE"`` and assign them to ``request.state`` alike.
JOB_UNKNOWN = JobState.UNKNOWN  # not sent yet, or its connection failed
JOB_PENDING = JobState.PENDING  # sent, waiting for JOB_CREATED
JOB_CREATED = JobState.CREATED  # accepted by the server, handle known
JOB_FAILED = JobState.FAILED  # WORK_FAIL, WORK_EXCEPTION or a server ERROR
JOB_COMPLETE = JobState.COMPLETE  # WORK_COMPLETE
