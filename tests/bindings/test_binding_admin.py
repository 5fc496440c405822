"""``GearmanAdminClient`` of every runtime against a real gearmand.

Every method of ANCHORS.md 2.7 (python-gearman 2.0.2 plus master) and our
additions, with the effects of ``maxqueue`` and ``cancel job`` on clients.
"""

from __future__ import annotations

import os
import signal
import types
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    admin_status,
    reverse,
    serving,
    unique_name,
    wait_for_workers,
)

import gearman
from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    GearmanJob,
    admin_client,
    errors,
)
from gearman.admin_client import DEFAULT_ADMIN_CLIENT_TIMEOUT, ECHO_STRING, GearmanAdminClient
from gearman.testing import Gearmand, pick_free_port


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


@pytest.fixture
def admin(runtime: types.ModuleType, address: str) -> GearmanAdminClient:
    return runtime.GearmanAdminClient([address])


def test_module_constants() -> None:
    """python-gearman's module path of the class: the blocking binding's own."""
    assert ECHO_STRING == "ping? pong!"
    assert DEFAULT_ADMIN_CLIENT_TIMEOUT == 10.0
    assert admin_client.GearmanAdminClient is gearman.GearmanAdminClient


def test_ping_server(admin: GearmanAdminClient) -> None:
    elapsed = admin.ping_server()
    assert isinstance(elapsed, float)
    assert 0 <= elapsed < 5


def test_get_version_has_no_ok_prefix(admin: GearmanAdminClient) -> None:
    version = admin.get_version()
    assert isinstance(version, str)
    assert version[:1].isdigit(), version  # no "OK " prefix


def test_get_pid_is_the_server_process(admin: GearmanAdminClient, gearmand: Gearmand) -> None:
    assert admin.get_pid() == str(gearmand.pid)


def test_get_verbose(admin: GearmanAdminClient) -> None:
    assert admin.get_verbose() == "INFO"  # devtools starts gearmand with --verbose INFO


def test_get_status_counts_queued_running_and_workers(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    task = unique_name("status")
    client = runtime.GearmanClient([address])
    for _ in range(3):
        client.submit_job(task, b"x", background=True, poll_timeout=10)
    (line,) = [s for s in admin.get_status() if s["task"] == task]
    assert line == {"task": task, "queued": 3, "running": 0, "workers": 0}
    assert all(isinstance(line[k], int) for k in ("queued", "running", "workers"))

    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def hold(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        assert release.wait(10)
        return b""

    with serving(runtime, [address], {task: hold}):
        assert started.wait(10)
        (line,) = [s for s in admin.get_status() if s["task"] == task]
        assert (line["queued"], line["running"], line["workers"]) == (3, 1, 1)
        release.set()


def test_get_workers_lists_tasks_and_client_ids(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    first, second, client_id = unique_name("w1"), unique_name("w2"), unique_name("id")
    worker = runtime.GearmanWorker([address])
    worker.set_client_id(client_id)
    worker.register_task(first, reverse)
    worker.register_task(second.encode(), reverse)
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, address, second)
        mine = [w for w in admin.get_workers() if w["client_id"] == client_id]
    (entry,) = mine
    assert set(entry) == {"file_descriptor", "ip", "client_id", "tasks"}
    assert isinstance(entry["tasks"], tuple)
    assert set(entry["tasks"]) == {first, second}
    assert all(isinstance(entry[k], str) for k in ("file_descriptor", "ip", "client_id"))


def test_get_priority_status(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    task = unique_name("prio")
    client = runtime.GearmanClient([address])
    for priority, count in (("HIGH", 2), (None, 1), ("LOW", 3)):
        for _ in range(count):
            client.submit_job(task, b"", priority=priority, background=True, poll_timeout=10)
    (line,) = [s for s in admin.get_priority_status() if s["task"] == task]
    assert line == {"task": task, "high": 2, "normal": 1, "low": 3, "workers": 0}


def test_get_jobs_and_get_unique_jobs(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    task, unique = unique_name("jobs"), unique_name("uniq")
    client = runtime.GearmanClient([address])
    background = client.submit_job(task, b"", unique=unique, background=True, poll_timeout=10)
    foreground = client.submit_job(task, b"", wait_until_complete=False, poll_timeout=10)
    jobs = {j["handle"]: j for j in admin.get_jobs()}
    assert jobs[background.job.handle]["background"] is True
    assert jobs[foreground.job.handle]["background"] is False
    assert jobs[background.job.handle]["retries"] == 0
    assert jobs[background.job.handle]["ignored"] is False
    # python-gearman master's names for the same columns
    assert jobs[background.job.handle]["queued"] == 0
    assert jobs[background.job.handle]["canceled"] == 0
    assert jobs[background.job.handle]["enabled"] == 1
    uniques = [u["unique"] for u in admin.get_unique_jobs()]
    assert unique in uniques
    assert foreground.job.unique in uniques


def test_create_and_drop_function(admin: GearmanAdminClient) -> None:
    task = unique_name("created")
    assert admin.create_function(task) == "OK"
    assert {"task": task, "queued": 0, "running": 0, "workers": 0} in admin.get_status()
    assert admin.drop_function(task.encode()) == "OK"
    assert all(s["task"] != task for s in admin.get_status())


def test_send_maxqueue_then_queue_error_fails_the_request(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    task = unique_name("maxq")
    admin.create_function(task)  # gearmand ignores a limit set before the function exists
    assert admin.send_maxqueue(task, 1) == "OK"
    client = runtime.GearmanClient([address])
    first = client.submit_job(task, b"1", background=True, poll_timeout=10)
    assert first.state == JOB_CREATED
    refused = client.submit_job(task, b"2", poll_timeout=10)  # foreground: must not hang
    assert (refused.state, refused.complete, refused.timed_out) == (JOB_FAILED, True, False)
    assert refused.error is not None
    assert refused.error.code == b"QUEUE_ERROR"
    refused_bg = client.submit_job(task, b"3", background=True, poll_timeout=10)
    assert refused_bg.state == JOB_FAILED
    assert refused_bg.error.code == b"QUEUE_ERROR"
    assert admin.send_maxqueue(task, 0) == "OK"  # 0: no limit
    assert client.submit_job(task, b"4", background=True, poll_timeout=10).state == JOB_CREATED
    assert admin.send_maxqueue(task, None) == "OK"


def test_cancel_job_fails_a_queued_foreground_job(
    runtime: types.ModuleType, admin: GearmanAdminClient, address: str
) -> None:
    task = unique_name("cancel")
    client = runtime.GearmanClient([address])
    request = client.submit_job(task, b"x", wait_until_complete=False, poll_timeout=10)
    assert admin.cancel_job(request.job.handle) == "OK"
    client.wait_until_jobs_completed([request], poll_timeout=10)
    assert (request.state, request.complete, request.timed_out) == (JOB_FAILED, True, False)
    # the job stays listed as abandoned until a worker would grab it
    with serving(runtime, [address], {task: reverse}):
        survivor = client.submit_job(task, b"ok", poll_timeout=10)
    assert (survivor.state, survivor.result) == (JOB_COMPLETE, b"ko")


def test_cancel_unknown_job_raises(admin: GearmanAdminClient) -> None:
    with pytest.raises(errors.AdminCommandError) as caught:
        admin.cancel_job("H:nowhere:1")
    assert caught.value.code == "UNKNOWN_JOB"
    assert isinstance(caught.value, errors.InvalidAdminClientState)
    assert admin.ping_server() >= 0  # the connection is still usable


def test_send_shutdown_raises_because_gearmand_has_no_such_command(
    admin: GearmanAdminClient, gearmand: Gearmand
) -> None:
    for graceful in (True, False):
        with pytest.raises(errors.AdminCommandError) as caught:
            admin.send_shutdown(graceful=graceful)
        assert caught.value.code == "UNKNOWN_COMMAND"
    assert gearmand.running
    assert admin.get_pid() == str(gearmand.pid)


def test_replies_follow_commands_in_order(admin: GearmanAdminClient, gearmand: Gearmand) -> None:
    for _ in range(3):
        assert admin.get_pid() == str(gearmand.pid)
        assert isinstance(admin.get_status(), tuple)
        assert admin.get_version()
        assert isinstance(admin.get_workers(), tuple)


def test_poll_timeout_raises_invalid_admin_client_state(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    os.kill(server.pid, signal.SIGSTOP)  # the kernel still accepts; nobody answers
    try:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=0.3)
        with pytest.raises(errors.InvalidAdminClientState):
            admin.get_status()
    finally:
        os.kill(server.pid, signal.SIGCONT)
    # afterwards a fresh connection works again (the late reply is not taken for another)
    assert admin.get_pid() == str(server.pid)
    assert isinstance(admin.get_status(), tuple)


def test_unreachable_server_raises_server_unavailable(runtime: types.ModuleType) -> None:
    admin = runtime.GearmanAdminClient([f"127.0.0.1:{pick_free_port()}"], connect_timeout=2.0)
    with pytest.raises(errors.ServerUnavailable):
        admin.get_status()


def test_exactly_one_server(runtime: types.ModuleType, address: str) -> None:
    with pytest.raises(errors.InvalidAdminClientState):
        runtime.GearmanAdminClient([address, "127.0.0.1:1"])


def test_context_manager_closes_the_connection(runtime: types.ModuleType, address: str) -> None:
    with runtime.GearmanAdminClient([address]) as admin:
        admin.ping_server()
        (connection,) = admin.connection_list
        assert connection.connected
    assert not connection.connected
    assert admin.ping_server() >= 0  # reconnects on demand


def test_status_of_function_with_a_worker(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("one")
    with serving(runtime, [address], {task: reverse}):
        wait_for_workers(runtime, address, task)
        assert admin_status(runtime, address, task) == {
            "task": task,
            "queued": 0,
            "running": 0,
            "workers": 1,
        }
