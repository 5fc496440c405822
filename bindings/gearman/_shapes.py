"""The dicts python-gearman returns, as ``TypedDict``s for type checkers.

Owns: the keys and value types of the admin client's rows, of the status
dicts of ``get_status_by_handle`` / ``get_status_by_unique``, and of
``GearmanJobRequest.status``.  At run time they are plain dicts, as in
python-gearman 2.0.2.  Does not own: building them (the kernels and
:mod:`gearman.job` do).
"""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "HandleStatus",
    "JobRow",
    "PriorityRow",
    "QueryStatus",
    "RequestStatus",
    "StatusRow",
    "UniqueRow",
    "UniqueStatus",
    "WorkerRow",
]


class StatusRow(TypedDict):
    """One function of admin ``status``; ``queued`` counts running jobs too."""

    task: str
    queued: int
    running: int
    workers: int


class WorkerRow(TypedDict):
    """One connection of admin ``workers``."""

    file_descriptor: str
    ip: str
    client_id: str
    tasks: tuple[str, ...]


class JobRow(TypedDict):
    """One job of admin ``show jobs``: 2.0.2's keys, then master's names for them."""

    handle: str
    retries: int
    ignored: bool
    background: bool
    queued: int
    canceled: int
    enabled: int


class UniqueRow(TypedDict):
    """One job of admin ``show unique jobs``."""

    unique: str


class PriorityRow(TypedDict):
    """One function of admin ``prioritystatus``: queued jobs per priority."""

    task: str
    high: int
    normal: int
    low: int
    workers: int


class QueryStatus(TypedDict):
    """What a status query by handle or by unique tells: the keys both dicts have."""

    known: bool
    running: bool
    numerator: int
    denominator: int
    timed_out: bool


class HandleStatus(QueryStatus):
    """What ``get_status_by_handle`` returns."""

    handle: str


class UniqueStatus(QueryStatus):
    """What ``get_status_by_unique`` returns (GET_STATUS_UNIQUE)."""

    unique: str | bytes
    client_count: int


class RequestStatus(TypedDict, total=False):
    """``GearmanJobRequest.status``: empty until a WORK_STATUS or status reply, then whole."""

    handle: str | None
    known: bool | None
    running: bool | None
    numerator: int
    denominator: int
    time_received: float
