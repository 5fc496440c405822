"""Delayed (SUBMIT_JOB_EPOCH) and map/reduce (SUBMIT_REDUCE_JOB*) jobs via the binding.

Beyond python-gearman (ANCHORS.md 4, item 12).  gearmand wakes nobody when
an epoch job comes due (PROTOCOL.md 5.2), so the worker polls with
``epoch_poll_interval``.
"""

from __future__ import annotations

import time
import types
from typing import Any

import pytest
from _binding_helpers import admin_status, serving, unique_name, wait_until

from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    PRIORITY_HIGH,
    GearmanJob,
)
from gearman.testing import Gearmand


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def test_epoch_job_waits_until_its_time(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("later")
    ran_at: list[float] = []

    def record(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        ran_at.append(time.time())
        return b""

    with serving(runtime, [address], {task: record}, epoch_poll_interval=0.1):
        epoch = int(time.time()) + 2
        request = runtime.GearmanClient([address]).submit_job(
            task, b"x", epoch=epoch, poll_timeout=10
        )
        assert (request.state, request.complete, request.timed_out) == (JOB_CREATED, True, False)
        assert request.background is True
        assert request.epoch == epoch
        status = admin_status(runtime, address, task)
        assert status is not None
        assert status["queued"] == 1
        wait_until(runtime, lambda: ran_at, timeout=10, message="the epoch job ran")
    assert ran_at[0] >= epoch - 0.05, f"ran {epoch - ran_at[0]:.2f} s before its epoch"


def test_epoch_in_the_past_runs_at_once(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("now")
    done = runtime.concurrency.Event()

    def record(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        done.set()
        return b""

    with serving(runtime, [address], {task: record}, epoch_poll_interval=0.1):
        request = runtime.GearmanClient([address]).submit_job(task, b"x", epoch=0, poll_timeout=10)
        assert request.state == JOB_CREATED
        assert done.wait(10)


def test_epoch_job_has_normal_priority(runtime: types.ModuleType) -> None:
    client = runtime.GearmanClient(["127.0.0.1:1"])
    with pytest.raises(ValueError, match="epoch"):
        client.submit_job("t", b"x", epoch=1, priority=PRIORITY_HIGH)


@pytest.mark.parametrize(
    ("background", "reducer_info"), [(False, True), (True, True), (False, False)]
)
def test_reduce_job_reaches_the_worker_with_its_reducer(
    runtime: types.ModuleType, address: str, background: bool, reducer_info: bool
) -> None:
    """The worker sees the reducer only when it asks for it (GRAB_JOB_ALL);
    by default (GRAB_JOB_UNIQ) the job comes with its unique and no reducer."""
    task, reducer = unique_name("map"), unique_name("reduce")
    seen: list[Any] = []
    done = runtime.concurrency.Event()

    def mapper(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        seen.append((job.reducer, job.unique, job.data))
        done.set()
        return b"mapped:" + job.data

    with serving(runtime, [address], {task: mapper}, reducer_info=reducer_info):
        unique = unique_name("u")
        request = runtime.GearmanClient([address]).submit_job(
            task, b"d", unique=unique, reducer=reducer, background=background, poll_timeout=10
        )
        assert done.wait(10)
    assert seen == [(reducer if reducer_info else None, unique, b"d")]
    if background:
        assert (request.state, request.complete) == (JOB_CREATED, True)
    else:
        assert (request.state, request.result) == (JOB_COMPLETE, b"mapped:d")
