"""The public behaviour python-gearman's own unit tests assert, against a real gearmand.

python-gearman 2.0.2 (and master) tests its client, worker and admin client
(``tests/client_tests.py``, ``worker_tests.py``, ``admin_client_tests.py``,
``protocol_tests.py``) with a fake connection manager that feeds command
handlers packets by hand.  Each assertion those tests make about public
behaviour (request states, ``complete`` / ``timed_out``, attributes, what a
worker sends, admin result shapes, module constants) is made here in a
real scenario: a gearmand from the fixtures, real workers, and servers that
are stopped (SIGSTOP), killed or restarted where the fake made a
connection fail.  Each test names the python-gearman test it ports.

The compatibility names real code reaches for (``connection_list``,
``gearman.connection.GearmanConnection``, ``poll_connections_*``,
``connection_class``, module re-exports, ``gearman.protocol``) are tested
as python-gearman 2.0.2's source defines them (``gearman/connection.py``,
``connection_manager.py``, ``protocol.py``, ``client.py``, ``worker.py``).

What concerns only the caller's own thread (``poll_connections_once`` /
``poll_connections_until_stopped``, python-gearman's sync loop) runs on the
sync runtimes only (`sync_runtimes_only`).
"""

from __future__ import annotations

import collections
import importlib
import threading
import types
from typing import Any, ClassVar

import pytest
from _binding_helpers import (
    BackgroundWorker,
    reverse,
    serving,
    stopped,
    sync_runtimes_only,
    unique_name,
    wait_for_workers,
    wait_until,
)

import gearman
import gearman_proto
from devtools.gearmand import Gearmand, pick_free_port
from gearman import errors
from gearman.constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
)
from gearman.job import GearmanJob, GearmanJobRequest


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def down_address() -> str:
    """A server that is down: nothing listens on its port."""
    return f"127.0.0.1:{pick_free_port()}"


def at(connection: Any) -> tuple[str, int]:
    """Where a python-gearman connection object points."""
    return (connection.gearman_host, connection.gearman_port)


def fail(worker: Any, job: GearmanJob) -> bytes:
    """A task that raises (the job fails)."""
    raise RuntimeError("this job fails")


def workers_row(runtime: types.ModuleType, address: str, task: str) -> dict[str, Any]:
    """gearmand's ``workers`` line of the one connection that can do *task*."""
    with runtime.GearmanAdminClient([address]) as admin:
        rows = [row for row in admin.get_workers() if task in row["tasks"]]
    assert len(rows) == 1, rows
    return rows[0]


# ====================================================================== client
# tests/client_tests.py, ClientTest


def test_establish_request_connection_skips_dead_servers(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    # ClientTest.test_establish_request_connection_complex: two failing connections and a
    # good one; the good one is chosen, the failing ones stay unconnected, and the same
    # connection is chosen again while nothing changes.
    dead_one, dead_two = down_address(), down_address()
    client = runtime.GearmanClient([dead_one, dead_two, gearmand.address])
    request = client._create_request_from_dictionary({"task": unique_name("t"), "data": b""})

    chosen = client.establish_request_connection(request)

    assert chosen in client.connection_list
    assert at(chosen) == (gearmand.host, gearmand.port)
    assert chosen.connected is True
    others = [c for c in client.connection_list if c is not chosen]
    assert sorted(f"{c.gearman_host}:{c.gearman_port}" for c in others) == sorted(
        [dead_one, dead_two]
    )
    assert [c.connected for c in others] == [False, False]
    assert client.establish_request_connection(request) is chosen


def test_empty_host_list_is_accepted_and_raises_server_unavailable_on_use(
    runtime: types.ModuleType,
) -> None:
    # ClientTest.test_establish_request_connection_dead: no connections == death; all
    # failed connections == death.
    client = runtime.GearmanClient([])
    assert list(client.connection_list) == []
    request = client._create_request_from_dictionary({"task": "t", "data": b""})
    with pytest.raises(errors.ServerUnavailable):
        client.establish_request_connection(request)
    with pytest.raises(errors.ServerUnavailable):
        client.submit_job("t", b"x", poll_timeout=5)

    dead = runtime.GearmanClient([down_address()])
    with pytest.raises(errors.ServerUnavailable):
        dead.establish_request_connection(
            dead._create_request_from_dictionary({"task": "t", "data": b""})
        )


def test_assigned_max_connection_attempts_bounds_resending(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # ClientTest.test_auto_retry_behavior: code assigns connection_attempts,
    # max_connection_attempts and state; a request whose connection fails before
    # JOB_CREATED is resent until it uses max_connection_attempts, then
    # ExceededConnectionAttempts (state UNKNOWN, attempts == max).
    silent, live = gearmand_factory(), gearmand_factory()
    client = runtime.GearmanClient([silent.address, live.address])
    request = client._create_request_from_dictionary({"task": unique_name("t"), "data": b""})
    request.connection_attempts = 0
    request.max_connection_attempts = 2
    request.state = JOB_UNKNOWN
    with stopped(silent):
        client.send_job_request(request)
        assert at(request.job.connection) == (silent.host, silent.port)
        silent.kill()  # the connection dies before JOB_CREATED
    client.wait_until_jobs_accepted([request], poll_timeout=10)
    assert request.state == JOB_CREATED
    assert request.connection_attempts == request.max_connection_attempts == 2
    assert at(request.job.connection) == (live.host, live.port)

    second_silent = gearmand_factory()
    client = runtime.GearmanClient([second_silent.address])
    request = client._create_request_from_dictionary({"task": unique_name("t"), "data": b""})
    request.connection_attempts = 0
    request.max_connection_attempts = 1
    request.state = JOB_UNKNOWN
    with stopped(second_silent):
        client.send_job_request(request)
        second_silent.kill()
    with pytest.raises(errors.ExceededConnectionAttempts):
        client.wait_until_jobs_accepted([request], poll_timeout=10)
    assert request.state == JOB_UNKNOWN
    assert request.connection_attempts == request.max_connection_attempts == 1


def test_multiple_foreground_jobs_from_job_dicts(runtime: types.ModuleType, address: str) -> None:
    # ClientTest.test_multiple_fg_job_submission: job dicts made by GearmanJob.to_dict()
    # (a job_handle key included), wait_until_complete=False: each request keeps its job,
    # priority NONE, foreground, CREATED, not complete.
    task = unique_name("fg")
    expected = [GearmanJob(None, None, task, unique_name("u"), b"data-%d" % i) for i in range(5)]
    client = runtime.GearmanClient([address])
    requests = client.submit_multiple_jobs(
        [job.to_dict() for job in expected], wait_until_complete=False, poll_timeout=10
    )
    for request, job in zip(requests, expected, strict=True):
        assert (request.job.task, request.job.unique, request.job.data) == (
            job.task,
            job.unique,
            job.data,
        )
        assert request.job.handle is not None
        assert request.priority == PRIORITY_NONE
        assert request.background is False
        assert request.state == JOB_CREATED  # nobody serves the task
        assert request.complete is False


def test_single_background_job_is_complete_once_created(
    runtime: types.ModuleType, address: str
) -> None:
    # ClientTest.test_single_bg_job_submission.
    task, unique = unique_name("bg"), unique_name("u")
    client = runtime.GearmanClient([address])
    request = client.submit_job(
        task,
        b"data",
        unique=unique,
        background=True,
        priority=PRIORITY_LOW,
        wait_until_complete=False,
        poll_timeout=10,
    )
    assert (request.job.task, request.job.unique, request.job.data) == (task, unique, b"data")
    assert request.priority == PRIORITY_LOW
    assert request.background is True
    assert request.state == JOB_CREATED
    assert request.complete is True


def test_single_foreground_job_times_out_before_job_created(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # ClientTest.test_single_fg_job_submission_timeout: no JOB_CREATED before the
    # deadline: PENDING, not complete, timed out.
    server: Gearmand = gearmand_factory()
    client = runtime.GearmanClient([server.address])
    with stopped(server):
        request = client.submit_job(
            unique_name("t"),
            b"data",
            unique=unique_name("u"),
            priority=PRIORITY_HIGH,
            poll_timeout=0.3,
        )
    assert request.priority == PRIORITY_HIGH
    assert request.background is False
    assert request.state == JOB_PENDING
    assert request.complete is False
    assert request.timed_out is True


def test_wait_for_multiple_jobs_to_complete_or_time_out(
    runtime: types.ModuleType, address: str
) -> None:
    # ClientTest.test_wait_for_multiple_jobs_to_complete_or_timeout: one job completes,
    # one fails, one never ends within the wait.
    done_task, failing_task, idle_task = (unique_name(n) for n in ("done", "fails", "idle"))
    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {done_task: lambda w, j: b"12345", failing_task: fail}):
        completed, failed, timeout = client.submit_multiple_jobs(
            [
                {"task": done_task, "data": b"a"},
                {"task": failing_task, "data": b"b"},
                {"task": idle_task, "data": b"c"},
            ],
            wait_until_complete=False,
            poll_timeout=10,
        )
        client.wait_until_jobs_completed([completed, failed], poll_timeout=10)
        finished = client.wait_until_jobs_completed([completed, failed, timeout], poll_timeout=0.2)

    assert finished == [completed, failed, timeout]
    assert (completed.state, completed.result, completed.timed_out) == (
        JOB_COMPLETE,
        b"12345",
        False,
    )
    assert (failed.state, failed.result, failed.timed_out) == (JOB_FAILED, None, False)
    assert (timeout.state, timeout.result, timeout.timed_out) == (JOB_CREATED, None, True)


def test_get_job_status_of_a_queued_job(runtime: types.ModuleType, address: str) -> None:
    # ClientTest.test_get_job_status (STATUS_RES known=1 running=0).
    client = runtime.GearmanClient([address])
    request = client.submit_job(unique_name("q"), b"", wait_until_complete=False, poll_timeout=10)
    assert client.get_job_status(request, poll_timeout=10) is request
    assert request.status
    assert request.status["known"] is True
    assert request.status["running"] is False
    assert (request.status["numerator"], request.status["denominator"]) == (0, 0)
    assert request.timed_out is False


def test_get_job_status_after_the_job_failed(runtime: types.ModuleType, address: str) -> None:
    # ClientTest.test_get_job_status_unknown (python-gearman 2.0.2 raised KeyError here,
    # its issue #13; master asserts the answer).
    task = unique_name("fails")
    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: fail}):
        request = client.submit_job(task, b"", poll_timeout=10)
    assert request.state == JOB_FAILED
    client.get_job_status(request, poll_timeout=10)
    assert request.status["known"] is False
    assert request.status["running"] is False
    assert request.timed_out is False


def test_get_job_status_times_out(runtime: types.ModuleType, gearmand_factory: Any) -> None:
    # ClientTest.test_get_job_status_timeout: no STATUS_RES within poll_timeout.
    server: Gearmand = gearmand_factory()
    client = runtime.GearmanClient([server.address])
    request = client.submit_job(unique_name("q"), b"", wait_until_complete=False, poll_timeout=10)
    with stopped(server):
        client.get_job_status(request, poll_timeout=0.3)
        assert request.timed_out is True


def test_get_job_status_of_a_request_built_from_a_jobs_connection_and_handle(
    runtime: types.ModuleType, address: str
) -> None:
    # The request a status poller builds by hand, as master's types_of_jobs.rst and real
    # code do: GearmanJobRequest(GearmanJob(connection, handle, task, unique, data)).
    client = runtime.GearmanClient([address])
    original = client.submit_job(unique_name("q"), b"", wait_until_complete=False, poll_timeout=10)
    by_hand = GearmanJobRequest(
        GearmanJob(original.job.connection, original.job.handle, None, None, None)
    )
    assert client.get_job_status(by_hand, poll_timeout=10) is by_hand
    assert by_hand.timed_out is False
    assert (by_hand.status["known"], by_hand.status["running"]) == (True, False)
    assert by_hand.status["handle"] == original.job.handle


def test_assigned_priority_and_background_choose_the_submission(
    runtime: types.ModuleType, address: str
) -> None:
    # ClientCommandHandlerInterfaceTest.test_send_job_request: for every priority and
    # background flag assigned to a request after reset(), the matching SUBMIT_JOB_*
    # goes out.  The server says which went out: prioritystatus counts queued jobs per
    # priority, and a job's status by unique counts the clients waiting for it (none for
    # a background job).
    task = unique_name("prio")
    client = runtime.GearmanClient([address])
    sent = []
    for priority in (PRIORITY_NONE, PRIORITY_HIGH, PRIORITY_LOW):
        for background in (False, True):
            request = client._create_request_from_dictionary({"task": task, "data": b""})
            request.reset()
            request.priority = priority
            request.background = background
            assert (request.priority, request.background) == (priority, background)
            sent.append(request)
    client.submit_multiple_requests(sent, wait_until_complete=False, poll_timeout=10)
    assert all(r.state == JOB_CREATED for r in sent)
    assert [r.complete for r in sent] == [False, True] * 3  # background: complete once created
    with runtime.GearmanAdminClient([address]) as admin:
        (line,) = [row for row in admin.get_priority_status() if row["task"] == task]
    assert (line["high"], line["normal"], line["low"]) == (2, 2, 2)
    observer = runtime.GearmanClient([address])
    waiting = [observer.get_status_by_unique(r.job.unique)["client_count"] for r in sent]
    assert waiting == [1, 0] * 3


def test_in_flight_updates_keep_the_request_created(
    runtime: types.ModuleType, address: str
) -> None:
    # ClientCommandHandlerStateMachineTest.test_in_flight_work_updates, test_status_request:
    # WORK_DATA, WORK_WARNING and WORK_STATUS of a running job.
    task = unique_name("inflight")
    sent, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def updates(worker: Any, job: GearmanJob) -> bytes:
        worker.send_job_data(job, b"new data")
        worker.send_job_warning(job, b"new warning")
        worker.send_job_status(job, 0, 1)
        sent.set()
        assert release.wait(10)
        return b"end"

    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: updates}):
        request = client.submit_job(task, b"", wait_until_complete=False, poll_timeout=10)
        assert sent.wait(10)

        def all_updates_in() -> bool:
            client.wait_until_jobs_completed([request], poll_timeout=0.05)
            return bool(request.status)

        wait_until(runtime, all_updates_in, message="the updates reach the client")
        in_flight = (request.state, request.timed_out)
        data, warnings = list(request.data_updates), list(request.warning_updates)
        status = dict(request.status)
        release.set()
        client.wait_until_jobs_completed([request], poll_timeout=10)

    assert in_flight == (JOB_CREATED, True)
    assert data == [b"new data"]
    assert warnings == [b"new warning"]
    assert list(request.status_updates) == [(0, 1)]
    assert status["handle"] == request.job.handle
    assert (status["known"], status["running"], status["numerator"], status["denominator"]) == (
        True,
        True,
        0,
        1,
    )
    assert (request.state, request.result) == (JOB_COMPLETE, b"end")


def test_work_complete_and_work_fail(runtime: types.ModuleType, address: str) -> None:
    # ClientCommandHandlerStateMachineTest.test_work_complete, test_work_fail.
    done_task, failing_task = unique_name("done"), unique_name("fails")
    with serving(runtime, [address], {done_task: lambda w, j: j.data, failing_task: fail}):
        client = runtime.GearmanClient([address])
        completed = client.submit_job(done_task, b"0.123", poll_timeout=10)
        failed = client.submit_job(failing_task, b"", poll_timeout=10)
    assert (completed.state, completed.result) == (JOB_COMPLETE, b"0.123")
    assert (failed.state, failed.result) == (JOB_FAILED, None)


def test_timed_out_requests_passed_again_are_waited_for_not_resent(
    runtime: types.ModuleType, address: str
) -> None:
    # client.rst's recovery pattern, as submit_multiple_requests implements it in 2.0.2:
    # requests still UNKNOWN are sent, the others are only waited for.
    task = unique_name("slow")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()
    runs: list[bytes] = []

    def slow(worker: Any, job: GearmanJob) -> bytes:
        runs.append(job.data)
        started.set()
        assert release.wait(10)
        return b"finally"

    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: slow}):
        fresh = client._create_request_from_dictionary({"task": task, "data": b"fresh"})
        (timed_out,) = client.submit_multiple_jobs(
            [{"task": task, "data": b"first"}], poll_timeout=10, wait_until_complete=False
        )
        assert started.wait(10)
        client.submit_multiple_requests([timed_out], poll_timeout=0.1)
        assert (timed_out.state, timed_out.timed_out) == (JOB_CREATED, True)
        attempts = timed_out.connection_attempts
        release.set()
        again = client.submit_multiple_requests([timed_out, fresh], poll_timeout=10)

    assert again == [timed_out, fresh]
    assert (timed_out.state, timed_out.result, timed_out.timed_out) == (
        JOB_COMPLETE,
        b"finally",
        False,
    )
    assert timed_out.connection_attempts == attempts
    assert (fresh.state, fresh.result) == (JOB_COMPLETE, b"finally")
    assert runs == [b"first", b"fresh"], "the created request must not run twice"


# ====================================================================== worker
# tests/worker_tests.py, WorkerTest and friends


def test_registering_and_unregistering_functions(runtime: types.ModuleType, address: str) -> None:
    # WorkerTest.test_registering_functions (the abilities the server sees stand for the
    # command handler's _handler_abilities).
    one, two = unique_name("one"), unique_name("two")

    def fake_callback_one(worker: Any, job: GearmanJob) -> None:
        pass

    def fake_callback_two(worker: Any, job: GearmanJob) -> None:
        pass

    worker = runtime.GearmanWorker([address])
    try:
        assert worker.register_task(one, fake_callback_one) == one
        assert one in worker.worker_abilities
        assert two not in worker.worker_abilities
        assert worker.worker_abilities[one] is fake_callback_one
        worker.establish_worker_connections()
        wait_for_workers(runtime, address, one)
        assert workers_row(runtime, address, one)["tasks"] == (one,)

        worker.register_task(two, fake_callback_two)
        assert worker.worker_abilities[one] is fake_callback_one
        assert worker.worker_abilities[two] is fake_callback_two
        wait_for_workers(runtime, address, two)
        assert sorted(workers_row(runtime, address, one)["tasks"]) == sorted([one, two])

        assert worker.unregister_task(one) == one
        assert one not in worker.worker_abilities
        assert worker.worker_abilities[two] is fake_callback_two
        wait_for_workers(runtime, address, one, count=0)
        assert workers_row(runtime, address, two)["tasks"] == (two,)
    finally:
        worker.shutdown()


def test_setting_client_id(runtime: types.ModuleType, address: str) -> None:
    # WorkerTest.test_setting_client_id, WorkerCommandHandlerInterfaceTest.test_set_client_id.
    task, new_client_id = unique_name("cid"), unique_name("HELLO")
    worker = runtime.GearmanWorker([address])
    try:
        assert worker.worker_client_id is None
        worker.register_task(task, reverse)
        worker.establish_worker_connections()
        wait_for_workers(runtime, address, task)
        assert worker.set_client_id(new_client_id) == new_client_id
        assert worker.worker_client_id == new_client_id
        wait_until(
            runtime,
            lambda: workers_row(runtime, address, task)["client_id"] == new_client_id,
            message="the server sees the new client id",
        )
    finally:
        worker.shutdown()


def test_establish_worker_connections_returns_the_live_ones(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # WorkerTest.test_establish_worker_connections: of a good connection, one that can
    # connect now and one that fails, the first two are returned.
    good, later = gearmand_factory(), gearmand_factory()
    worker = runtime.GearmanWorker([good.address, later.address, down_address()])
    try:
        alive = worker.establish_worker_connections()
        assert sorted(at(c) for c in alive) == sorted(
            [(good.host, good.port), (later.host, later.port)]
        )
        assert all(c in worker.connection_list and c.connected for c in alive)
        (failed,) = [c for c in worker.connection_list if c not in alive]
        assert failed.connected is False
    finally:
        worker.shutdown()


def test_empty_worker_host_list_is_accepted_and_work_raises_server_unavailable(
    runtime: types.ModuleType,
) -> None:
    # WorkerTest.test_establish_worker_connections_dead: no connections, so there will
    # never be any work to do.  (Its second half, a worker whose one server is down, is a
    # kept divergence: work() retries that server.)
    worker = runtime.GearmanWorker([])
    assert list(worker.connection_list) == []
    worker.register_task("t", reverse)
    with pytest.raises(errors.ServerUnavailable):
        worker.work(poll_timeout=0.1)


def test_on_connect_the_server_gets_client_id_and_abilities(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # WorkerCommandHandlerInterfaceTest.test_on_connect, test_set_abilities: every new
    # connection (here: after a server restart) sends the client id and the abilities.
    server: Gearmand = gearmand_factory()
    tasks = [unique_name(n) for n in ("function_one", "function_two", "function_three")]
    client_id = unique_name("my_client_id")
    worker = runtime.GearmanWorker([server.address])
    worker.set_client_id(client_id)
    worker.register_task("__test_ability__", reverse)
    worker.unregister_task("__test_ability__")
    for task in tasks:
        worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, server.address, tasks[0])
        first = workers_row(runtime, server.address, tasks[0])
        server.restart()
        wait_for_workers(runtime, server.address, tasks[0])
        again = workers_row(runtime, server.address, tasks[0])
    for row in (first, again):
        assert row["client_id"] == client_id
        assert sorted(row["tasks"]) == sorted(tasks)


def test_send_functions_from_inside_a_task(runtime: types.ModuleType, address: str) -> None:
    # WorkerCommandHandlerInterfaceTest.test_send_functions: WORK_STATUS (numbers sent as
    # text), WORK_DATA, WORK_WARNING, WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION, each
    # sent by a task through the worker, as the client sees them.
    task = unique_name("send")

    def send(worker: Any, job: GearmanJob) -> Any:
        if job.data == b"updates":
            worker.send_job_status(job, 0, 1)
            worker.send_job_data(job, b"job data")
            worker.send_job_warning(job, b"job warning")
            worker.send_job_complete(job, b"completion data")
        elif job.data == b"failure":
            worker.send_job_failure(job)
        else:
            worker.send_job_exception(job, b"exception data")
        return None  # the job has already ended

    client = runtime.GearmanClient([address], exceptions=True)
    with serving(runtime, [address], {task: send}):
        updated = client.submit_job(task, b"updates", poll_timeout=10)
        failed = client.submit_job(task, b"failure", poll_timeout=10)
        excepted = client.submit_job(task, b"exception", poll_timeout=10)
        after = client.submit_job(task, b"updates", poll_timeout=10)

    assert (updated.state, updated.result) == (JOB_COMPLETE, b"completion data")
    assert list(updated.status_updates) == [(0, 1)]
    assert list(updated.data_updates) == [b"job data"]
    assert list(updated.warning_updates) == [b"job warning"]
    assert (failed.state, failed.result) == (JOB_FAILED, None)
    assert (excepted.state, excepted.exception) == (JOB_FAILED, b"exception data")
    assert (after.state, after.result) == (JOB_COMPLETE, b"completion data")


def test_one_job_at_a_time_over_two_servers(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # WorkerCommandHandlerStateMachineTest.test_worker_already_locked: while one
    # connection holds the job lock, the other does not take a job; it does once the
    # lock is free.
    first, second = gearmand_factory(), gearmand_factory()
    task = unique_name("lock")
    running, most = [0], [0]
    lock = threading.Lock()

    def count(worker: Any, job: GearmanJob) -> bytes:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            assert worker.has_job_lock()
            return job.data
        finally:
            with lock:
                running[0] -= 1

    with serving(runtime, [first.address, second.address], {task: count}):
        one = runtime.GearmanClient([first.address]).submit_multiple_jobs(
            [{"task": task, "data": b"1-%d" % i} for i in range(3)], poll_timeout=10
        )
        two = runtime.GearmanClient([second.address]).submit_multiple_jobs(
            [{"task": task, "data": b"2-%d" % i} for i in range(3)], poll_timeout=10
        )
    assert [r.result for r in one + two] == [b"1-0", b"1-1", b"1-2", b"2-0", b"2-1", b"2-2"]
    assert most == [1]


def test_a_sleeping_worker_wakes_for_new_work(runtime: types.ModuleType, address: str) -> None:
    # WorkerCommandHandlerStateMachineTest.test_wakeup_sleep_wakup_work,
    # test_multiple_work: a worker that found no job and slept takes each job submitted
    # later, one after another.
    task = unique_name("wake")
    slept = runtime.concurrency.Event()

    class Sleeper(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def after_poll(self, any_activity: bool) -> bool:
            if not any_activity:
                slept.set()
            return True

    with serving(runtime, [address], {task: reverse}, worker_class=Sleeper, poll_timeout=0.2):
        wait_for_workers(runtime, address, task)
        assert slept.wait(10)
        client = runtime.GearmanClient([address])
        results = [client.submit_job(task, b"job-%d" % i, poll_timeout=10).result for i in range(3)]
    assert results == [b"0-boj", b"1-boj", b"2-boj"]


def test_on_job_execute_sees_the_assigned_job(runtime: types.ModuleType, address: str) -> None:
    # MockGearmanWorker.on_job_execute and move_to_state_job_assign_uniq: the job handed to
    # on_job_execute has the handle, task, unique and data of the submission, and its
    # connection is the server's.
    task, unique = unique_name("assign"), unique_name("identifier")
    seen: list[tuple[Any, ...]] = []

    class Recording(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def on_job_execute(self, current_job: GearmanJob) -> Any:
            connection = current_job.connection
            seen.append(
                (
                    current_job.handle,
                    current_job.task,
                    current_job.unique,
                    current_job.data,
                    connection.gearman_host,
                    connection.gearman_port,
                )
            )
            return super().on_job_execute(current_job)

    gearmand_host, gearmand_port = address.rsplit(":", 1)
    with serving(runtime, [address], {task: reverse}, worker_class=Recording):
        request = runtime.GearmanClient([address]).submit_job(
            task, b"data", unique=unique, poll_timeout=10
        )
    assert request.result == b"atad"
    assert seen == [(request.job.handle, task, unique, b"data", gearmand_host, int(gearmand_port))]


def test_after_poll_returning_false_leaves_work(runtime: types.ModuleType, address: str) -> None:
    # GearmanWorker.after_poll's contract ("Return True to continue polling, False to exit
    # the work loop"), called with whether there was activity.
    calls: list[bool] = []

    class Twice(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def after_poll(self, any_activity: bool) -> bool:
            calls.append(any_activity)
            return len(calls) < 2

    worker = Twice([address])
    worker.register_task(unique_name("t"), reverse)
    runner = BackgroundWorker(runtime, worker, poll_timeout=0.05).start()
    runner.join()
    assert len(calls) == 2
    assert all(isinstance(call, bool) for call in calls)


def test_worker_job_connection_is_the_server(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    # GearmanJob.connection on a worker: the connection the job came on (create_job), with
    # python-gearman's gearman_host / gearman_port, one of worker.connection_list.
    task = unique_name("conn")
    seen: list[Any] = []

    def record(worker: Any, job: GearmanJob) -> bytes:
        seen.append((job.connection in list(worker.connection_list), at(job.connection)))
        return b""

    with serving(runtime, [gearmand.address], {task: record}):
        request = runtime.GearmanClient([gearmand.address]).submit_job(task, b"", poll_timeout=10)
    assert seen == [(True, (gearmand.host, gearmand.port))]
    assert at(request.job.connection) == (gearmand.host, gearmand.port)


def test_task_result_the_encoder_refuses_fails_the_job_and_work_goes_on(
    runtime: types.ModuleType, address: str
) -> None:
    # NoopEncoder._enforce_byte_string: a task result the encoder refuses (here an
    # iterator, as worker.rst's reversed() returns) must not end work(): the job fails and
    # the next one is served.
    task = unique_name("badresult")

    def task_listener(worker: Any, job: GearmanJob) -> Any:
        return reversed(job.data) if job.data == b"bad" else job.data

    with serving(runtime, [address], {task: task_listener}):
        client = runtime.GearmanClient([address])
        bad = client.submit_job(task, b"bad", poll_timeout=10)
        good = client.submit_job(task, b"good", poll_timeout=10)
    assert bad.state == JOB_FAILED
    assert (good.state, good.result) == (JOB_COMPLETE, b"good")


def test_json_encoder_returning_str_on_both_sides(runtime: types.ModuleType, address: str) -> None:
    # worker.rst's JSONDataEncoder (encode returns json.dumps: a str) on client and worker,
    # data and results, and in-flight data.
    import json  # noqa: PLC0415 -- as the docs import it

    class JSONDataEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object: Any) -> Any:
            return json.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string: Any) -> Any:
            return json.loads(decodable_string)

    class JSONClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    class JSONWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    task = unique_name("json")

    def answer(worker: Any, job: GearmanJob) -> Any:
        worker.send_job_data(job, {"progress": "half"})
        return {"got": job.data}

    with serving(runtime, [address], {task: answer}, worker_class=JSONWorker):
        request = JSONClient([address]).submit_job(task, {"a": [1, "é"]}, poll_timeout=10)
        second = JSONClient([address]).submit_job(task, None, poll_timeout=10)
    assert request.result == {"got": {"a": [1, "é"]}}
    assert list(request.data_updates) == [{"progress": "half"}]
    assert second.result == {"got": None}


# ================================================================= admin client
# tests/admin_client_tests.py, CommandHandlerStateMachineTest


def test_admin_ping_server(runtime: types.ModuleType, address: str) -> None:
    # test_ping_server (ECHO_REQ with ECHO_STRING, ECHO_RES).
    from gearman.admin_client import ECHO_STRING  # noqa: PLC0415

    assert ECHO_STRING == "ping? pong!"
    with runtime.GearmanAdminClient([address]) as admin:
        elapsed = admin.ping_server()
    assert isinstance(elapsed, float)
    assert elapsed >= 0


def test_admin_status_of_an_empty_server_and_of_two_functions(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # test_state_and_protocol_errors_for_status (an empty status is an empty tuple),
    # test_multiple_status (task, queued, running, workers as ints).
    server: Gearmand = gearmand_factory()
    one, another = unique_name("test_function"), unique_name("another_function")
    with runtime.GearmanAdminClient([server.address]) as admin:
        assert admin.get_status() == ()
        client = runtime.GearmanClient([server.address])
        client.submit_multiple_jobs(
            [{"task": one, "data": b""}] + [{"task": another, "data": b""}] * 2,
            background=True,
            poll_timeout=10,
        )
        status = sorted(admin.get_status(), key=lambda row: row["task"] != one)
    assert status == [
        {"task": one, "queued": 1, "running": 0, "workers": 0},
        {"task": another, "queued": 2, "running": 0, "workers": 0},
    ]


def test_admin_version(runtime: types.ModuleType, address: str) -> None:
    # test_version: the version line as text (without gearmand's "OK " prefix: a kept fix).
    with runtime.GearmanAdminClient([address]) as admin:
        version = admin.get_version()
    assert isinstance(version, str)
    assert not version.startswith("OK")
    assert version[:1].isdigit(), version


def test_admin_workers(runtime: types.ModuleType, address: str) -> None:
    # test_state_and_protocol_errors_for_workers, test_multiple_workers: one row per
    # connection, file_descriptor / ip / client_id as text and tasks as a tuple.
    task_a, task_b, task_c = (unique_name(n) for n in ("function-A", "function-B", "function-C"))
    client_a, client_b = unique_name("CLIENT-A"), unique_name("CLIENT-B")
    first = runtime.GearmanWorker([address])
    second = runtime.GearmanWorker([address])
    try:
        first.set_client_id(client_a)
        first.register_task(task_a, reverse)
        first.register_task(task_b, reverse)
        second.set_client_id(client_b)
        second.register_task(task_c, reverse)
        first.establish_worker_connections()
        second.establish_worker_connections()
        wait_for_workers(runtime, address, task_b)
        wait_for_workers(runtime, address, task_c)
        with runtime.GearmanAdminClient([address]) as admin:
            rows = admin.get_workers()
    finally:
        first.shutdown()
        second.shutdown()
    assert isinstance(rows, tuple)
    for row in rows:
        assert set(row) == {"file_descriptor", "ip", "client_id", "tasks"}
        assert isinstance(row["tasks"], tuple)
    (row_a,) = [row for row in rows if row["client_id"] == client_a]
    (row_b,) = [row for row in rows if row["client_id"] == client_b]
    assert sorted(row_a["tasks"]) == sorted([task_a, task_b])
    assert row_b["tasks"] == (task_c,)
    for row in (row_a, row_b):
        assert row["file_descriptor"].isdigit()
        assert row["ip"] == "127.0.0.1"


def test_admin_maxqueue(runtime: types.ModuleType, address: str) -> None:
    # test_maxqueue: 'OK'.
    with runtime.GearmanAdminClient([address]) as admin:
        assert admin.send_maxqueue(unique_name("mq"), 10) == "OK"


# ============================================================ module surface
# what python-gearman's tests import, and what its modules define


#: python-gearman 2.0.2's gearman/protocol.py command numbers.
PROTOCOL_COMMANDS = {
    "CAN_DO": 1, "CANT_DO": 2, "RESET_ABILITIES": 3, "PRE_SLEEP": 4, "NOOP": 6,
    "SUBMIT_JOB": 7, "JOB_CREATED": 8, "GRAB_JOB": 9, "NO_JOB": 10, "JOB_ASSIGN": 11,
    "WORK_STATUS": 12, "WORK_COMPLETE": 13, "WORK_FAIL": 14, "GET_STATUS": 15,
    "ECHO_REQ": 16, "ECHO_RES": 17, "SUBMIT_JOB_BG": 18, "ERROR": 19, "STATUS_RES": 20,
    "SUBMIT_JOB_HIGH": 21, "SET_CLIENT_ID": 22, "CAN_DO_TIMEOUT": 23, "ALL_YOURS": 24,
    "WORK_EXCEPTION": 25, "OPTION_REQ": 26, "OPTION_RES": 27, "WORK_DATA": 28,
    "WORK_WARNING": 29, "GRAB_JOB_UNIQ": 30, "JOB_ASSIGN_UNIQ": 31,
    "SUBMIT_JOB_HIGH_BG": 32, "SUBMIT_JOB_LOW": 33, "SUBMIT_JOB_LOW_BG": 34,
}  # fmt: skip


@pytest.mark.parametrize(("name", "number"), sorted(PROTOCOL_COMMANDS.items()))
def test_protocol_command_constants(name: str, number: int) -> None:
    # tests/*_tests.py import these from gearman.protocol; they are the packet numbers.
    from gearman import protocol  # noqa: PLC0415

    assert getattr(protocol, f"GEARMAN_COMMAND_{name}") == number
    assert gearman_proto.PacketType[name].value == number
    assert protocol.GEARMAN_COMMAND_TO_NAME[number] == f"GEARMAN_COMMAND_{name}"
    assert protocol.get_command_name(number) == f"GEARMAN_COMMAND_{name}"
    assert number in protocol.GEARMAN_PARAMS_FOR_COMMAND


def test_protocol_module_constants() -> None:
    # protocol_tests.py and admin_client_tests.py: the framing constants, the fake text
    # command, the server (admin) command words, and the submission a background flag and
    # a priority choose (ClientCommandHandlerInterfaceTest.test_send_job_request).
    from gearman import protocol  # noqa: PLC0415

    assert protocol.NULL_CHAR == b"\x00"
    assert protocol.MAGIC_RES_STRING == b"\x00RES"
    assert protocol.MAGIC_REQ_STRING == b"\x00REQ"
    assert protocol.COMMAND_HEADER_SIZE == 12
    assert protocol.GEARMAN_COMMAND_TEXT_COMMAND == 9999
    assert protocol.GEARMAN_PARAMS_FOR_COMMAND[protocol.GEARMAN_COMMAND_TEXT_COMMAND] == [
        "raw_text"
    ]
    assert protocol.GEARMAN_PARAMS_FOR_COMMAND[protocol.GEARMAN_COMMAND_SUBMIT_JOB] == [
        "task",
        "unique",
        "data",
    ]
    assert protocol.get_command_name(1234) == 1234
    assert (
        protocol.GEARMAN_SERVER_COMMAND_STATUS,
        protocol.GEARMAN_SERVER_COMMAND_VERSION,
        protocol.GEARMAN_SERVER_COMMAND_WORKERS,
        protocol.GEARMAN_SERVER_COMMAND_MAXQUEUE,
        protocol.GEARMAN_SERVER_COMMAND_SHUTDOWN,
    ) == ("status", "version", "workers", "maxqueue", "shutdown")
    submit = protocol.submit_cmd_for_background_priority
    assert submit(False, PRIORITY_NONE) == protocol.GEARMAN_COMMAND_SUBMIT_JOB
    assert submit(False, PRIORITY_LOW) == protocol.GEARMAN_COMMAND_SUBMIT_JOB_LOW
    assert submit(False, PRIORITY_HIGH) == protocol.GEARMAN_COMMAND_SUBMIT_JOB_HIGH
    assert submit(True, PRIORITY_NONE) == protocol.GEARMAN_COMMAND_SUBMIT_JOB_BG
    assert submit(True, PRIORITY_LOW) == protocol.GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG
    assert submit(True, PRIORITY_HIGH) == protocol.GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG


#: names python-gearman 2.0.2's modules import from gearman.errors at module level,
#: so ``from gearman.client import ServerUnavailable`` and the like work there.
ERROR_REEXPORTS = {
    "gearman.client": ["ConnectionError", "ExceededConnectionAttempts", "ServerUnavailable"],
    "gearman.worker": ["ConnectionError"],
    "gearman.admin_client": ["ConnectionError", "InvalidAdminClientState", "ServerUnavailable"],
    "gearman.connection": ["ConnectionError", "ProtocolError", "ServerUnavailable"],
    "gearman.connection_manager": ["ConnectionError", "ServerUnavailable"],
    "gearman.protocol": ["ProtocolError"],
}


@pytest.mark.parametrize(
    ("module", "name"),
    [(module, name) for module, names in ERROR_REEXPORTS.items() for name in names],
)
def test_error_reexports_at_python_gearmans_module_paths(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


#: the error classes python-gearman's tests import from gearman.errors.
ERROR_CLASSES = [
    "ConnectionError",
    "ServerUnavailable",
    "ProtocolError",
    "UnknownCommandError",
    "ExceededConnectionAttempts",
    "InvalidClientState",
    "InvalidWorkerState",
    "InvalidAdminClientState",
]


@pytest.mark.parametrize("name", ERROR_CLASSES)
def test_error_classes_are_gearman_errors(name: str) -> None:
    error_class = getattr(errors, name)
    assert issubclass(error_class, errors.GearmanError)
    assert issubclass(errors.GearmanError, Exception)
    with pytest.raises(errors.GearmanError):
        raise error_class("raised as python-gearman code raises it")


def test_constants_the_tests_import() -> None:
    # _core_testing.py and client_tests.py import these from gearman.constants.
    from gearman import constants  # noqa: PLC0415

    assert (constants.PRIORITY_NONE, constants.PRIORITY_LOW, constants.PRIORITY_HIGH) == (
        None,
        "LOW",
        "HIGH",
    )
    assert constants.DEFAULT_GEARMAN_PORT == 4730
    assert (
        constants.JOB_UNKNOWN,
        constants.JOB_PENDING,
        constants.JOB_CREATED,
        constants.JOB_FAILED,
        constants.JOB_COMPLETE,
    ) == ("UNKNOWN", "PENDING", "CREATED", "FAILED", "COMPLETE")


def test_gearman_connection_class() -> None:
    # gearman/connection.py 2.0.2: GearmanConnection(host=None, port=4730), as
    # _core_testing.MockGearmanConnection builds it; no host is ServerUnavailable.
    from gearman.connection import GearmanConnection  # noqa: PLC0415

    connection = GearmanConnection("127.0.0.1", 4731)
    assert (connection.gearman_host, connection.gearman_port) == ("127.0.0.1", 4731)
    assert connection.connected is False
    assert connection.get_address() == ("127.0.0.1", 4731)
    assert repr(connection) == "<GearmanConnection 127.0.0.1:4731 connected=False>"
    assert GearmanConnection.connect_cooldown_seconds == 1.0
    assert GearmanConnection(host="127.0.0.1").gearman_port == 4730
    assert GearmanConnection(host="127.0.0.1", port=None).gearman_port == 4730
    with pytest.raises(errors.ServerUnavailable):
        GearmanConnection()
    from gearman.connection_manager import GearmanConnectionManager  # noqa: PLC0415

    assert GearmanConnectionManager.connection_class is GearmanConnection


def test_connection_list_of_client_worker_and_admin(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    # GearmanConnectionManager.__init__: one connection_class object per host, in order,
    # with python-gearman's attributes; connected once used.
    from gearman.connection import GearmanConnection  # noqa: PLC0415

    dead = down_address()
    dead_host, dead_port = dead.rsplit(":", 1)
    client = runtime.GearmanClient([gearmand.address, (dead_host, int(dead_port))])
    worker = runtime.GearmanWorker([gearmand.address])
    admin = runtime.GearmanAdminClient([gearmand.address])
    try:
        for owner in (client, worker, admin):
            assert all(isinstance(c, GearmanConnection) for c in owner.connection_list)
        assert [at(c) for c in client.connection_list] == [
            (gearmand.host, gearmand.port),
            (dead_host, int(dead_port)),
        ]
        assert [c.connected for c in client.connection_list] == [False, False]
        client.submit_job(unique_name("t"), b"", background=True, poll_timeout=10)
        assert [c.connected for c in client.connection_list] == [True, False]
        worker.register_task(unique_name("t"), reverse)
        worker.establish_worker_connections()
        assert [c.connected for c in worker.connection_list] == [True]
        admin.ping_server()
        assert [at(c) for c in admin.connection_list] == [(gearmand.host, gearmand.port)]
        assert [c.connected for c in admin.connection_list] == [True]
    finally:
        client.shutdown()
        worker.shutdown()
        admin.shutdown()
    assert [c.connected for c in client.connection_list] == [False, False]


def test_connection_class_is_what_connection_list_holds(
    runtime: types.ModuleType, address: str
) -> None:
    # GearmanConnectionManager.connection_class: subclasses of the client and worker set
    # their own (as _core_testing does with MockGearmanConnection); jobs still run.
    from gearman.connection import GearmanConnection  # noqa: PLC0415

    class TracedConnection(GearmanConnection):
        made: ClassVar[list[tuple[str, int]]] = []

        def __init__(self, host: Any = None, port: Any = 4730) -> None:
            super().__init__(host=host, port=port)
            TracedConnection.made.append((self.gearman_host, self.gearman_port))

    class Client(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        connection_class = TracedConnection

    class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        connection_class = TracedConnection

    task = unique_name("traced")
    with serving(runtime, [address], {task: reverse}, worker_class=Worker):
        client = Client([address])
        request = client.submit_job(task, b"abc", poll_timeout=10)
    host, port = address.rsplit(":", 1)
    assert request.result == b"cba"
    assert all(type(c) is TracedConnection for c in client.connection_list)
    assert TracedConnection.made == [(host, int(port))] * 2


@sync_runtimes_only()
def test_poll_connections_once_and_handle_connection_activity(
    runtime: types.ModuleType, address: str
) -> None:
    # GearmanConnectionManager.poll_connections_once(connections, timeout) -> (readable,
    # writable, failed) sets of those connections, and handle_connection_activity(...),
    # the two steps of python-gearman's loop, driven by the caller.  The job ends only once
    # the caller polls, so the reply is taken in by that loop.
    task = unique_name("poll")
    go = runtime.concurrency.Event()

    def held(worker: Any, job: GearmanJob) -> bytes:
        assert go.wait(10), "the test never let the job end"
        return job.data[::-1]

    client = runtime.GearmanClient([address])
    with serving(runtime, [address], {task: held}):
        request = client.submit_job(task, b"abc", wait_until_complete=False, poll_timeout=10)
        assert request.state == JOB_CREATED
        go.set()
        polls = 0
        while not request.complete and polls < 100:
            readable, writable, failed = client.poll_connections_once(
                client.connection_list, timeout=1.0
            )
            assert readable <= set(client.connection_list)
            assert writable <= set(client.connection_list)
            assert failed == set()
            client.handle_connection_activity(readable, writable, failed)
            polls += 1
    assert polls >= 1
    assert (request.state, request.result) == (JOB_COMPLETE, b"cba")


@sync_runtimes_only()
def test_poll_connections_until_stopped_contract(runtime: types.ModuleType, address: str) -> None:
    # GearmanConnectionManager.poll_connections_until_stopped(connections, callback,
    # timeout): the callback is asked first (any_activity False) and after each poll; it
    # returns whether connections stayed up and the callback wanted more (True when the
    # timeout ended it, False when the callback did); ServerUnavailable with no live
    # connection.
    task = unique_name("until")
    client = runtime.GearmanClient([address])
    with pytest.raises(errors.ServerUnavailable):
        client.poll_connections_until_stopped(client.connection_list, lambda activity: True)
    go = runtime.concurrency.Event()

    def held(worker: Any, job: GearmanJob) -> bytes:
        assert go.wait(10), "the test never let the job end"
        return job.data[::-1]

    with serving(runtime, [address], {task: held}):
        request = client.submit_job(task, b"abc", wait_until_complete=False, poll_timeout=10)
        assert request.state == JOB_CREATED
        go.set()
        calls: list[bool] = []

        def until_complete(any_activity: bool) -> bool:
            calls.append(any_activity)
            return not request.complete

        assert (
            client.poll_connections_until_stopped(
                client.connection_list, until_complete, timeout=10
            )
            is False
        )
    assert calls[0] is False
    assert True in calls
    assert (request.state, request.result) == (JOB_COMPLETE, b"cba")
    assert (
        client.poll_connections_until_stopped(
            client.connection_list, lambda activity: True, timeout=0.05
        )
        is True
    )


def test_request_attributes_code_assigns(runtime: types.ModuleType, address: str) -> None:
    # GearmanJobRequest's plain attributes (job.py 2.0.2), as tests and code assign them:
    # priority, background, connection_attempts, max_connection_attempts, state,
    # timed_out, result, status; the assigned priority and background are what is sent.
    task = unique_name("assign")
    request = GearmanJobRequest(GearmanJob(None, None, task, unique_name("u"), b"x"))
    request.priority = PRIORITY_HIGH
    request.background = True
    request.max_connection_attempts = 3
    request.connection_attempts = 0
    request.timed_out = False
    request.result = None
    request.status = {}
    assert (request.priority, request.background) == (PRIORITY_HIGH, True)
    assert (request.connection_attempts, request.max_connection_attempts) == (0, 3)
    client = runtime.GearmanClient([address])
    client.submit_multiple_requests([request], poll_timeout=10)
    assert (request.state, request.complete) == (JOB_CREATED, True)
    assert request.connection_attempts == 1
    with runtime.GearmanAdminClient([address]) as admin:
        (line,) = [row for row in admin.get_priority_status() if row["task"] == task]
    assert (line["high"], line["normal"], line["low"]) == (1, 0, 0)
    request.state = JOB_UNKNOWN
    assert request.state == JOB_UNKNOWN
    assert request.complete is False


def test_status_updates_and_server_status_are_kept(runtime: types.ModuleType, address: str) -> None:
    # client_tests.py reads status_updates.popleft() (deprecated since 2.0.1, like
    # server_status): a deque of (numerator, denominator).
    task = unique_name("deprecated")

    def progress(worker: Any, job: GearmanJob) -> bytes:
        worker.send_job_status(job, 1, 4)
        worker.send_job_status(job, 3, 4)
        return b""

    with serving(runtime, [address], {task: progress}):
        request = runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert isinstance(request.status_updates, collections.deque)
    assert request.status_updates.popleft() == (1, 4)
    assert request.server_status is request.status
    assert (request.status["numerator"], request.status["denominator"]) == (3, 4)
