"""``GearmanClient`` of every runtime against a real gearmand and our worker.

Covers every submission mode of python-gearman 2.0.2 (ANCHORS.md 2.5, the
table of 2.10), priorities, the multi-request calls, status queries, the
job and request objects (2.8) and ``data_encoder``.
"""

from __future__ import annotations

import json
import os
import signal
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    admin_status,
    reverse,
    serving,
    sockets_connected_to,
    tcp_info,
    unique_name,
    wait_until,
)

import gearman
import gearman_proto
from gearman import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
    GearmanJob,
    GearmanJobRequest,
    GearmanWorker,
    errors,
)
from gearman._client_kernel import all_settled
from gearman.testing import Gearmand


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def blocking_task(started: Any, release: Any) -> Any:
    """A task that reports it started, then waits for *release* (the runtime's events)."""

    def task(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        assert release.wait(10), "the test never released the job"
        return b"released:" + job.data

    return task


# ------------------------------------------------------------- submit_job modes


def test_foreground_job_completes_with_its_result(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("rev")
    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        request = client.submit_job(task, b"hello", poll_timeout=10)
    assert isinstance(request, GearmanJobRequest)
    assert (request.state, request.complete, request.timed_out) == (JOB_COMPLETE, True, False)
    assert request.result == b"olleh"
    assert request.state == gearman.JOB_COMPLETE == "COMPLETE"
    assert request.job is request.gearman_job
    assert request.job.handle.startswith("H:")
    assert request.job.connection is not None
    assert (request.connection_attempts, request.max_connection_attempts) == (1, 1)
    assert request.exception is None
    assert not request.lost


@pytest.mark.parametrize("priority", [PRIORITY_NONE, PRIORITY_LOW, PRIORITY_HIGH])
@pytest.mark.parametrize("background", [False, True])
def test_every_priority_and_mode_is_accepted(
    runtime: types.ModuleType, address: str, priority: str | None, background: bool
) -> None:
    task = unique_name("prio")
    done = runtime.concurrency.Event()

    def record(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        done.set()
        return job.data.upper()

    with serving(runtime, [address], {task: record}):
        client = runtime.GearmanClient([address])
        request = client.submit_job(
            task, b"abc", priority=priority, background=background, poll_timeout=10
        )
        assert request.priority == priority
        assert request.background is background
        assert done.wait(10), "the worker never ran the job"
    if background:
        assert (request.state, request.complete, request.result) == (JOB_CREATED, True, None)
    else:
        assert (request.state, request.result) == (JOB_COMPLETE, b"ABC")
    assert not request.timed_out


def test_high_priority_job_overtakes_normal_ones_queued_before_it(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("order")
    client = runtime.GearmanClient([address])
    jobs = [
        {"task": task, "data": b"normal-1"},
        {"task": task, "data": b"normal-2"},
        {"task": task, "data": b"low", "priority": PRIORITY_LOW},
        {"task": task, "data": b"normal-3", "priority": PRIORITY_NONE},
        {"task": task, "data": b"high", "priority": PRIORITY_HIGH},
    ]
    for job in jobs:  # one by one: gearmand queues them in this order
        client.submit_multiple_jobs([job], background=True, poll_timeout=10)
    with runtime.GearmanAdminClient([address]) as admin:
        (line,) = [s for s in admin.get_priority_status() if s["task"] == task]
    assert (line["high"], line["normal"], line["low"]) == (1, 3, 1)

    order: list[bytes] = []

    def record(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        order.append(job.data)
        return b""

    with serving(runtime, [address], {task: record}):
        wait_until(runtime, lambda: len(order) == 5, message="all five jobs run")
    assert order == [b"high", b"normal-1", b"normal-2", b"normal-3", b"low"]


def test_background_job_is_complete_once_created(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("nobody")  # no worker: the job stays queued
    client = runtime.GearmanClient([address])
    for wait in (True, False):
        request = client.submit_job(
            task, b"x", background=True, wait_until_complete=wait, poll_timeout=10
        )
        assert (request.state, request.complete, request.timed_out) == (JOB_CREATED, True, False)
        assert request.job.handle
    assert admin_status(runtime, address, task) == {
        "task": task,
        "queued": 2,
        "running": 0,
        "workers": 0,
    }


def test_wait_until_complete_false_returns_at_creation(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("held")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()
    with serving(runtime, [address], {task: blocking_task(started, release)}):
        client = runtime.GearmanClient([address])
        request = client.submit_job(task, b"x", wait_until_complete=False, poll_timeout=10)
        assert (request.state, request.complete, request.timed_out) == (JOB_CREATED, False, False)
        assert started.wait(10)
        assert client.wait_until_jobs_completed([request], poll_timeout=0.2) == [request]
        assert (request.state, request.timed_out) == (JOB_CREATED, True)
        release.set()
        client.wait_until_jobs_completed([request], poll_timeout=10)
    assert (request.state, request.complete, request.timed_out) == (JOB_COMPLETE, True, False)
    assert request.result == b"released:x"


def test_poll_timeout_is_one_budget_for_the_whole_call(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("nobody")
    client = runtime.GearmanClient([address])
    started = time.monotonic()
    request = client.submit_job(task, b"x", poll_timeout=0.3)
    elapsed = time.monotonic() - started
    assert (request.state, request.complete, request.timed_out) == (JOB_CREATED, False, True)
    assert 0.25 <= elapsed < 2.0

    started = time.monotonic()
    requests = client.submit_multiple_jobs(
        [{"task": task, "data": str(n).encode()} for n in range(4)], poll_timeout=0.3
    )
    elapsed = time.monotonic() - started
    assert all(r.state == JOB_CREATED and r.timed_out and not r.complete for r in requests)
    assert elapsed < 1.0, "four jobs must share one budget, not take one each"


def test_states_unknown_and_pending_before_creation(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    task = unique_name("nobody")
    client = runtime.GearmanClient([server.address])
    request = client._create_request_from_dictionary({"task": task, "data": b"x"})
    assert request.state == JOB_UNKNOWN
    assert not request.complete
    # Stopped, the server takes the connection and the bytes but answers
    # nothing: the request stays sent and unanswered, even for a runtime
    # whose readers run on their own.
    os.kill(server.pid, signal.SIGSTOP)
    try:
        client.send_job_request(request)
        assert request.state == JOB_PENDING  # sent, nothing read yet
        assert request.connection_attempts == 1
    finally:
        os.kill(server.pid, signal.SIGCONT)
    client.wait_until_jobs_accepted([request], poll_timeout=10)
    assert request.state == JOB_CREATED
    assert not request.timed_out


def test_failed_state_equals_job_failed(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("fail")

    def fail(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise RuntimeError("expected by the test")

    with serving(runtime, [address], {task: fail}):
        request = runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=10)
    assert request.state == JOB_FAILED == "FAILED"
    assert (request.complete, request.timed_out, request.result) == (True, False, None)


# -------------------------------------------------------- several jobs at once


def test_submit_multiple_jobs_returns_requests_in_order(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("multi")
    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        jobs = [
            {"task": task, "data": b"one"},
            {"task": task, "data": b"two", "unique": unique_name("u")},
            {"task": task, "data": b"three", "priority": PRIORITY_HIGH},
        ]
        requests = client.submit_multiple_jobs(jobs, poll_timeout=10)
    assert [r.result for r in requests] == [b"eno", b"owt", b"eerht"]
    assert requests[1].job.unique == jobs[1]["unique"]
    assert requests[2].priority == PRIORITY_HIGH
    assert len({r.job.handle for r in requests}) == 3


def test_submit_multiple_jobs_in_the_background(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("nobody")
    client = runtime.GearmanClient([address])
    requests = client.submit_multiple_jobs(
        ({"task": task, "data": b"a"}, {"task": task, "data": b"b"}),
        background=True,
        wait_until_complete=False,
        poll_timeout=10,
    )
    assert [(r.state, r.complete) for r in requests] == [(JOB_CREATED, True)] * 2


def test_several_jobs_must_come_as_a_collection(runtime: types.ModuleType, address: str) -> None:
    client = runtime.GearmanClient([address])
    with pytest.raises(TypeError):
        client.submit_multiple_jobs({"task": "x", "data": b"y"})  # type: ignore[arg-type]


def test_submit_multiple_requests_with_prepared_requests(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("prepared")
    requests = [
        GearmanJobRequest(GearmanJob(None, None, task, unique_name("u"), b"abc")),
        GearmanJobRequest(
            GearmanJob(None, None, task, unique_name("u"), b"xyz"), initial_priority=PRIORITY_LOW
        ),
    ]
    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        returned = client.submit_multiple_requests(requests, poll_timeout=10)
    assert returned == requests
    assert [r.result for r in requests] == [b"cba", b"zyx"]


def test_wait_until_jobs_accepted_then_completed(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("accept")
    client = runtime.GearmanClient([address])
    requests = [
        client._create_request_from_dictionary({"task": task, "data": b"%d" % n}) for n in range(3)
    ]
    for request in requests:
        client.send_job_request(request)
    assert client.wait_until_jobs_accepted(requests, poll_timeout=10) == requests
    assert all(r.state == JOB_CREATED and not r.timed_out for r in requests)
    with serving(runtime, [address], {task: reverse}):
        client.wait_until_jobs_completed(requests, poll_timeout=10)
    assert [r.result for r in requests] == [b"0", b"1", b"2"]


def test_wait_until_any_job_completed(runtime: types.ModuleType, address: str) -> None:
    slow_task, fast_task = unique_name("slow"), unique_name("fast")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()
    with (
        serving(runtime, [address], {slow_task: blocking_task(started, release)}),
        serving(runtime, [address], {fast_task: reverse}),
    ):
        client = runtime.GearmanClient([address])
        slow = client.submit_job(slow_task, b"s", wait_until_complete=False, poll_timeout=10)
        assert started.wait(10)
        fast = client.submit_job(fast_task, b"f", wait_until_complete=False, poll_timeout=10)
        assert client.wait_until_any_job_completed([slow, fast], poll_timeout=10) == [fast]
        assert fast.result == b"f"
        assert slow.state == JOB_CREATED
        release.set()
        client.wait_until_jobs_completed([slow, fast], poll_timeout=10)
    assert slow.result == b"released:s"
    nobody = client.submit_job(unique_name("nobody"), b"x", wait_until_complete=False)
    assert client.wait_until_any_job_completed([nobody], poll_timeout=0.1) == []


# ---------------------------------------------------------------- job status


def test_get_job_status_of_queued_running_and_finished_jobs(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("status")
    client = runtime.GearmanClient([address])
    queued = client.submit_job(task, b"q", background=True, poll_timeout=10)
    assert client.get_job_status(queued, poll_timeout=10) is queued
    assert not queued.timed_out
    assert queued.status["known"] is True
    assert queued.status["running"] is False
    assert queued.status["handle"] == queued.job.handle
    assert queued.server_status is queued.status  # deprecated alias

    reported, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def progress(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        if job.data == b"run":
            worker.send_job_status(job, 3, 7)
            reported.set()
            assert release.wait(10)
        return b"done"

    with serving(runtime, [address], {task: progress}):
        running = client.submit_job(task, b"run", wait_until_complete=False, poll_timeout=10)
        assert reported.wait(10)

        def server_sees_progress() -> bool:
            status = client.get_job_status(running, poll_timeout=10).status
            return bool(status["running"] and status["numerator"] == 3)

        wait_until(runtime, server_sees_progress, message="status 3/7 on the server")
        assert running.status["denominator"] == 7
        assert running.status["known"] is True
        assert isinstance(running.status["time_received"], float)
        release.set()
        client.wait_until_jobs_completed([running], poll_timeout=10)
        statuses = client.get_job_statuses([queued, running], poll_timeout=10)
    assert statuses == [queued, running]
    assert running.state == JOB_COMPLETE
    assert running.status["known"] is False
    assert not running.timed_out
    assert (3, 7) in running.status_updates
    assert client.wait_until_job_statuses_received([running], poll_timeout=10) == [running]


def test_get_job_status_before_creation_is_refused(runtime: types.ModuleType, address: str) -> None:
    client = runtime.GearmanClient([address])
    request = client._create_request_from_dictionary({"task": "never-sent", "data": b""})
    with pytest.raises(errors.InvalidClientState):
        client.get_job_status(request)


def test_status_by_handle_and_by_unique_from_another_client(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("other")
    submitter = runtime.GearmanClient([address])
    background = submitter.submit_job(
        task, b"bg", unique=unique_name("bg"), background=True, poll_timeout=10
    )
    foreground = submitter.submit_job(
        task, b"fg", unique=unique_name("fg"), wait_until_complete=False, poll_timeout=10
    )
    observer = runtime.GearmanClient([address])
    by_handle = observer.get_status_by_handle(background.job.handle, poll_timeout=10)
    assert by_handle == {
        "handle": background.job.handle,
        "known": True,
        "running": False,
        "numerator": 0,
        "denominator": 0,
        "timed_out": False,
    }
    by_host = observer.get_status_by_handle(background.job.handle.encode(), host=address)
    assert by_host["known"] is True
    by_unique = observer.get_status_by_unique(background.job.unique, poll_timeout=10)
    assert (by_unique["known"], by_unique["client_count"], by_unique["timed_out"]) == (
        True,
        0,
        False,
    )
    assert by_unique["unique"] == background.job.unique
    fg_status = observer.get_status_by_unique(foreground.job.unique, poll_timeout=10)
    assert (fg_status["known"], fg_status["client_count"]) == (True, 1)

    with serving(runtime, [address], {task: reverse}):
        submitter.wait_until_jobs_completed([foreground], poll_timeout=10)
        wait_until(
            runtime,
            lambda: not observer.get_status_by_handle(background.job.handle)["known"],
            message="background job done",
        )
    assert foreground.result == b"gf"
    after = observer.get_status_by_unique(foreground.job.unique, poll_timeout=10)
    assert (after["known"], after["timed_out"]) == (False, False)
    gone = observer.get_status_by_handle(foreground.job.handle, poll_timeout=10)
    assert (gone["known"], gone["running"], gone["timed_out"]) == (False, False, False)
    unknown = observer.get_status_by_handle("H:no-such-host:1", poll_timeout=10)
    assert unknown["known"] is False


# ------------------------------------------------------- job request objects


def test_job_and_request_attributes(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("attrs")
    unique = unique_name("u")
    job = GearmanJob(None, None, task, unique, b"payload")
    assert job.to_dict() == {"task": task, "job_handle": None, "unique": unique, "data": b"payload"}
    request = GearmanJobRequest(job, initial_priority=PRIORITY_HIGH, max_attempts=3)
    assert request.gearman_job is job
    assert request.job is job
    assert request.priority == PRIORITY_HIGH
    assert request.background is False
    assert (request.connection_attempts, request.max_connection_attempts) == (0, 3)
    assert (request.state, request.result, request.exception, request.timed_out) == (
        JOB_UNKNOWN,
        None,
        None,
        False,
    )
    assert list(request.data_updates) == list(request.warning_updates) == []
    assert list(request.status_updates) == []
    assert request.status == {}
    assert "GearmanJobRequest" in repr(request)
    assert task in repr(job)

    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        client.submit_multiple_requests([request], poll_timeout=10)
        assert request.result == b"daolyap"
        assert job.handle is not None
        assert job.to_dict()["job_handle"] == job.handle
        request.reset()
        assert (request.state, request.result, request.connection_attempts) == (
            JOB_UNKNOWN,
            None,
            0,
        )
        client.submit_multiple_requests([request], poll_timeout=10)
        assert request.result == b"daolyap"
        request.initialize_request()
        assert request.state == JOB_UNKNOWN
        assert request.result is None


def test_random_unique_is_used_when_none_is_given(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("nobody")
    client = runtime.GearmanClient([address], random_unique_bytes=8)
    first = client.submit_job(task, b"same", background=True, poll_timeout=10)
    second = client.submit_job(task, b"same", background=True, poll_timeout=10)
    assert len(first.job.unique) == 16
    assert first.job.unique != second.job.unique
    assert first.job.handle != second.job.handle  # distinct uniques never coalesce
    with runtime.GearmanAdminClient([address]) as admin:
        uniques = {u["unique"] for u in admin.get_unique_jobs()}
    assert {first.job.unique, second.job.unique} <= uniques


def test_same_unique_coalesces_onto_one_job(runtime: types.ModuleType, address: str) -> None:
    task, unique = unique_name("nobody"), unique_name("u")
    client = runtime.GearmanClient([address])
    first = client.submit_job(task, b"a", unique=unique, background=True, poll_timeout=10)
    second = client.submit_job(task, b"b", unique=unique.encode(), background=True)
    assert first.job.handle == second.job.handle


# ------------------------------------------------------------- data_encoder


class JSONEncoder(gearman.DataEncoder):
    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        return json.dumps(encodable_object).encode()

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return json.loads(decodable_string)


def test_default_encoder_takes_bytes_and_str_only(runtime: types.ModuleType, address: str) -> None:
    assert runtime.GearmanClient.data_encoder is gearman.NoopEncoder
    assert runtime.GearmanWorker.data_encoder is gearman.NoopEncoder
    task = unique_name("str")
    with serving(runtime, [address], {task: lambda worker, job: job.data}):
        client = runtime.GearmanClient([address])
        assert client.submit_job(task, "héllo", poll_timeout=10).result == "héllo".encode()
        assert client.submit_job(task, b"\xff\x00", poll_timeout=10).result == b"\xff\x00"
        with pytest.raises(TypeError):
            client.submit_job(task, 42, poll_timeout=10)


def test_json_encoder_on_client_and_worker(runtime: types.ModuleType, address: str) -> None:
    task, unique = unique_name("json"), unique_name("u")
    seen: dict[str, Any] = {}

    def add(worker: runtime.GearmanWorker, job: GearmanJob) -> Any:
        seen.update(task=job.task, unique=job.unique, data=job.data)
        worker.send_job_data(job, {"step": 1})
        worker.send_job_warning(job, ["careful"])
        worker.send_job_status(job, 1, 2)
        return {"sum": job.data["a"] + job.data["b"]}

    class JSONClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONEncoder

    class JSONWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONEncoder

    with serving(runtime, [address], {task: add}, worker_class=JSONWorker):
        client = JSONClient([address])
        request = client.submit_job(task, {"a": 2, "b": 3}, unique=unique, poll_timeout=10)
    assert request.result == {"sum": 5}
    assert list(request.data_updates) == [{"step": 1}]
    assert list(request.warning_updates) == [["careful"]]
    assert list(request.status_updates) == [(1, 2)]  # numbers are never encoded
    # names and uniques travel as given, not JSON-encoded
    assert seen == {"task": task, "unique": unique, "data": {"a": 2, "b": 3}}
    assert request.job.unique == unique


# ---------------------------------------------------------- context manager


def test_client_context_manager_closes_its_connections(
    runtime: types.ModuleType, address: str
) -> None:
    client_id = unique_name("cm")

    def listed() -> bool:
        with runtime.GearmanAdminClient([address]) as admin:
            return any(w["client_id"] == client_id for w in admin.get_workers())

    with runtime.GearmanClient([address], client_id=client_id) as client:
        client.submit_job(unique_name("nobody"), b"x", background=True, poll_timeout=10)
        assert listed(), "the client's connection should carry its client id"
    wait_until(runtime, lambda: not listed(), message="client connection closed")


def test_many_threads_do_not_share_state(runtime: types.ModuleType, address: str) -> None:
    """Client objects are independent: four threads (greenlets under gevent), one client each."""
    task = unique_name("threads")
    results: dict[int, bytes] = {}

    def submit(n: int) -> None:
        client = runtime.GearmanClient([address])
        results[n] = client.submit_job(task, b"%d" % n, poll_timeout=10).result

    with serving(runtime, [address], {task: reverse}):
        threads = [runtime.concurrency.start(submit, n) for n in range(4)]
        for thread in threads:
            thread.join(15)
    assert results == {n: (b"%d" % n)[::-1] for n in range(4)}


def test_worker_thread_helper_reraises_errors_from_work(
    runtime: types.ModuleType, address: str
) -> None:
    """The helper itself: an exception escaping work() reaches the test."""

    class Broken(runtime.GearmanWorker):
        def after_poll(self, any_activity: bool) -> bool:
            raise ValueError("from after_poll")

    runner = BackgroundWorker(runtime, Broken([address])).start()
    with pytest.raises(ValueError, match="from after_poll"):
        runner.join()


def test_a_batch_of_submissions_leaves_in_one_write_per_server(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    servers = [gearmand_factory(), gearmand_factory()]
    client = runtime.GearmanClient([s.address for s in servers])
    jobs = [{"task": unique_name("batch"), "data": b"%d" % i} for i in range(40)]
    requests = client.submit_multiple_jobs(jobs, background=True, poll_timeout=10)
    assert all(r.state == JOB_CREATED for r in requests)
    sent = []
    for server in servers:  # private servers: the client's is the only connection to each
        with sockets_connected_to(server.host, server.port) as ours:
            (link,) = ours
            sent.append(tcp_info(link.sock))
    # TCP_NODELAY and a batch smaller than a segment: one data segment is one write
    assert [info.data_segs_out for info in sent] == [1, 1]
    assert sum(info.bytes_sent for info in sent) == sum(
        len(r.submission.function) for r in requests
    ) + sum(12 + len(r.submission.unique) + 2 + len(r.submission.payload) for r in requests)


@pytest.mark.parametrize("goal", list(gearman_proto.Goal))
@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("state", list(gearman_proto.JobState))
@pytest.mark.parametrize("ending", ["", "lost", "undelivered"])
def test_a_wait_settles_exactly_when_the_request_says_so(
    goal: gearman_proto.Goal, background: bool, state: gearman_proto.JobState, ending: str
) -> None:
    # all_settled reads the property JobRequest.settled(goal) picks: the same answer.
    submission = gearman_proto.SubmitJob(function=b"f", background=background)
    request = gearman_proto.JobRequest(submission)
    request.state = state
    request.lost = ending == "lost"
    if ending == "undelivered":
        request.delivery_error = gearman_proto.NoServerAvailable("none")
    assert all_settled([request], goal)() is request.settled(goal)


def test_waiting_for_many_jobs_checks_each_job_a_bounded_number_of_times() -> None:
    """A wait re-checks only the requests not yet seen done, so N jobs cost O(N)."""

    calls = 0

    class Flag:
        def __init__(self) -> None:
            self.done = False

        @property
        def finished(self) -> bool:  # what a wait for FINISHED reads of a request
            nonlocal calls
            calls += 1
            return self.done

    flags = [Flag() for _ in range(500)]
    done = all_settled(flags, gearman_proto.Goal.FINISHED)  # type: ignore[arg-type]
    for flag in flags:  # one job finishes per read, in order
        assert not done()
        flag.done = True
    assert done()
    # Each job is tested once while pending (per read) and once when it passes.
    assert calls <= 2 * len(flags) + 1


def _streamer(count: int, size: int) -> Callable[[Any, GearmanJob], bytes]:
    def stream(worker: Any, job: GearmanJob) -> bytes:
        for number in range(count):
            worker.send_job_data(job, b"%06d" % number + b"." * (size - 6))
        worker.send_job_warning(job, b"last words")
        return b"done"

    return stream


def test_streamed_updates_are_kept_within_max_update_bytes(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("flood")
    with serving(runtime, [address], {task: _streamer(200, 100)}):
        client = runtime.GearmanClient([address], max_update_bytes=1000)
        request = client.submit_job(task, b"", poll_timeout=20)
    assert request.result == b"done"
    kept = list(request.data_updates) + list(request.warning_updates)
    assert sum(len(update) for update in kept) <= 1000
    assert request.dropped_updates == 201 - len(kept)
    assert list(request.warning_updates) == [b"last words"]  # the newest survive
    assert request.data_updates[-1].startswith(b"000199")


def test_updates_go_to_on_update_instead_of_being_kept(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("callback")
    seen: list[tuple[str, bytes]] = []
    with serving(runtime, [address], {task: _streamer(50, 10)}):
        client = runtime.GearmanClient(
            [address], on_update=lambda request, kind, value: seen.append((kind, value[:6]))
        )
        request = client.submit_job(task, b"", poll_timeout=20)
    assert request.result == b"done"
    assert seen == [("data", b"%06d" % n) for n in range(50)] + [("warning", b"last w")]
    assert not request.data_updates
    assert not request.warning_updates
    assert request.dropped_updates == 0
