"""Several servers, dead servers, killed and restarted servers, IPv6.

ANCHORS.md 2.10 (``max_retries``, lost jobs, server choice) and the
robustness our binding adds beyond python-gearman (ANCHORS.md 4, item 7):
connect failures skipped, jobs spread over servers, one worker loop for
several servers, reconnection and re-registration after a restart.

Servers that are killed or restarted come from ``gearmand_factory``.  A
server "that accepts but never answers" is a real gearmand stopped with
SIGSTOP: the kernel still completes the TCP handshake.
"""

from __future__ import annotations

import socket
import time
import types
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    admin_status,
    reverse,
    serving,
    stopped,
    unique_name,
    wait_for_workers,
    wait_until,
)

from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_UNKNOWN,
    GearmanJob,
    errors,
)
from gearman.testing import Gearmand, pick_free_port

# ---------------------------------------------------- max_retries and lost jobs


def test_request_cut_off_before_job_created_is_resent_elsewhere(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    silent, live = gearmand_factory(), gearmand_factory()
    task = unique_name("retry")
    with serving(runtime, [live.address], {task: reverse}):
        client = runtime.GearmanClient([silent.address, live.address])
        request = client._create_request_from_dictionary(
            {"task": task, "data": b"abc"}, max_retries=1
        )
        with stopped(silent):
            client.send_job_request(request)
            assert str(request.job.connection.server) == silent.address  # first in rotation
            assert request.state == "PENDING"
            silent.kill()  # the connection dies before JOB_CREATED
        client.wait_until_jobs_completed([request], poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"cba")
    assert request.connection_attempts == 2
    assert request.max_connection_attempts == 2
    assert str(request.job.connection.server) == live.address


def test_exceeded_connection_attempts_without_retries(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    silent, live = gearmand_factory(), gearmand_factory()
    client = runtime.GearmanClient([silent.address, live.address])
    request = client._create_request_from_dictionary({"task": "t", "data": b""}, max_retries=0)
    with stopped(silent):
        client.send_job_request(request)
        silent.kill()
    with pytest.raises(errors.ExceededConnectionAttempts):
        client.wait_until_jobs_completed([request], poll_timeout=5)
    assert request.connection_attempts == 1
    assert request.state == JOB_UNKNOWN


def test_exceeded_connection_attempts_when_every_attempt_fails(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    client = runtime.GearmanClient([first.address, second.address])
    request = client._create_request_from_dictionary({"task": "t", "data": b""}, max_retries=1)
    with stopped(first), stopped(second):
        client.send_job_request(request)
        assert str(request.job.connection.server) == first.address

        returned = runtime.concurrency.Event()

        def kill_each_server_the_request_reaches() -> None:
            first.kill()
            wait_until(
                runtime, lambda: request.connection_attempts == 2 or returned.is_set(), timeout=5
            )
            if not returned.is_set():
                second.kill()

        killer = runtime.concurrency.start(kill_each_server_the_request_reaches)
        try:
            with pytest.raises(errors.ExceededConnectionAttempts):
                client.wait_until_jobs_completed([request], poll_timeout=5)
        finally:
            returned.set()
            killer.join(10)
    assert request.connection_attempts == 2


def test_job_lost_after_creation_is_not_resubmitted(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    task = unique_name("lost")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()
    runs: list[bytes] = []

    def hold(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        runs.append(job.data)
        started.set()
        assert release.wait(10)
        return b"never delivered"

    with serving(runtime, [server.address], {task: hold}):
        client = runtime.GearmanClient([server.address])
        request = client.submit_job(
            task, b"x", max_retries=3, wait_until_complete=False, poll_timeout=10
        )
        assert request.state == JOB_CREATED  # the client has seen JOB_CREATED
        assert started.wait(10)  # and a worker is running the job
        server.kill()
        began = time.monotonic()
        client.wait_until_jobs_completed([request], poll_timeout=10)
        elapsed = time.monotonic() - began
        release.set()
    assert elapsed < 5, "the wait must end when the connection dies"
    assert request.lost is True
    assert (request.state, request.complete, request.timed_out) == (JOB_UNKNOWN, False, True)
    assert request.connection_attempts == 1, "a created job must never be sent again"
    assert runs == [b"x"]


# ------------------------------------------------------------ dead servers


def test_nothing_listening_raises_server_unavailable_quickly(runtime: types.ModuleType) -> None:
    client = runtime.GearmanClient([f"127.0.0.1:{pick_free_port()}"], connect_timeout=2.0)
    began = time.monotonic()
    with pytest.raises(errors.ServerUnavailable):
        client.submit_job("t", b"x", poll_timeout=10)
    assert time.monotonic() - began < 1.0


def test_client_skips_a_dead_server(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    dead = f"127.0.0.1:{pick_free_port()}"
    task = unique_name("skip")
    with serving(runtime, [gearmand.address], {task: reverse}):
        client = runtime.GearmanClient([dead, gearmand.address])
        requests = [client.submit_job(task, b"%d" % n, poll_timeout=10) for n in range(6)]
    assert [r.state for r in requests] == [JOB_COMPLETE] * 6
    assert {str(r.job.connection.server) for r in requests} == {gearmand.address}


def test_jobs_are_spread_across_two_live_servers(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    task = unique_name("spread")
    client = runtime.GearmanClient([first.address, second.address])
    requests = client.submit_multiple_jobs(
        [{"task": task, "data": b"%d" % n} for n in range(10)], background=True, poll_timeout=10
    )
    assert all(r.state == JOB_CREATED for r in requests)
    counts = [admin_status(runtime, s.address, task) for s in (first, second)]
    queued = [line["queued"] if line else 0 for line in counts]
    assert all(q > 0 for q in queued), queued
    assert sum(queued) == 10


# ------------------------------------------------------ one worker, two servers


def test_one_worker_loop_serves_two_servers(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    task = unique_name("both")
    with serving(runtime, [first.address, second.address], {task: reverse}):
        client_1 = runtime.GearmanClient([first.address])
        client_2 = runtime.GearmanClient([second.address])
        one = client_1.submit_job(task, b"one", wait_until_complete=False, poll_timeout=10)
        two = client_2.submit_job(task, b"two", wait_until_complete=False, poll_timeout=10)
        client_1.wait_until_jobs_completed([one], poll_timeout=10)
        client_2.wait_until_jobs_completed([two], poll_timeout=10)
    assert (one.result, two.result) == (b"eno", b"owt")


def test_worker_serves_the_live_server_while_another_is_down(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    live = gearmand_factory()
    dead = f"127.0.0.1:{pick_free_port()}"
    task = unique_name("half")
    with serving(runtime, [dead, live.address], {task: reverse}):
        request = runtime.GearmanClient([live.address]).submit_job(task, b"abc", poll_timeout=10)
    assert request.result == b"cba"


def test_worker_reconnects_and_reregisters_after_a_restart(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    task, client_id = unique_name("again"), unique_name("id")
    worker = runtime.GearmanWorker([server.address])
    worker.set_client_id(client_id)
    worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        assert runtime.GearmanClient([server.address]).submit_job(
            task, b"ab", poll_timeout=10
        ).result == (b"ba")
        old_pid = server.pid
        server.restart()  # same port, empty server: nothing registered
        assert server.pid != old_pid
        wait_for_workers(runtime, server.address, task)
        with runtime.GearmanAdminClient([server.address]) as admin:
            assert any(w["client_id"] == client_id for w in admin.get_workers())
        request = runtime.GearmanClient([server.address]).submit_job(task, b"cd", poll_timeout=10)
    assert request.result == b"dc"


def test_one_client_object_keeps_working_across_a_server_restart(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    task = unique_name("restart")
    with serving(runtime, [server.address], {task: reverse}):
        wait_for_workers(runtime, server.address, task)
        client = runtime.GearmanClient([server.address])
        assert client.submit_job(task, b"abc", poll_timeout=10).result == b"cba"
        server.restart()
        wait_for_workers(runtime, server.address, task)
        # max_retries=0: the closed connection is noticed before submitting,
        # so the job goes out once, on a fresh connection.
        request = client.submit_job(task, b"xyz", poll_timeout=10)
    assert request.result == b"zyx"
    assert request.connection_attempts == 1


def test_worker_survives_a_killed_server_mid_run(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    task = unique_name("mid")
    with serving(runtime, [first.address, second.address], {task: reverse}):
        wait_for_workers(runtime, first.address, task)
        first.kill()
        request = runtime.GearmanClient([second.address]).submit_job(task, b"xy", poll_timeout=10)
        assert request.result == b"yx"
        first.restart()
        wait_for_workers(runtime, first.address, task)
        again = runtime.GearmanClient([first.address]).submit_job(task, b"zw", poll_timeout=10)
    assert again.result == b"wz"


# ---------------------------------------------------------------------- IPv6


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_loopback(runtime: types.ModuleType, gearmand_factory: Any) -> None:
    server: Gearmand = gearmand_factory(host="::1")
    bracketed = f"[::1]:{server.port}"
    assert server.address == bracketed
    task = unique_name("v6")
    with serving(runtime, [bracketed], {task: reverse}):
        wait_for_workers(runtime, bracketed, task)
        client = runtime.GearmanClient([("::1", server.port)])
        request = client.submit_job(task, b"six", poll_timeout=10)
        with runtime.GearmanAdminClient(bracketed) as admin:
            assert admin.get_pid() == str(server.pid)
    assert request.result == b"xis"
    assert str(request.job.connection.server) == bracketed


def test_a_host_name_is_looked_up_within_the_deadline(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    """``localhost`` goes through the name lookup (bounded by the caller's
    deadline in every runtime) rather than the numeric fast path."""
    task = unique_name("named")
    named = f"localhost:{gearmand.port}"
    with serving(runtime, [named], {task: reverse}):
        request = runtime.GearmanClient([named]).submit_job(task, b"ab", poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"ba")
