"""One test per python-gearman 2.0.2 defect we fix (ANCHORS.md 2.11), against gearmand.

Each test states the old behaviour it would catch.  Items not listed here:
1 (JOB_ASSIGN recursion: our worker grabs with GRAB_JOB_UNIQ; every worker
test exercises the assignment path), 16 and 17 (covered by every test that
checks ``complete`` and by the event loop draining all parsed packets).
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import socket
import time
import tracemalloc
import types
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    reverse,
    serving,
    sockets_connected_to,
    unique_name,
    wait_until,
)

from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    GearmanJob,
    errors,
)
from gearman.testing import Gearmand


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def exception_worker(runtime: types.ModuleType) -> Any:
    """A worker class of *runtime* that ends every job with WORK_EXCEPTION
    carrying the task's result."""

    class ExceptionWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            self.send_job_exception(current_job, job_result)
            return False

    return ExceptionWorker


# 2 ------------------------------------------------------------ '-' unique


def test_dash_unique_is_passed_through_so_equal_data_coalesces(
    runtime: types.ModuleType, address: str
) -> None:
    """Old: the client replaced '-' by the data; now gearmand sees '-' (and keys on data)."""
    task = unique_name("dash")
    client = runtime.GearmanClient([address])
    first = client.submit_job(task, b"payload-key", unique="-", background=True, poll_timeout=10)
    second = client.submit_job(task, b"payload-key", unique="-", background=True, poll_timeout=10)
    other = client.submit_job(task, b"other-key", unique="-", background=True, poll_timeout=10)
    assert first.job.handle == second.job.handle
    assert other.job.handle != first.job.handle
    assert first.job.unique == "-"
    with runtime.GearmanAdminClient([address]) as admin:
        uniques = [u["unique"] for u in admin.get_unique_jobs()]
    assert "-" in uniques
    assert "payload-key" not in uniques


# 3 ----------------------------------------------------------- request leak


def test_no_request_leak_after_many_jobs(runtime: types.ModuleType, gearmand_factory: Any) -> None:
    """Old: background and wait_until_complete=False requests stayed tracked forever."""
    server: Gearmand = gearmand_factory(verbose=None)
    background_task, foreground_task = unique_name("bg"), unique_name("fg")
    with serving(runtime, [server.address], {foreground_task: lambda worker, job: b""}):
        client = runtime.GearmanClient([server.address])

        def one_round(background: int = 2000, foreground: int = 500) -> None:
            created = client.submit_multiple_jobs(
                [{"task": background_task, "data": b"x"}] * background,
                background=True,
                poll_timeout=30,
            )
            assert all(r.state == JOB_CREATED for r in created)
            requests = client.submit_multiple_jobs(
                [{"task": foreground_task, "data": b"x"}] * foreground,
                wait_until_complete=False,
                poll_timeout=30,
            )
            client.wait_until_jobs_completed(requests, poll_timeout=30)
            assert all(r.state == JOB_COMPLETE for r in requests)

        one_round()
        assert client._session.tracked == 0
        one_round()
        one_round()  # the finished-handle memory of the connection is now full
        connection = next(iter(client._session.connections.values()))
        assert connection.foreground_handles == ()
        assert connection.unanswered == ()

        only_ours = [tracemalloc.Filter(True, "*gearman*")]
        tracemalloc.start()
        try:
            one_round()
            gc.collect()
            before = tracemalloc.take_snapshot().filter_traces(only_ours)
            one_round()
            one_round()
            gc.collect()
            after = tracemalloc.take_snapshot().filter_traces(only_ours)
        finally:
            tracemalloc.stop()
        growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        assert client._session.tracked == 0
        assert growth < 64 * 1024, f"memory grew by {growth} bytes over 5000 jobs"


# 4 ----------------------------------------------- status after completion


def test_status_after_completion_and_by_handle(runtime: types.ModuleType, address: str) -> None:
    """Old: get_job_status after completion raised KeyError; no status by bare handle."""
    task = unique_name("done")
    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        request = client.submit_job(task, b"ab", poll_timeout=10)
    assert request.state == JOB_COMPLETE
    client.get_job_status(request, poll_timeout=10)
    assert (request.status["known"], request.timed_out) == (False, False)
    other = runtime.GearmanClient([address])
    assert other.get_status_by_handle(request.job.handle, poll_timeout=10)["known"] is False
    by_unique = other.get_status_by_unique(request.job.unique, poll_timeout=10)
    assert (by_unique["known"], by_unique["timed_out"]) == (False, False)


# 5 ------------------------------------------------------------ ERROR packets


def test_queue_full_error_fails_the_request_instead_of_hanging(
    runtime: types.ModuleType, address: str
) -> None:
    """Old: ERROR QUEUE_ERROR was only logged; the request waited forever."""
    task = unique_name("full")
    with runtime.GearmanAdminClient([address]) as admin:
        admin.create_function(task)
        admin.send_maxqueue(task, 1)
    client = runtime.GearmanClient([address])
    client.submit_job(task, b"fills the queue", background=True, poll_timeout=10)
    began = time.monotonic()
    request = client.submit_job(task, b"refused", poll_timeout=10)
    assert time.monotonic() - began < 5
    assert (request.state, request.complete, request.timed_out) == (JOB_FAILED, True, False)
    assert request.error is not None
    assert request.error.code == b"QUEUE_ERROR"
    # the connection is still fine for the next job
    assert client.submit_job(unique_name("free"), b"", background=True).state == JOB_CREATED


# 6 ---------------------------- deadline used up by the accept phase


def test_deadline_spent_before_every_job_was_accepted_reports_timed_out(
    runtime: types.ModuleType,
    gearmand_factory: Any,
) -> None:
    """Old: a job created in time came back timed_out=False though it was not complete."""
    live, silent = gearmand_factory(), gearmand_factory()
    task = unique_name("split")
    client = runtime.GearmanClient([live.address, silent.address])
    os.kill(silent.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        requests = client.submit_multiple_jobs(
            [{"task": task, "data": b"1"}, {"task": task, "data": b"2"}], poll_timeout=0.3
        )
        # read while the server is still silent: a runtime whose readers run
        # on their own would take its late JOB_CREATED once it resumes
        by_state = {r.state: r for r in requests}
        assert set(by_state) == {JOB_CREATED, JOB_PENDING}
        created = by_state[JOB_CREATED]
        assert (created.complete, created.timed_out) == (False, True)
        assert by_state[JOB_PENDING].timed_out is True
    finally:
        os.kill(silent.pid, signal.SIGCONT)


# 7 ----------------------------------------------- exceptions are logged


def test_worker_exception_is_logged_with_its_traceback(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Old: an exception in a task was swallowed without a word."""
    task = unique_name("log")

    def broken(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise LookupError("the-detail")

    caplog.set_level(logging.ERROR, logger="gearman")
    with serving(runtime, [address], {task: broken}):
        request = runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert request.state == JOB_FAILED
    logged = [r for r in caplog.records if r.name.startswith("gearman") and r.exc_info]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert "Traceback (most recent call last)" in caplog.text
    assert "LookupError: the-detail" in caplog.text


# 8 -------------------------------------------------- a task returning None


def test_task_returning_none_completes_with_empty_data(
    runtime: types.ModuleType, address: str
) -> None:
    """Old: work() died with TypeError on a None result."""
    task = unique_name("none")

    def nothing(worker: runtime.GearmanWorker, job: GearmanJob) -> None:
        return None

    with serving(runtime, [address], {task: nothing}) as runner:
        client = runtime.GearmanClient([address])
        first = client.submit_job(task, b"1", poll_timeout=10)
        second = client.submit_job(task, b"2", poll_timeout=10)
        assert runner.is_alive()
        assert runner.error is None
    assert (first.state, first.result) == (JOB_COMPLETE, b"")
    assert (second.state, second.result) == (JOB_COMPLETE, b"")


# 9 ----------------------------------------------------- WORK_EXCEPTION


def test_work_exception_ends_the_request_of_an_opted_in_client(
    runtime: types.ModuleType, address: str
) -> None:
    """Old: WORK_EXCEPTION never ended a request (and no OPTION_REQ was sent)."""
    task = unique_name("exc")
    tasks = {task: lambda worker, job: b"the-exception"}
    with serving(runtime, [address], tasks, exception_worker(runtime)):
        client = runtime.GearmanClient([address], exceptions=True)
        began = time.monotonic()
        request = client.submit_job(task, b"", poll_timeout=10)
    assert time.monotonic() - began < 5
    assert (request.state, request.complete, request.timed_out) == (JOB_FAILED, True, False)
    assert request.exception == b"the-exception"


def test_client_without_the_option_gets_the_failure_with_trailing_nul(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Old: gearmand's WORK_FAIL 'handle\\0' raised KeyError in the client."""
    task = unique_name("nul")
    caplog.set_level(logging.WARNING)
    tasks = {task: lambda worker, job: b"hidden"}
    with serving(runtime, [address], tasks, exception_worker(runtime)):
        client = runtime.GearmanClient([address])  # no exceptions option
        request = client.submit_job(task, b"", poll_timeout=10)
        (connection,) = client._session.connections.values()  # the core's connection
        assert (request.state, request.exception, request.lost) == (JOB_FAILED, None, False)
        assert not request.timed_out
        # the same connection carries on: nothing was taken for a protocol error
        follow_up = client.submit_job(task, b"", poll_timeout=10)
        assert follow_up.state == JOB_FAILED
        assert tuple(client._session.connections.values()) == (connection,)
    assert not [r for r in caplog.records if r.name.startswith("gearman.io")]


# 10 -------------------------------------------------- send_job_exception


def _job_not_found_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any("JOB_NOT_FOUND" in r.getMessage() for r in caplog.records)


def test_send_job_exception_sends_only_work_exception(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Old: WORK_EXCEPTION then WORK_FAIL, which gearmand answers with JOB_NOT_FOUND."""
    task, sync_task = unique_name("only"), unique_name("sync")
    caplog.set_level(logging.WARNING)
    worker = exception_worker(runtime)([address])
    worker.register_task(task, lambda w, job: b"x")
    worker.register_task(sync_task, lambda w, job: b"y")
    with BackgroundWorker(runtime, worker):
        client = runtime.GearmanClient([address], exceptions=True)
        assert client.submit_job(task, b"", poll_timeout=10).exception == b"x"
        # gearmand answers a worker connection in order: once the next job
        # has been handed out and ended, any ERROR for the first one was read.
        assert client.submit_job(sync_task, b"", poll_timeout=10).exception == b"y"
    assert not _job_not_found_logged(caplog)


def test_job_not_found_would_be_seen_in_the_log(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Control for the test above: a real JOB_NOT_FOUND from gearmand is logged."""
    task = unique_name("late")
    caplog.set_level(logging.WARNING)
    calls: list[int] = []

    def late_once(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(1)
        if len(calls) == 1:  # outlive CAN_DO_TIMEOUT: the completion comes too late

            def requeued() -> bool:
                with runtime.GearmanAdminClient([address]) as admin:
                    return any(j["handle"] == job.handle and j["retries"] for j in admin.get_jobs())

            wait_until(runtime, requeued, interval=0.05, message="job re-queued")
        return b""

    worker = runtime.GearmanWorker([address])
    worker.register_task(task, late_once, timeout=0.2)
    with BackgroundWorker(runtime, worker):
        assert runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10).complete
        wait_until(runtime, lambda: _job_not_found_logged(caplog), message="JOB_NOT_FOUND logged")


# 11 ------------------------------------------------- admin reply parsing


def test_admin_replies_are_parsed_tolerantly(
    runtime: types.ModuleType, address: str, gearmand: Gearmand
) -> None:
    """Old: maxqueue failed on 'OK\\r\\n', version kept 'OK ', shutdown hid 'ERR'."""
    with runtime.GearmanAdminClient([address]) as admin:
        task = unique_name("mq")
        admin.create_function(task)
        assert admin.send_maxqueue(task, 5) == "OK"
        version = admin.get_version()
        assert not version.startswith("OK")
        assert version.strip() == version
        assert admin.get_pid() == str(gearmand.pid)
        with pytest.raises(errors.AdminCommandError):
            admin.send_shutdown()
        with pytest.raises(errors.AdminCommandError):
            admin.cancel_job("H:none:1")
        assert admin.get_pid() == str(gearmand.pid)  # still in step after the errors


# 12 ------------------------------------------------ packet types above 34


def test_status_res_unique_is_understood(runtime: types.ModuleType, address: str) -> None:
    """Old: packet types 35-42 raised ProtocolError (STATUS_RES_UNIQUE is 42)."""
    unique = unique_name("u")
    client = runtime.GearmanClient([address])
    client.submit_job(unique_name("nobody"), b"", unique=unique, background=True, poll_timeout=10)
    status = client.get_status_by_unique(unique, poll_timeout=10)
    assert (status["known"], status["timed_out"]) == (True, False)


# 13 --------------------------------------------- str names, socket options


def test_str_task_names_work_on_python_3(runtime: types.ModuleType, address: str) -> None:
    """Old (Python 3 forks): a worker registered with a str name died on its first job."""
    task = unique_name("str")
    with serving(runtime, [address], {task: reverse}) as runner:
        request = runtime.GearmanClient([address]).submit_job(task, "text", poll_timeout=10)
        assert runner.error is None
    assert request.result == b"txet"


def test_sockets_have_tcp_nodelay(runtime: types.ModuleType, gearmand_factory: Any) -> None:
    """Old: TCP_NODELAY was set with an 8-byte struct on 64-bit systems."""
    server: Gearmand = gearmand_factory()  # the client's is the only connection to it
    client = runtime.GearmanClient([server.address])
    client.submit_job(unique_name("nobody"), b"", background=True, poll_timeout=10)
    with sockets_connected_to(server.host, server.port) as ours:
        (link,) = ours
        assert link.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# 14 ------------------------------------------------------------ big payloads


def test_large_payload_round_trip(runtime: types.ModuleType, address: str) -> None:
    """Old: 4 KiB reads and a quadratic buffer made big payloads crawl."""
    task = unique_name("big")
    payload = bytes(range(256)) * (8 * 4096)  # 8 MiB
    with serving(runtime, [address], {task: reverse}):
        began = time.monotonic()
        request = runtime.GearmanClient([address]).submit_job(task, payload, poll_timeout=30)
        elapsed = time.monotonic() - began
    assert request.result == payload[::-1]
    assert elapsed < 10


# 15 ----------------------------------------------------- descriptors >= 1024


def test_file_descriptors_above_1024(runtime: types.ModuleType, gearmand_factory: Any) -> None:
    """Old: select() raised ValueError for a descriptor >= 1024."""
    server: Gearmand = gearmand_factory()  # before the fillers: only our links go to it
    address = server.address
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    fillers = []
    try:
        while True:
            filler = socket.socket()
            fillers.append(filler)
            if filler.fileno() >= 1030:
                break
        task = unique_name("fd")
        with serving(runtime, [address], {task: reverse}) as runner:
            client = runtime.GearmanClient([address])
            request = client.submit_job(task, b"fd", poll_timeout=10)
            with runtime.GearmanAdminClient([address]) as admin:
                assert admin.ping_server() >= 0
                with sockets_connected_to(server.host, server.port) as ours:
                    # the worker's, the client's and the admin client's links
                    assert len(ours) == 3
                    assert min(fd for link in ours for fd in link.fds) >= 1024
            assert runner.error is None
        assert request.result == b"df"
    finally:
        for filler in fillers:
            filler.close()
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
