"""The bad day against real processes, for every runtime: a gearmand SIGKILLed
under waiting clients and a working worker, a persistent queue across kills,
and a worker killed in the middle of a job.

Each test states what it expects; docs/reliability.md lists them with the
guarantee each one proves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

from _binding_helpers import (
    admin_status,
    reverse,
    serving,
    unique_name,
    wait_for_workers,
    wait_until,
)

from gearman import JOB_COMPLETE, GearmanJob
from gearman.testing import Gearmand


def test_a_killed_server_ends_the_waits_it_held_and_its_worker_comes_back(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    """Expectation: a foreground request created on a server that is SIGKILLed
    ends as ``lost`` when the connection dies (never resent: a worker was
    running it; ``timed_out`` is set, as python-gearman set it for a job
    that did not complete); the worker's job reply is dropped, the worker
    reconnects and re-registers on the restarted server by itself, and
    serves new jobs."""
    server: Gearmand = gearmand_factory()
    task = unique_name("killed")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def hold(worker: Any, job: GearmanJob) -> bytes:
        if job.data == b"hold":
            started.set()
            release.wait(30)
        return bytes(job.data[::-1])

    outcome: dict[str, Any] = {}

    def submit() -> None:
        client = runtime.GearmanClient([server.address])
        outcome["request"] = client.submit_job(task, b"hold", poll_timeout=30)

    with serving(runtime, [server.address], {task: hold}):
        waiting = runtime.concurrency.start(submit, name="waiting client")
        assert started.wait(10)
        server.kill()
        waiting.join(30)
        request = outcome["request"]
        assert request.lost  # set by the loss only
        assert request.connection_attempts == 1  # created once: never resent
        release.set()  # the job ends; its reply has nowhere to go
        server.restart()
        wait_for_workers(runtime, server.address, task)
        again = runtime.GearmanClient([server.address]).submit_job(task, b"back", poll_timeout=10)
    assert again.state == JOB_COMPLETE
    assert again.result == b"kcab"


def test_a_persistent_queue_runs_every_background_job_once_per_server_lifetime(
    runtime: types.ModuleType, gearmand_factory: Any, tmp_path: Path
) -> None:
    """Expectation: N background jobs queued in gearmand's sqlite3 queue
    survive a SIGKILL and run exactly once after the restart; after a second
    SIGKILL, once the server has taken every result, none runs again (the
    queue dropped each job as it completed)."""
    database = tmp_path / "queue.sqlite3"
    server: Gearmand = gearmand_factory(
        extra_args=["-q", "libsqlite3", "--libsqlite3-db", str(database)]
    )
    task, sentinel = unique_name("kept"), "sentinel"
    jobs = [f"job-{number}" for number in range(50)]
    client = runtime.GearmanClient([server.address])
    requests = client.submit_multiple_jobs(
        [{"task": task, "data": name, "unique": name} for name in jobs],
        background=True,
        poll_timeout=10,
    )
    assert all(request.complete for request in requests)
    server.kill()
    server.restart()

    runs: dict[str, int] = {}

    def count(worker: Any, job: GearmanJob) -> bytes:
        name = job.data.decode()
        runs[name] = runs.get(name, 0) + 1
        return b""

    with serving(runtime, [server.address], {task: count}):
        wait_until(runtime, lambda: len(runs) == len(jobs), 20, message="every job ran")
        # Completed as far as the server knows (a job whose WORK_COMPLETE it
        # never read is still queued, and rightly runs again after a kill).
        wait_until(
            runtime,
            lambda: (admin_status(runtime, server.address, task) or {}).get("queued") == 0,
            20,
            message="the queue is empty",
        )
        server.kill()
        server.restart()
        wait_for_workers(runtime, server.address, task)
        # Jobs run in the order they were queued: once the sentinel queued
        # now has run, anything replayed from the queue would have run first.
        runtime.GearmanClient([server.address]).submit_job(
            task, sentinel, unique=sentinel, background=True, poll_timeout=10
        )
        wait_until(runtime, lambda: sentinel in runs, 20, message="the sentinel ran")
    assert runs == {**dict.fromkeys(jobs, 1), sentinel: 1}


_DOOMED_WORKER = textwrap.dedent(
    """
    import sys, time
    import gearman

    def start_then_hang(worker, job):
        worker.send_job_data(job, b"started")
        time.sleep(3600)

    worker = gearman.GearmanWorker([sys.argv[1]])
    worker.register_task(sys.argv[2], start_then_hang)
    worker.work()
    """
)


def test_a_worker_killed_mid_job_hands_the_job_to_another_and_the_client_gets_it(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    """Expectation: gearmand gives the job of a worker process killed with
    SIGKILL to the next worker, and the foreground client that waits for it
    gets that worker's result (its updates from both runs included)."""
    task = unique_name("doomed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    doomed = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_WORKER, gearmand.address, task], env=env
    )
    try:
        wait_for_workers(runtime, gearmand.address, task)
        outcome: dict[str, Any] = {}

        def submit() -> None:
            client = runtime.GearmanClient([gearmand.address])
            outcome["request"] = client.submit_job(task, b"abc", poll_timeout=30)

        waiting = runtime.concurrency.start(submit, name="waiting client")
        wait_until(
            runtime,
            lambda: "request" in outcome
            or doomed.poll() is not None
            or (admin_status(runtime, gearmand.address, task) or {}).get("running"),
            message="the doomed worker holds the job",
        )
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        with serving(runtime, [gearmand.address], {task: reverse}):
            waiting.join(30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(10)
    request = outcome["request"]
    assert request.state == JOB_COMPLETE
    assert request.result == b"cba"
    assert b"started" in request.data_updates  # the first run did begin

