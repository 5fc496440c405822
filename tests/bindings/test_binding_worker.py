"""``GearmanWorker`` of every runtime against a real gearmand and our client.

Covers ANCHORS.md 2.6: registration (str and bytes names, CAN_DO_TIMEOUT,
CANT_DO, client ids), the ``work()`` loop and its hooks, every
``send_job_*`` reply and the ``on_job_*`` hooks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import types
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    reverse,
    serving,
    unique_name,
    wait_for_workers,
    wait_until,
)

import gearman
from gearman import (
    JOB_COMPLETE,
    JOB_FAILED,
    GearmanJob,
    errors,
)
from gearman.testing import Gearmand
from gearman.worker import POLL_TIMEOUT_IN_SECONDS


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def workers_with_task(runtime: types.ModuleType, address: str, task: str) -> list[dict[str, Any]]:
    with runtime.GearmanAdminClient([address]) as admin:
        return [w for w in admin.get_workers() if task in w["tasks"]]


def connected(worker: Any) -> list[Any]:
    """The servers *worker*'s runtime has a link to (the runtime interface's ``connected``)."""
    return [server for server in worker.servers if worker._io.connected(server)]


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("registered_as", [str, bytes])
@pytest.mark.parametrize("submitted_as", [str, bytes])
def test_str_and_bytes_task_names_match_either_way(
    runtime: types.ModuleType, address: str, registered_as: type, submitted_as: type
) -> None:
    name = unique_name("name-é")
    registered = name if registered_as is str else name.encode()
    submitted = name if submitted_as is str else name.encode()
    seen: list[Any] = []

    def task(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        seen.append(job.task)
        return b"ok"

    with serving(runtime, [address], {registered: task}) as runner:
        assert runner.worker.worker_abilities == {registered: task}
        request = runtime.GearmanClient([address]).submit_job(submitted, b"x", poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"ok")
    assert seen == [registered]  # the job reports the name as it was registered
    wait_until(
        runtime,
        lambda: not workers_with_task(runtime, address, name),
        message="worker gone after stop",
    )


def test_register_task_returns_the_task_and_registers_on_the_server(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("reg")
    worker = runtime.GearmanWorker([address])
    assert worker.register_task(task, reverse) == task
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, address, task)


def test_unregister_task_before_and_during_work(runtime: types.ModuleType, address: str) -> None:
    keep, drop, later = unique_name("keep"), unique_name("drop"), unique_name("later")
    worker = runtime.GearmanWorker([address])
    worker.register_task(keep, reverse)
    worker.register_task(drop, reverse)
    worker.register_task(later, reverse)
    assert worker.unregister_task(drop) == drop
    assert set(worker.worker_abilities) == {keep, later}

    def unregister_later(w: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        w.unregister_task(later)  # from inside a job, in the worker's thread
        return b"done"

    worker.register_task(keep, unregister_later)
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, address, later)
        (listed,) = workers_with_task(runtime, address, keep)
        assert set(listed["tasks"]) == {keep, later}
        client = runtime.GearmanClient([address])
        assert client.submit_job(keep, b"x", poll_timeout=10).result == b"done"
        wait_until(
            runtime, lambda: not workers_with_task(runtime, address, later), message="CANT_DO later"
        )
        (listed,) = workers_with_task(runtime, address, keep)
        assert listed["tasks"] == (keep,)
        nobody = client.submit_job(drop, b"x", poll_timeout=0.3)
        assert nobody.timed_out
        assert nobody.state == gearman.JOB_CREATED


def test_set_client_id_is_listed_by_the_server(runtime: types.ModuleType, address: str) -> None:
    task, client_id = unique_name("cid"), unique_name("worker-id")
    worker = runtime.GearmanWorker([address])
    assert worker.set_client_id(client_id) == client_id
    assert worker.worker_client_id == client_id
    worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        wait_for_workers(runtime, address, task)
        (listed,) = workers_with_task(runtime, address, task)
        assert listed["client_id"] == client_id
        assert listed["ip"] == "127.0.0.1"
        assert listed["file_descriptor"].isdigit()


def test_can_do_timeout_requeues_a_job_held_too_long(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("timeout")
    calls: list[bytes] = []

    def slow_once(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.handle.encode())
        if len(calls) == 1:
            # Hold the job until gearmand has re-queued it (retries counted).
            def requeued() -> bool:
                with runtime.GearmanAdminClient([address]) as admin:
                    return any(
                        j["handle"] == job.handle and j["retries"] >= 1 for j in admin.get_jobs()
                    )

            wait_until(runtime, requeued, timeout=10, interval=0.05, message="job re-queued")
            return b"too late"
        return b"in time"

    worker = runtime.GearmanWorker([address])
    worker.register_task(task, slow_once, timeout=0.2)
    with BackgroundWorker(runtime, worker):
        request = runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"in time")
    assert len(calls) == 2
    assert calls[0] == calls[1]


# ------------------------------------------------------------------ the loop


def test_after_poll_is_called_first_with_false_then_after_every_wait(
    runtime: types.ModuleType, address: str
) -> None:
    calls: list[tuple[float, bool]] = []

    class Counting(runtime.GearmanWorker):
        def after_poll(self, any_activity: bool) -> bool:
            calls.append((time.monotonic(), any_activity))
            return len(calls) < 6

    task = unique_name("idle")
    worker = Counting([address])
    worker.register_task(task, reverse)
    runner = BackgroundWorker(runtime, worker, poll_timeout=0.05).start()
    runner.join()  # after_poll returning False ends work() on its own: the idle loop woke
    assert len(calls) == 6
    assert calls[0][1] is False
    assert [activity for _, activity in calls] == [False] * 6  # nothing happened
    assert connected(worker) == []  # connections closed when work() ends
    wait_for_workers(runtime, address, task, count=0)


def test_after_poll_sees_activity(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("active")
    activity: list[bool] = []

    class Recording(runtime.GearmanWorker):
        def after_poll(self, any_activity: bool) -> bool:
            activity.append(any_activity)
            return True

    with serving(runtime, [address], {task: reverse}, worker_class=Recording, poll_timeout=0.5):
        runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=10)
        wait_until(runtime, lambda: True in activity, message="an active poll")


def test_after_job_returning_false_leaves_work(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("once")

    class Once(runtime.GearmanWorker):
        jobs = 0

        def after_job(self) -> bool:
            self.jobs += 1
            return False

    worker = Once([address])
    worker.register_task(task, reverse)
    runner = BackgroundWorker(runtime, worker, poll_timeout=5.0).start()
    client = runtime.GearmanClient([address])
    first = client.submit_job(task, b"ab", poll_timeout=10)
    assert first.result == b"ba"
    runner.join()  # not stopped by the test: after_job ended work()
    assert worker.jobs == 1
    second = client.submit_job(task, b"cd", poll_timeout=0.3)
    assert second.timed_out, "nobody should serve after the worker left"


def test_default_poll_timeout_constant() -> None:
    assert POLL_TIMEOUT_IN_SECONDS == 60.0


def test_has_job_lock_only_while_a_job_runs(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("lock")
    inside: list[bool] = []

    def task_fn(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        inside.append(worker.has_job_lock())
        return b""

    worker = runtime.GearmanWorker([address])
    worker.register_task(task, task_fn)
    assert worker.has_job_lock() is False
    with BackgroundWorker(runtime, worker):
        runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert inside == [True]
    assert worker.has_job_lock() is False


# ------------------------------------------------------------- job replies


def test_data_status_and_warning_reach_the_client(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("updates")
    job_seen: list[dict[str, Any]] = []

    def chatty(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        job_seen.append(job.to_dict())
        assert job.connection is not None
        worker.send_job_status(job, 1, 3)
        worker.send_job_data(job, b"part-1")
        worker.send_job_warning(job, b"careful")
        worker.send_job_status(job, 2, 3)
        worker.send_job_data(job, "part-2")
        return b"whole"

    with serving(runtime, [address], {task: chatty}):
        unique = unique_name("u")
        request = runtime.GearmanClient([address]).submit_job(
            task, b"in", unique=unique, poll_timeout=10
        )
    assert request.result == b"whole"
    assert list(request.data_updates) == [b"part-1", b"part-2"]
    assert list(request.warning_updates) == [b"careful"]
    assert list(request.status_updates) == [(1, 3), (2, 3)]
    assert request.status["numerator"] == 2
    assert request.status["denominator"] == 3
    (seen,) = job_seen
    assert seen == {
        "task": task,
        "job_handle": request.job.handle,
        "unique": unique,
        "data": b"in",
    }


def test_send_job_status_needs_numbers(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("badstatus")
    raised: list[BaseException] = []

    def task_fn(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        try:
            worker.send_job_status(job, "1", 2)  # type: ignore[arg-type]
        except TypeError as error:
            raised.append(error)
        return b""

    with serving(runtime, [address], {task: task_fn}):
        runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert len(raised) == 1


def test_replies_for_a_job_no_server_assigned_are_refused(
    runtime: types.ModuleType, address: str
) -> None:
    worker = runtime.GearmanWorker([address])
    job = GearmanJob(None, None, "x", None, b"")
    with pytest.raises(errors.InvalidWorkerState):
        worker.send_job_complete(job, b"")


def test_send_job_failure_fails_the_request(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("failure")

    def fail(worker: runtime.GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_data(job, b"before failing")
        worker.send_job_failure(job)

    class NoAutoComplete(runtime.GearmanWorker):
        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            return True  # the task already ended the job

    with serving(runtime, [address], {task: fail}, worker_class=NoAutoComplete):
        request = runtime.GearmanClient([address]).submit_job(task, b"x", poll_timeout=10)
    assert (request.state, request.complete, request.result) == (JOB_FAILED, True, None)
    assert list(request.data_updates) == [b"before failing"]


@pytest.mark.parametrize("client_exceptions", [True, False])
def test_send_job_exception(
    runtime: types.ModuleType, address: str, client_exceptions: bool
) -> None:
    task = unique_name("exc")

    class ExceptionWorker(runtime.GearmanWorker):
        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            self.send_job_exception(current_job, b"boom: " + job_result)
            return False

    with serving(runtime, [address], {task: reverse}, worker_class=ExceptionWorker):
        client = runtime.GearmanClient([address], exceptions=client_exceptions)
        request = client.submit_job(task, b"cba", poll_timeout=10)
    assert (request.state, request.complete, request.timed_out) == (JOB_FAILED, True, False)
    assert request.exception == (b"boom: abc" if client_exceptions else None)


def test_send_exceptions_worker_reports_the_exception_text(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("raise")

    def boom(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise KeyError("missing-thing")

    with serving(runtime, [address], {task: boom}, send_exceptions=True):
        client = runtime.GearmanClient([address], exceptions=True)
        request = client.submit_job(task, b"", poll_timeout=10)
    assert request.state == JOB_FAILED
    assert b"KeyError" in request.exception
    assert b"missing-thing" in request.exception


def test_exception_payload_goes_through_the_encoder(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("jsonexc")

    class JSONEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object: Any) -> bytes:
            return json.dumps(encodable_object).encode()

        @classmethod
        def decode(cls, decodable_string: bytes) -> Any:
            return json.loads(decodable_string)

    class JSONWorker(runtime.GearmanWorker):
        data_encoder = JSONEncoder

    class JSONClient(runtime.GearmanClient):
        data_encoder = JSONEncoder

    def task_fn(worker: runtime.GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_exception(job, {"error": job.data["why"]})

    class NoAutoComplete(JSONWorker):
        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            return True

    with serving(runtime, [address], {task: task_fn}, worker_class=NoAutoComplete):
        request = JSONClient([address], exceptions=True).submit_job(
            task, {"why": "bad"}, poll_timeout=10
        )
    assert (request.state, request.exception) == (JOB_FAILED, {"error": "bad"})


# ---------------------------------------------------------------- job hooks


def test_on_job_hooks_can_be_overridden(runtime: types.ModuleType, address: str) -> None:
    ok_task, bad_task = unique_name("hook-ok"), unique_name("hook-bad")
    events: list[tuple[str, Any]] = []

    class Hooked(runtime.GearmanWorker):
        def on_job_execute(self, current_job: GearmanJob) -> bool:
            events.append(("execute", current_job.data))
            return super().on_job_execute(current_job)

        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            events.append(("complete", job_result))
            return super().on_job_complete(current_job, job_result + b"!")

        def on_job_exception(self, current_job: GearmanJob, exc_info: Any) -> bool:
            events.append(("exception", exc_info[0]))
            self.send_job_complete(current_job, b"recovered from " + str(exc_info[1]).encode())
            return True

    def bad(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise ValueError("oops")

    with serving(runtime, [address], {ok_task: reverse, bad_task: bad}, worker_class=Hooked):
        client = runtime.GearmanClient([address])
        ok = client.submit_job(ok_task, b"ab", poll_timeout=10)
        recovered = client.submit_job(bad_task, b"zz", poll_timeout=10)
    assert ok.result == b"ba!"
    assert (recovered.state, recovered.result) == (JOB_COMPLETE, b"recovered from oops")
    assert events == [
        ("execute", b"ab"),
        ("complete", b"ba"),
        ("execute", b"zz"),
        ("exception", ValueError),
    ]


def test_default_on_job_exception_logs_and_fails(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    task = unique_name("logged")

    def bad(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise ZeroDivisionError("divided")

    caplog.set_level(logging.ERROR, logger="gearman")
    with serving(runtime, [address], {task: bad}):
        request = runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert request.state == JOB_FAILED
    (record,) = [r for r in caplog.records if r.name.startswith("gearman") and r.exc_info]
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    assert "Traceback" in caplog.text
    assert "divided" in caplog.text


# ------------------------------------------------------------ context manager


def test_worker_context_manager_and_shutdown_close_connections(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("cm")
    with runtime.GearmanWorker([address]) as worker:
        worker.register_task(task, reverse)
        assert len(worker.establish_worker_connections()) == 1
        assert len(connected(worker)) == 1
        wait_for_workers(runtime, address, task)
    assert connected(worker) == []
    wait_for_workers(runtime, address, task, count=0)


def test_establish_worker_connections_registers_everything(
    runtime: types.ModuleType, address: str
) -> None:
    task, client_id = unique_name("est"), unique_name("id")
    worker = runtime.GearmanWorker([address])
    worker.set_client_id(client_id)
    worker.register_task(task, reverse)
    links = worker.establish_worker_connections()
    try:
        assert len(links) == 1
        wait_for_workers(runtime, address, task)
        (listed,) = workers_with_task(runtime, address, task)
        assert listed["client_id"] == client_id
    finally:
        worker.shutdown()


def test_worker_with_no_reachable_server_keeps_trying(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server: Gearmand = gearmand_factory()
    address = server.address
    server.stop()
    task = unique_name("late")
    worker = runtime.GearmanWorker([address], connect_timeout=1.0)
    worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        # work() must not die while the server is down ...
        wait_until(runtime, lambda: worker._session.pool._failures, message="a failed connect")
        server.restart()  # same port
        # ... and must serve as soon as it is back.
        wait_for_workers(runtime, address, task)
        request = runtime.GearmanClient([address]).submit_job(task, b"up", poll_timeout=10)
    assert request.result == b"pu"


def test_several_jobs_in_a_row(runtime: types.ModuleType, address: str) -> None:
    task = unique_name("row")
    counter = {"n": 0}
    lock = threading.Lock()

    def count(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        with lock:
            counter["n"] += 1
        return job.data

    with serving(runtime, [address], {task: count}):
        client = runtime.GearmanClient([address])
        requests = client.submit_multiple_jobs(
            [{"task": task, "data": b"%d" % n} for n in range(50)], poll_timeout=20
        )
    assert [r.result for r in requests] == [b"%d" % n for n in range(50)]
    assert counter["n"] == 50
