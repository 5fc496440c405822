"""python-gearman 2.0.2's documented examples, run against a real gearmand.

Each test is one example of python-gearman's ``docs/`` (``client.rst``,
``worker.rst``, ``admin_client.rst``, ``job.rst``, ``1to2.rst``, and
master's ``types_of_jobs.rst``), in the docs' own shape: the user's code as
written there, with Python 3 edits only (``print()``, ``b""`` where
python-gearman code passes bytes) and these substitutions, each said where
it is made:

- ``gearman.GearmanClient`` / ``GearmanWorker`` / ``GearmanAdminClient``
  are the runtime's classes (``runtime.GearmanClient``...), so the example
  runs on every runtime; constants, ``gearman.DataEncoder`` and
  ``gearman.job`` are the shared ``gearman`` module's.
- ``localhost:4730`` is the test's gearmand; ``otherhost:4730`` a port
  nothing listens on; task names are made unique per test.
- ``gm_worker.work()`` runs in the background (`BackgroundWorker`).
- The docs' ``time.sleep()`` calls stand for "time passes"; they are left
  out, or replaced by events the test sets (no sleeps as synchronisation).
- Where the docs' code has a bug that fails in Python 2 as well, the
  smallest fix is made and named.
"""

# ruff: noqa: UP031, C408 -- the docs format with % and write dict(task=...)

from __future__ import annotations

import collections
import json
import pickle
import time
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
    wait_until,
)

import gearman
import gearman.job
from devtools.gearmand import Gearmand, pick_free_port
from gearman.constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_NONE,
)


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def down_address() -> str:
    """A server that is down: nothing listens on its port."""
    return f"127.0.0.1:{pick_free_port()}"


# docs/client.rst, "Function available to all examples" (print() made a function).
def check_request_status(job_request):  # type: ignore[no-untyped-def]
    if job_request.complete:
        print(
            "Job %s finished!  Result: %s - %s"
            % (job_request.job.unique, job_request.state, job_request.result)
        )
    elif job_request.timed_out:
        print("Job %s timed out!" % job_request.unique)
    elif job_request.state == JOB_UNKNOWN:
        print("Job %s connection failed!" % job_request.unique)


# ------------------------------------------------------------- client.rst


def test_client_rst_sending_a_simple_job_as_a_blocking_call(
    runtime: types.ModuleType, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/client.rst, GearmanClient.submit_job: "Sending a simple job as a blocking call".
    task_name = unique_name("task_name")
    with serving(runtime, [address], {task_name: reverse}):
        gm_client = runtime.GearmanClient([address, down_address()])  # 'otherhost:4730' is down

        # See gearman/job.py to see attributes on the GearmanJobRequest
        # Defaults to PRIORITY_NONE, background=False (synchronous task), wait_until_complete=True
        completed_job_request = gm_client.submit_job(task_name, "arbitrary binary data")
        check_request_status(completed_job_request)

    unique = completed_job_request.job.unique
    assert capsys.readouterr().out == (
        f"Job {unique} finished!  Result: COMPLETE - {b'atad yranib yrartibra'}\n"
    )


def test_client_rst_high_priority_background_blocking_call(
    runtime: types.ModuleType, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/client.rst, GearmanClient.submit_job: "Sending a high priority, background,
    # blocking call".
    task_name = unique_name("task_name")
    ran = runtime.concurrency.Event()

    def record(worker: Any, job: gearman.GearmanJob) -> bytes:
        ran.set()
        return job.data

    with serving(runtime, [address], {task_name: record}):
        gm_client = runtime.GearmanClient([address, down_address()])  # 'otherhost:4730' is down

        # See gearman/job.py to see attributes on the GearmanJobRequest
        submitted_job_request = gm_client.submit_job(
            task_name, "arbitrary binary data", priority=gearman.PRIORITY_HIGH, background=True
        )

        check_request_status(submitted_job_request)
        assert ran.wait(10), "the background job never ran"

    unique = submitted_job_request.job.unique
    assert capsys.readouterr().out == f"Job {unique} finished!  Result: CREATED - None\n"
    assert submitted_job_request.priority == gearman.PRIORITY_HIGH
    assert submitted_job_request.background is True


def test_client_rst_submit_multiple_jobs_then_wait_until_jobs_completed(
    runtime: types.ModuleType, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/client.rst, GearmanClient.submit_multiple_jobs: "Sending multiple jobs all at
    # once and behave like a non-blocking call (wait_until_complete=False)".
    task_name, other_task = unique_name("task_name"), unique_name("other_task")
    with serving(runtime, [address], {task_name: reverse, other_task: lambda w, j: j.data.upper()}):
        gm_client = runtime.GearmanClient([address])

        list_of_jobs = [
            dict(task=task_name, data="binary data"),
            dict(task=other_task, data="other binary data"),
        ]
        submitted_requests = gm_client.submit_multiple_jobs(
            list_of_jobs, background=False, wait_until_complete=False
        )

        # Once we know our jobs are accepted, we can do other stuff and wait for results later
        # in the function (the doc's time.sleep(1.0) stands for that other stuff: left out)

        # Wait at most 5 seconds before timing out incomplete requests
        completed_requests = gm_client.wait_until_jobs_completed(
            submitted_requests, poll_timeout=5.0
        )
        for completed_job_request in completed_requests:
            check_request_status(completed_job_request)

    first, second = completed_requests
    assert capsys.readouterr().out == (
        f"Job {first.job.unique} finished!  Result: COMPLETE - {b'atad yranib'}\n"
        f"Job {second.job.unique} finished!  Result: COMPLETE - {b'OTHER BINARY DATA'}\n"
    )


def test_client_rst_recovering_from_failed_connections(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # docs/client.rst, GearmanClient.submit_multiple_requests: "Recovering from failed
    # connections".  The docs "pretend" the servers failed and some requests timed out;
    # here they really do: the server restarts while both jobs wait in its queue, then a
    # worker answers one job at once and holds the other until the first retry is over.
    server: Gearmand = gearmand_factory()
    task_name, other_task = unique_name("task_name"), unique_name("other_task")
    runs: collections.Counter[str] = collections.Counter()
    release = runtime.concurrency.Event()

    def answer(worker: Any, job: gearman.GearmanJob) -> bytes:
        runs[job.task] += 1
        return job.data[::-1]

    def hold(worker: Any, job: gearman.GearmanJob) -> bytes:
        runs[job.task] += 1
        assert release.wait(10), "the test never released the held job"
        return job.data[::-1]

    def fail_the_server_once_both_jobs_wait() -> None:
        def both_queued() -> bool:
            lines = [
                admin_status(runtime, server.address, name) for name in (task_name, other_task)
            ]
            return all(line is not None and line["queued"] == 1 for line in lines)

        wait_until(runtime, both_queued, message="both jobs queued")
        server.restart()

    failing = runtime.concurrency.start(fail_the_server_once_both_jobs_wait)

    gm_client = runtime.GearmanClient([server.address])

    list_of_jobs = [
        dict(task=task_name, data="task binary string"),
        dict(task=other_task, data="other binary string"),
    ]
    failed_requests = gm_client.submit_multiple_jobs(list_of_jobs, background=False)
    failing.join(10)

    # Let's pretend our assigned requests' Gearman servers all failed
    assert all(request.state == JOB_UNKNOWN for request in failed_requests), (
        "All connections didn't fail!"
    )

    with (
        serving(runtime, [server.address], {task_name: answer}),
        serving(runtime, [server.address], {other_task: hold}),
    ):
        wait_for_workers(runtime, server.address, task_name)
        wait_for_workers(runtime, server.address, other_task)
        # Let's pretend our assigned requests' don't fail but some simply timeout
        retried_connection_failed_requests = gm_client.submit_multiple_requests(
            failed_requests, wait_until_complete=True, poll_timeout=1.0
        )

        # (the doc reads `retried_requests` here, a name it never set: the list just returned)
        timed_out_requests = [
            job_request
            for job_request in retried_connection_failed_requests
            if job_request.timed_out
        ]
        release.set()  # the test lets the held job finish now

        # For our timed out requests, lets wait a little longer until they're complete
        retried_timed_out_requests = gm_client.submit_multiple_requests(
            timed_out_requests, wait_until_complete=True, poll_timeout=4.0
        )

    answered, held = failed_requests
    assert held in timed_out_requests, "the held job cannot have finished within the first retry"
    assert retried_timed_out_requests == timed_out_requests
    assert (answered.state, answered.result) == (JOB_COMPLETE, b"gnirts yranib ksat")
    assert (held.state, held.result, held.timed_out) == (
        JOB_COMPLETE,
        b"gnirts yranib rehto",
        False,
    )
    assert runs == {task_name: 1, other_task: 1}, "a request still running must not be resent"


def test_client_rst_send_receive_python_objects(runtime: types.ModuleType, address: str) -> None:
    # docs/client.rst, "Extending the client": "Send/receive Python objects (not just byte
    # strings)".  A worker with the same encoder answers, so the result is an object too.
    task_name = unique_name("task_name")

    # By default, GearmanClient's can only send off byte-strings
    # If we want to be able to send out Python objects, we can specify a data encoder
    # This will automatically convert byte strings <-> Python objects for ALL commands that
    # have the 'data' field
    #
    # See http://gearman.org/index.php?id=protocol for client commands that send/receive
    # 'opaque data'

    class PickleDataEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object):  # type: ignore[no-untyped-def]
            return pickle.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string):  # type: ignore[no-untyped-def]
            return pickle.loads(decodable_string)

    class PickleExampleClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = PickleDataEncoder

    class PickleWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = PickleDataEncoder

    received: list[Any] = []

    def answer(worker: Any, job: gearman.GearmanJob) -> Any:
        received.append(job.data)
        return {"seen": job.data, "keys": sorted(job.data)}

    with serving(runtime, [address], {task_name: answer}, worker_class=PickleWorker):
        my_python_object = {"hello": "there"}

        gm_client = PickleExampleClient([address])
        request = gm_client.submit_job(task_name, my_python_object)  # (the doc drops the result)

    assert received == [{"hello": "there"}]
    assert request.result == {"seen": {"hello": "there"}, "keys": ["hello"]}


# ------------------------------------------------------------- worker.rst


def test_worker_rst_basic_worker_that_reverses_a_byte_string(
    runtime: types.ModuleType, address: str
) -> None:
    # docs/worker.rst, GearmanWorker.work: "Setting up a basic worker that reverses a given
    # byte-string".
    task = unique_name("reverse")
    gm_worker = runtime.GearmanWorker([address])

    # See gearman/job.py to see attributes on the GearmanJob
    # Send back a reversed version of the 'data' string
    def task_listener_reverse(gearman_worker, gearman_job):  # type: ignore[no-untyped-def]
        # the doc returns reversed(gearman_job.data), an iterator (in Python 2 as well),
        # which no encoder takes: made bytes
        return bytes(reversed(gearman_job.data))

    # gm_worker.set_client_id is optional
    gm_worker.set_client_id("your_worker_client_id_name")
    gm_worker.register_task(task, task_listener_reverse)

    # Enter our work loop and call gm_worker.after_poll() after each time we timeout/see
    # socket activity
    with BackgroundWorker(runtime, gm_worker):  # gm_worker.work(), in the background
        wait_for_workers(runtime, address, task)
        with runtime.GearmanAdminClient([address]) as admin:
            rows = [row for row in admin.get_workers() if task in row["tasks"]]
        request = runtime.GearmanClient([address]).submit_job(task, b"Hello World!")

    assert [row["client_id"] for row in rows] == ["your_worker_client_id_name"]
    assert (request.state, request.result) == (JOB_COMPLETE, b"!dlroW olleH")


def test_worker_rst_sending_in_flight_job_updates(runtime: types.ModuleType, address: str) -> None:
    # docs/worker.rst, "Sending in-flight job updates": "Callback function sending back
    # inflight job updates".
    task = unique_name("reverse")
    gm_worker = runtime.GearmanWorker([address])

    # See gearman/job.py to see attributes on the GearmanJob
    # Send back a reversed version of the 'data' string through WORK_DATA instead of
    # WORK_COMPLETE
    def task_listener_reverse_inflight(gearman_worker, gearman_job):  # type: ignore[no-untyped-def]
        # the doc reverses with reversed(), which has no len() (in Python 2 as well): sliced
        reversed_data = gearman_job.data[::-1]
        total_chars = len(reversed_data)

        for idx, character in enumerate(reversed_data):
            # Python 3: iterating bytes gives ints; the doc's str(character) meant one byte
            gearman_worker.send_job_data(gearman_job, bytes([character]))
            gearman_worker.send_job_status(gearman_job, idx + 1, total_chars)

    # gm_worker.set_client_id is optional
    gm_worker.register_task(task, task_listener_reverse_inflight)

    # Enter our work loop and call gm_worker.after_poll() after each time we timeout/see
    # socket activity
    with BackgroundWorker(runtime, gm_worker):  # gm_worker.work(), in the background
        request = runtime.GearmanClient([address]).submit_job(task, b"Hello World!")

    assert request.state == JOB_COMPLETE
    assert request.result == b""  # the callback returned None
    assert b"".join(request.data_updates) == b"!dlroW olleH"
    assert list(request.data_updates) == [bytes([c]) for c in b"!dlroW olleH"]
    assert (request.status["numerator"], request.status["denominator"]) == (12, 12)


def test_worker_rst_send_receive_python_objects_and_do_work_between_polls(
    runtime: types.ModuleType, address: str
) -> None:
    # docs/worker.rst, "Extending the worker": "Send/receive Python objects and do work
    # between polls".  json.dumps returns str: the encoder's output is text, not bytes.
    task = unique_name("json")

    # By default, GearmanWorker's can only send off byte-strings
    # If we want to be able to send out Python objects, we can specify a data encoder
    # This will automatically convert byte strings <-> Python objects for ALL commands that
    # have the 'data' field
    #
    # See http://gearman.org/index.php?id=protocol for Worker commands that send/receive
    # 'opaque data'
    #
    class JSONDataEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object):  # type: ignore[no-untyped-def]
            return json.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string):  # type: ignore[no-untyped-def]
            return json.loads(decodable_string)

    class DBRollbackJSONWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

        def after_poll(self, any_activity):  # type: ignore[no-untyped-def]
            # After every select loop, let's rollback our DB connections just to be safe
            continue_working = True
            self.db_connections.rollback()
            return continue_working

    class Rollbacks:
        """The application's DB connections (the doc leaves them to the reader)."""

        count = 0

        def rollback(self) -> None:
            self.count += 1

    class JSONClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    worker = DBRollbackJSONWorker([address])
    worker.db_connections = Rollbacks()
    worker.register_task(task, lambda gearman_worker, job: {"sum": sum(job.data["numbers"])})
    with BackgroundWorker(runtime, worker):
        request = JSONClient([address]).submit_job(task, {"numbers": [1, 2, 3]}, poll_timeout=10)
        later = JSONClient([address]).submit_job(task, {"numbers": [4]}, poll_timeout=10)

    assert (request.state, request.result) == (JOB_COMPLETE, {"sum": 6})
    assert (later.state, later.result) == (JOB_COMPLETE, {"sum": 4})
    assert worker.db_connections.count >= 1, "after_poll never ran"


# ------------------------------------------------------- admin_client.rst


def test_admin_client_rst_checking_server_state(runtime: types.ModuleType, address: str) -> None:
    # docs/admin_client.rst, "Interacting with a server": "Checking server state".
    task = unique_name("state")
    with serving(runtime, [address], {task: reverse}):
        wait_for_workers(runtime, address, task)
        gm_admin_client = runtime.GearmanAdminClient([address])

        # Inspect server state
        status_response = gm_admin_client.get_status()
        version_response = gm_admin_client.get_version()
        workers_response = gm_admin_client.get_workers()

    assert isinstance(status_response, tuple)
    (line,) = [row for row in status_response if row["task"] == task]
    assert line == {"task": task, "queued": 0, "running": 0, "workers": 1}
    assert isinstance(version_response, str)
    assert version_response[:1].isdigit(), version_response
    assert isinstance(workers_response, tuple)
    (worker_row,) = [row for row in workers_response if task in row["tasks"]]
    assert set(worker_row) == {"file_descriptor", "ip", "client_id", "tasks"}
    assert worker_row["tasks"] == (task,)
    assert all(isinstance(worker_row[key], str) for key in ("file_descriptor", "ip", "client_id"))


def test_admin_client_rst_checking_server_response_time(
    runtime: types.ModuleType, address: str
) -> None:
    # docs/admin_client.rst, "Testing server response times": "Checking server response time".
    gm_admin_client = runtime.GearmanAdminClient([address])
    response_time = gm_admin_client.ping_server()

    assert isinstance(response_time, float)
    assert response_time >= 0.0


# ---------------------------------------------------------------- 1to2.rst


def test_1to2_rst_client_single_task(runtime: types.ModuleType, address: str) -> None:
    # docs/1to2.rst, "Client (single task)", the python-gearman 2.x half.
    task = unique_name("echo")
    with serving(runtime, [address], {task: lambda worker, job: job.data}):
        new_client = runtime.GearmanClient([address])
        current_request = new_client.submit_job(task, "foo")
        new_result = current_request.result

    assert new_result == b"foo"


def test_1to2_rst_client_multiple_tasks(runtime: types.ModuleType, address: str) -> None:
    # docs/1to2.rst, "Client (multiple tasks)", the python-gearman 2.x half ('foo' is the
    # bytes it was in Python 2, so the result compares equal to the job's data).
    task = unique_name("echo")
    with serving(runtime, [address], {task: lambda worker, job: job.data}):
        new_client = runtime.GearmanClient([address])
        new_jobs = [
            dict(task=task, data=b"foo"),
            dict(task=task, data=b"bar"),
        ]

        completed_requests = new_client.submit_multiple_jobs(new_jobs)
        for current_request in completed_requests:
            assert current_request.result == current_request.job.data

    assert [r.result for r in completed_requests] == [b"foo", b"bar"]


def test_1to2_rst_worker(
    runtime: types.ModuleType, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/1to2.rst, "Worker", the python-gearman 2.x half (master's text of the
    # on_job_complete message; 2.0.2 printed the on_job_exception one there by mistake).
    # A second task that raises is added to reach on_job_exception.
    task, failing = unique_name("echo"), unique_name("raises")

    class CustomGearmanWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def on_job_execute(self, current_job):  # type: ignore[no-untyped-def]
            print("Job started")
            return super().on_job_execute(current_job)

        def on_job_exception(self, current_job, exc_info):  # type: ignore[no-untyped-def]
            print("Job failed, CAN stop last gasp GEARMAN_COMMAND_WORK_FAIL")
            return super().on_job_exception(current_job, exc_info)

        def on_job_complete(self, current_job, job_result):  # type: ignore[no-untyped-def]
            print("Job complete, CAN stop last gasp GEARMAN_COMMAND_WORK_COMPLETE")
            return super().send_job_complete(current_job, job_result)

        def after_poll(self, any_activity):  # type: ignore[no-untyped-def]
            # Return True if you want to continue polling, replaces callback_fxn
            return True

    def task_callback(gearman_worker, job):  # type: ignore[no-untyped-def]
        return job.data

    def raising_callback(gearman_worker: Any, job: gearman.GearmanJob) -> bytes:
        raise RuntimeError("the task failed")

    new_worker = CustomGearmanWorker([address])
    new_worker.register_task(task, task_callback)
    new_worker.register_task(failing, raising_callback)
    with BackgroundWorker(runtime, new_worker):  # new_worker.work(), in the background
        client = runtime.GearmanClient([address])
        echoed = client.submit_job(task, b"foo", poll_timeout=10)
        echoed_output = capsys.readouterr().out
        failed = client.submit_job(failing, b"bar", poll_timeout=10)
        failed_output = capsys.readouterr().out

    assert (echoed.state, echoed.result) == (JOB_COMPLETE, b"foo")
    assert echoed_output == (
        "Job started\nJob complete, CAN stop last gasp GEARMAN_COMMAND_WORK_COMPLETE\n"
    )
    assert failed.state == JOB_FAILED
    assert (
        failed_output == "Job started\nJob failed, CAN stop last gasp GEARMAN_COMMAND_WORK_FAIL\n"
    )


# ------------------------------------------------------ types_of_jobs.rst


def test_types_of_jobs_rst_sample_code(
    runtime: types.ModuleType, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/types_of_jobs.rst (master), "Sample Code": the client asks for the status of a
    # running online job through a request it builds from the job's handle and the
    # client's first connection.  The worker's time.sleep() calls become pauses the test
    # ends, and the client's eight checks a second are made at each stage instead.
    queue_name = unique_name("delayed_reverse")
    reached = [runtime.concurrency.Event() for _ in range(4)]
    go = [runtime.concurrency.Event() for _ in range(4)]

    def pause(stage: int) -> None:  # stands for the doc's time.sleep()
        reached[stage].set()
        assert go[stage].wait(10), "the test never let the job go on"

    # --- Client
    gm_client = runtime.GearmanClient([address])

    initial_request = gm_client.submit_job(
        queue_name,  # queue name
        "Hello World!",  # data
        background=False,  # False --> online job, True --> offline job
        wait_until_complete=False,  # False --> don't block, True --> block
    )

    start_time = time.time()

    def check_job_status(initial_request):  # type: ignore[no-untyped-def]
        # Create a request for the gearman server to update the original job's status
        update_job = gearman.job.GearmanJob(
            gm_client.connection_list[0], initial_request.job.handle, None, None, None
        )
        update_request = gearman.job.GearmanJobRequest(update_job)
        update_request.state = "CREATED"

        result = gm_client.get_job_status(update_request)

        print(
            ("Time elpased = %.2f, Known = %s, Running = %s, " + "Status = %d/%d, data = %r")
            % (
                time.time() - start_time,
                result.status["known"],
                result.status["running"],
                result.status["numerator"],
                result.status["denominator"],
                result.data_updates,
            )
        )
        return result  # added: the test reads what the doc prints

    # --- Worker
    def delayed_reverse(worker, job):  # type: ignore[no-untyped-def]
        start_time = time.time()
        et = lambda: time.time() - start_time  # noqa: E731

        print("Received job `%s`, will run for 6 seconds" % job.data)

        pause(0)
        print("Time elapsed = %.2f, updating status to 1/3" % et())
        worker.send_job_status(job, 1, 3)

        pause(1)
        print("Time elapsed = %.2f, sent half-way data" % et())
        worker.send_job_data(job, "half way data")

        pause(2)
        print("Time elapsed = %.2f, updating status to 2/3" % et())
        worker.send_job_status(job, 2, 3)

        pause(3)
        print("Time elapsed = %.2f, updating status to 3/3 and returning" % et())

        return job.data[::-1]

    def seen(numerator: int) -> tuple[Any, ...]:
        def check() -> tuple[Any, ...] | None:
            status = check_job_status(initial_request).status
            values = (status["known"], status["running"], status["numerator"])
            return values if values == (True, True, numerator) else None

        return wait_until(runtime, check, message=f"status {numerator}/3 on the server")

    queued = check_job_status(initial_request).status
    gearman_worker = runtime.GearmanWorker([address])
    gearman_worker.register_task(queue_name, delayed_reverse)
    with BackgroundWorker(runtime, gearman_worker):  # gearman_worker.work(), in the background
        assert reached[0].wait(10), "the worker never took the job"
        running = check_job_status(initial_request).status
        go[0].set()
        assert reached[1].wait(10)
        one_third = seen(1)
        go[1].set()
        assert reached[2].wait(10)
        go[2].set()
        assert reached[3].wait(10)
        two_thirds = seen(2)
        go[3].set()
        gm_client.wait_until_jobs_completed([initial_request], poll_timeout=10)
        done = check_job_status(initial_request).status

    assert (queued["known"], queued["running"], queued["numerator"], queued["denominator"]) == (
        True,
        False,
        0,
        0,
    )
    assert (running["known"], running["running"], running["numerator"]) == (True, True, 0)
    assert one_third == (True, True, 1)
    assert two_thirds == (True, True, 2)
    assert (done["known"], done["running"]) == (False, False)
    assert (initial_request.state, initial_request.result) == (JOB_COMPLETE, b"!dlroW olleH")
    assert b"half way data" in initial_request.data_updates
    output = capsys.readouterr().out.splitlines()
    assert "Received job `b'Hello World!'`, will run for 6 seconds" in output
    assert output[0].startswith("Time elpased = ")
    assert output[0].endswith("Known = True, Running = False, Status = 0/0, data = deque([])")
    assert any(line.endswith("Status = 2/3, data = deque([])") for line in output)
    assert output[-1].endswith("Known = False, Running = False, Status = 0/0, data = deque([])")


# ----------------------------------------------------------------- job.rst


def test_job_rst_documented_attributes(runtime: types.ModuleType, address: str) -> None:
    # docs/job.rst: every attribute it documents on GearmanJob and GearmanJobRequest, on a
    # real foreground job that sent data, a warning and a status before it completed.
    task = unique_name("attrs")

    def chatty(worker: Any, job: gearman.GearmanJob) -> bytes:
        worker.send_job_data(job, b"some data")
        worker.send_job_warning(job, b"a warning")
        worker.send_job_status(job, 1, 2)
        return b"result"

    client = runtime.GearmanClient([address])
    request = client._create_request_from_dictionary({"task": task, "data": b"payload"})
    # GearmanJob.connection: "Could be None prior to client job submission"
    assert request.job.connection is None
    assert request.state == JOB_UNKNOWN
    with serving(runtime, [address], {task: chatty}):
        client.submit_multiple_requests([request], poll_timeout=10)

    job = request.gearman_job
    assert request.job is job
    # GearmanJob.connection: "GearmanConnection - Server assignment"
    import gearman.connection  # noqa: PLC0415 -- python-gearman's module

    assert isinstance(job.connection, gearman.connection.GearmanConnection)
    assert isinstance(job.handle, str)
    assert (job.task, job.data) == (task, b"payload")
    assert isinstance(job.unique, str)
    assert request.priority == PRIORITY_NONE
    assert request.background is False
    assert isinstance(request.connection_attempts, int)
    assert isinstance(request.max_connection_attempts, int)
    assert (request.result, request.exception) == (b"result", None)
    assert request.state in (JOB_UNKNOWN, JOB_PENDING, JOB_CREATED, JOB_FAILED, JOB_COMPLETE)
    assert (request.state, request.timed_out, request.complete) == (JOB_COMPLETE, False, True)
    assert request.warning_updates == collections.deque([b"a warning"])
    assert request.data_updates == collections.deque([b"some data"])
    assert set(request.status) == {
        "handle",
        "known",
        "running",
        "numerator",
        "denominator",
        "time_received",
    }
    assert (request.status["handle"], request.status["numerator"]) == (job.handle, 1)
    assert request.status["denominator"] == 2
    assert (request.status["known"], request.status["running"]) == (True, True)
    assert list(request.status_updates)[-1] == (1, 2)  # deprecated since 2.0.1
    assert request.server_status == request.status  # deprecated since 2.0.1
