"""Contender: this project's blocking binding (``import gearman``).

Run with the project's interpreter: ``.venv/bin/python benchmarks/contenders/ours.py
--role client --scenario fg --n 1000 --address 127.0.0.1:4730``. The harness sets
PYTHONPATH to the working tree (``ours``) or to an extracted older revision
(``ours@REV``), so the same script measures either; it uses only the public
python-gearman API, which older revisions share. In the conc scenario 100
threads share the one client (thread-safe since the binding's runtime
interface; the harness leaves older revisions out of conc), and the worker
runs one job at a time.

``ours_trio.py`` makes the same calls with ``await`` and shares the helpers here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

import gearman


def result_of(request: Any) -> bytes:
    """A foreground request's result; the process fails unless the job completed."""
    if request.state != gearman.JOB_COMPLETE:
        _common.fail(f"job ended in state {request.state}")
    return request.result  # type: ignore[no-any-return]


def check_created(request: Any) -> None:
    """The process fails unless the server accepted the background request."""
    if request.state != gearman.JOB_CREATED:
        _common.fail(f"background job ended in state {request.state}")


def job_dicts(function: str, payload: bytes, count: int) -> list[dict[str, Any]]:
    """`count` jobs as submit_multiple_jobs takes them."""
    return [{"task": function, "data": payload} for _ in range(count)]


class Client:
    def __init__(self, options: _common.Options) -> None:
        self.client = gearman.GearmanClient([options.address])
        self.timeout = options.timeout

    def submit(self, function: str, payload: bytes) -> bytes:
        return result_of(self.client.submit_job(function, payload, poll_timeout=self.timeout))

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = job_dicts(function, payload, count)
        requests = self.client.submit_multiple_jobs(jobs, poll_timeout=self.timeout)
        return [request.result for request in requests]

    def submit_background(self, function: str, payload: bytes) -> None:
        request = self.client.submit_job(
            function, payload, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        check_created(request)

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        jobs = job_dicts(function, payload, count)
        requests = self.client.submit_multiple_jobs(
            jobs, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        for request in requests:
            check_created(request)


class Counting:
    """A worker mixin: leaves ``work()`` after `count` jobs, calling `after_each(done)`."""

    count = 0
    done = 0
    after_each: Callable[[int], None] = staticmethod(lambda done: None)

    def after_job(self) -> bool:
        self.done += 1
        self.after_each(self.done)
        return self.done < self.count


#: work()'s poll timeout: how often an idle worker looks at its hooks.
WORKER_POLL_TIMEOUT = 5.0


def prepare(
    worker: Any,
    function: str,
    handler: Callable[[bytes], bytes],
    count: int,
    after_job: Callable[[int], None],
) -> None:
    """Make a Counting worker answer `count` jobs of `function` with `handler(payload)`."""
    worker.count = count
    worker.after_each = after_job
    worker.register_task(function, lambda _worker, job: handler(job.data))


class _CountingWorker(Counting, gearman.GearmanWorker):
    pass


class Worker:
    def __init__(self, options: _common.Options) -> None:
        self.address = options.address

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        worker = _CountingWorker([self.address])
        prepare(worker, function, handler, count, after_job)
        worker.work(poll_timeout=WORKER_POLL_TIMEOUT)


if __name__ == "__main__":
    _common.main(Client, Worker)
