"""Client, worker and admin client of every runtime against gear's ``Server``.

gear (OpenStack's Python Gearman server, PyPI ``gear``) is an implementation
independent of gearmand; `devtools.gear_server.GearServer` runs it in a
subprocess on a private loopback port.  What its ``Server`` (gear 0.16.0,
``gear/__init__.py``) does that gearmand does not, and what our side makes
of it, each tested below:

- It answers SUBMIT_JOB* (every priority, foreground and background),
  GRAB_JOB_UNIQ, PRE_SLEEP, CAN_DO, CANT_DO, SET_CLIENT_ID, WORK_* and
  GET_STATUS; the worker's default GRAB_JOB_UNIQ, so jobs run.
- Other packets it drops without a reply: GRAB_JOB, GRAB_JOB_ALL (a worker
  made with ``reducer_info=True`` never gets a job), CAN_DO_TIMEOUT (a task
  registered with a timeout is not registered at all), SUBMIT_JOB_EPOCH,
  SUBMIT_REDUCE_JOB*, GET_STATUS_UNIQUE, OPTION_REQ, ECHO_REQ.  Our core
  sees the silence when a later request is answered (and sends a GET_STATUS
  fence behind epoch and reduce submissions to make that happen at once):
  epoch and reduce jobs raise ``gearman.errors.ProtocolError`` saying the
  server does not support them, ``exceptions=True`` clients work (gear
  forwards WORK_EXCEPTION anyway), ``get_status_by_unique`` returns at its
  timeout with ``timed_out`` set, and the connection goes on with its
  replies paired correctly.  Jobs nobody can take time out like any job
  without a worker (``timed_out``).
- Its STATUS_RES leaves numerator and denominator empty before any
  WORK_STATUS (read as 0), and it sends the WORK_FAIL it makes for a job
  whose worker disconnected with the REQ magic (taken: the job fails).
- Admin: ``status``, ``workers`` and ``cancel job`` only; every other
  command gets no reply, so it raises
  ``gearman.errors.InvalidAdminClientState`` at the admin client's
  ``poll_timeout``, and the next command works.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
from _binding_helpers import (
    DEADLINE,
    BackgroundWorker,
    reverse,
    serving,
    unique_name,
    wait_for_workers,
    wait_until,
)

import gearman_proto as proto
from devtools.gear_server import GearServer, gear_available
from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    GearmanJob,
    GearmanWorker,
    errors,
)

#: seconds a call waits for what gear's Server never answers.
SILENCE = 0.3


@pytest.fixture(scope="module")
def gear_server() -> Iterator[GearServer]:
    """gear's Server for this module; skips (fails under CI) without ``gear``."""
    if not gear_available():
        message = "the gear package is not installed: pip install '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must not skip the gear tests", pytrace=False)
        pytest.skip(message)
    with GearServer() as server:
        yield server


@pytest.fixture
def address(gear_server: GearServer) -> str:
    return gear_server.address


# ------------------------------------------------------------------ client


def test_foreground_job_with_its_updates(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("fg")

    def work(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_status(job, 1, 2)
        worker.send_job_data(job, b"part")
        worker.send_job_warning(job, b"careful")
        return job.data[::-1]

    with serving(runtime, [address], {task: work}):
        request = runtime.GearmanClient([address]).submit_job(task, b"abc", poll_timeout=DEADLINE)
    assert (request.state, request.result) == (JOB_COMPLETE, b"cba")
    assert list(request.data_updates) == [b"part"]
    assert list(request.warning_updates) == [b"careful"]
    assert (request.status["numerator"], request.status["denominator"]) == (1, 2)
    assert request.job.handle.startswith("H:")


@pytest.mark.parametrize("priority", [PRIORITY_HIGH, PRIORITY_LOW])
def test_background_job_runs(runtime: types.ModuleType, address: str, priority: Any) -> None:
    task = unique_name("bg")
    ran = runtime.concurrency.Event()
    seen: list[Any] = []

    def work(worker: GearmanWorker, job: GearmanJob) -> bytes:
        seen.append((job.data, job.unique))
        ran.set()
        return b""

    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: work}):
        request = client.submit_job(
            task,
            b"d",
            unique="u-1",
            background=True,
            priority=priority,
            poll_timeout=DEADLINE,
        )
        assert request.state == JOB_CREATED
        assert ran.wait(DEADLINE)
    assert seen == [(b"d", "u-1")]  # GRAB_JOB_UNIQ: the unique comes along


def test_status_of_a_running_job_then_of_the_finished_one(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("status")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def hold(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        assert release.wait(DEADLINE)
        return b""

    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: hold}):
        request = client.submit_job(task, b"x", background=True, poll_timeout=DEADLINE)
        assert started.wait(DEADLINE)
        client.get_job_status(request, poll_timeout=DEADLINE)
        assert not request.timed_out
        # gear sends empty progress fields before any WORK_STATUS: 0 and 0.
        assert {k: request.status[k] for k in ("known", "running", "numerator", "denominator")} == {
            "known": True,
            "running": True,
            "numerator": 0,
            "denominator": 0,
        }
        by_handle = client.get_status_by_handle(request.job.handle, poll_timeout=DEADLINE)
        assert (by_handle["known"], by_handle["running"], by_handle["timed_out"]) == (
            True,
            True,
            False,
        )
        release.set()

        def forgotten() -> bool:
            status = client.get_status_by_handle(request.job.handle, poll_timeout=DEADLINE)
            return not status["known"] and not status["timed_out"]

        wait_until(runtime, forgotten, message="gear forgets the finished job")


def test_status_by_unique_times_out_and_the_client_goes_on(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("unique")
    client = runtime.GearmanClient([address])
    status = client.get_status_by_unique("u-never", poll_timeout=SILENCE)
    assert (status["timed_out"], status["known"]) == (True, False)
    with serving(runtime, [address], {task: reverse}):
        request = client.submit_job(task, b"ab", poll_timeout=DEADLINE)
    assert (request.state, request.result) == (JOB_COMPLETE, b"ba")


@pytest.mark.parametrize("kind", ["epoch", "reducer"])
def test_epoch_and_reduce_jobs_raise_and_the_client_goes_on(
    runtime: types.ModuleType, address: str, kind: str
) -> None:
    task = unique_name(kind)
    client = runtime.GearmanClient([address])
    extra: dict[str, Any] = {"epoch": int(time.time())} if kind == "epoch" else {"reducer": "r"}
    with serving(runtime, [address], {task: reverse}):
        # Raised, not timed out: the fence behind the submission proves the silence.
        with pytest.raises(errors.ProtocolError, match="does not support"):
            client.submit_job(task, b"xy", poll_timeout=DEADLINE, **extra)
        request = client.submit_job(task, b"xy", poll_timeout=DEADLINE)
    assert (request.state, request.result) == (JOB_COMPLETE, b"yx")


def test_exceptions_client_works_and_gets_the_exception(
    runtime: types.ModuleType, address: str
) -> None:
    """gear ignores OPTION_REQ ``exceptions`` but forwards WORK_EXCEPTION to every client."""
    task = unique_name("boom")

    def boom(worker: GearmanWorker, job: GearmanJob) -> bytes:
        raise ValueError("boom")

    client = runtime.GearmanClient([address], exceptions=True)
    with serving(runtime, [address], {task: boom}, send_exceptions=True):
        request = client.submit_job(task, b"x", poll_timeout=DEADLINE)
    assert request.state == JOB_FAILED
    assert b"boom" in request.exception


def test_a_job_whose_worker_disconnects_fails(runtime: types.ModuleType, address: str) -> None:
    """gear fails it with a WORK_FAIL carrying the REQ magic; the client takes it."""
    task = unique_name("dropped")
    assigned = threading.Event()
    host, port = address.rsplit(":", 1)

    def drop_the_job() -> None:  # a raw worker in an OS thread, whatever the runtime
        worker = proto.WorkerConnection()
        with socket.create_connection((host, int(port)), timeout=DEADLINE) as sock:
            worker.queue(proto.CanDo(function=task.encode()))  # then GRAB_JOB_UNIQ
            while not assigned.is_set():
                sock.sendall(worker.data_to_send())
                data = sock.recv(65536)
                if not data:
                    return
                worker.receive_data(data)
                if any(isinstance(e, proto.JobAssigned) for e in worker.next_events()):
                    assigned.set()  # leaving the block closes the socket: the job is dropped

    thread = threading.Thread(target=drop_the_job, daemon=True)
    thread.start()
    request = runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=DEADLINE)
    thread.join(DEADLINE)
    assert assigned.is_set()
    assert (request.state, request.timed_out) == (JOB_FAILED, False)


@pytest.mark.parametrize("how", ["reducer_info", "CAN_DO_TIMEOUT"])
def test_jobs_gear_never_hands_out_time_out(
    runtime: types.ModuleType, address: str, how: str
) -> None:
    """A GRAB_JOB_ALL (``reducer_info=True``) or a CAN_DO_TIMEOUT registration gets
    no answer from gear: the job waits for a worker, as on a server without one."""
    task = unique_name("never")
    worker = runtime.GearmanWorker([address], reducer_info=how == "reducer_info")
    worker.register_task(task, reverse, timeout=5 if how == "CAN_DO_TIMEOUT" else None)
    with BackgroundWorker(runtime, worker):
        request = runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=SILENCE)
    assert (request.state, request.timed_out) == (JOB_CREATED, True)


# ------------------------------------------------------------------ admin


def test_admin_status_and_workers(runtime: types.ModuleType, address: str) -> None:
    task, client_id = unique_name("adm"), unique_name("id")
    worker = runtime.GearmanWorker([address])
    worker.set_client_id(client_id)
    worker.register_task(task, reverse)
    admin = runtime.GearmanAdminClient([address], poll_timeout=DEADLINE)
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, address, task)
        runtime.GearmanClient([address]).submit_job(
            task + "-idle", b"x", background=True, poll_timeout=DEADLINE
        )
        status = {line["task"]: line for line in admin.get_status()}
        (mine,) = [w for w in admin.get_workers() if w["client_id"] == client_id]
    assert status[task] == {"task": task, "queued": 0, "running": 0, "workers": 1}
    assert status[task + "-idle"] == {
        "task": task + "-idle",
        "queued": 1,
        "running": 0,
        "workers": 0,
    }
    assert mine["tasks"] == (task,)


def test_admin_cancel_job(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("cancel")
    request = runtime.GearmanClient([address]).submit_job(
        task, b"x", background=True, poll_timeout=DEADLINE
    )
    admin = runtime.GearmanAdminClient([address], poll_timeout=DEADLINE)
    assert [s["queued"] for s in admin.get_status() if s["task"] == task] == [1]
    assert admin.cancel_job(request.job.handle) == "OK"
    with pytest.raises(errors.AdminCommandError, match="UNKNOWN_JOB"):
        admin.cancel_job(request.job.handle)
    # gear lists a function without workers only while it has jobs.
    assert [s for s in admin.get_status() if s["task"] == task] == []


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("ping_server", ()),
        ("get_version", ()),
        ("get_pid", ()),
        ("get_verbose", ()),
        ("get_jobs", ()),
        ("get_unique_jobs", ()),
        ("get_priority_status", ()),
        ("send_maxqueue", ("t", 1)),
        ("send_shutdown", ()),
        ("create_function", ("t",)),
        ("drop_function", ("t",)),
    ],
)
def test_admin_commands_gear_lacks_raise_at_poll_timeout(
    runtime: types.ModuleType, address: str, method: str, arguments: tuple[Any, ...]
) -> None:
    admin = runtime.GearmanAdminClient([address], poll_timeout=SILENCE)
    with pytest.raises(errors.InvalidAdminClientState, match="no reply"):
        getattr(admin, method)(*arguments)
    assert isinstance(admin.get_status(), tuple)  # the admin client goes on
