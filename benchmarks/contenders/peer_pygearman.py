"""Contender: ``pygearman`` 0.2.6 (a Python 3 fork of python-gearman), from
benchmarks/.peers-venv.

It installs a top-level package named ``gearman``, like this project's
binding, so it lives in its own virtual environment. Two of its quirks are
worked around here: task names must be registered as bytes on the worker
(a ``str`` name crashes ``work()`` when a job arrives); ``submit_job``
without ``poll_timeout`` returns right after JOB_CREATED instead of waiting
for the result, so a poll timeout is always given; and ``after_job`` runs
after every poll once a job has been done, so jobs are counted elsewhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

import gearman

# This project's binding says __version__ "2.0.2"; pygearman says "0.2.x".
if not getattr(gearman, "__version__", "").startswith("0.2."):
    _common.fail(f"imported {gearman.__file__}, not pygearman: run this with the peers' venv")


class Client:
    def __init__(self, options: _common.Options) -> None:
        self.client = gearman.GearmanClient([options.address])
        self.timeout = options.timeout

    def _check(self, request: Any, state: str) -> None:
        if request.state != state or request.timed_out:
            _common.fail(f"job ended in state {request.state} (timed out: {request.timed_out})")

    def submit(self, function: str, payload: bytes) -> bytes:
        request = self.client.submit_job(function, payload, poll_timeout=self.timeout)
        self._check(request, gearman.JOB_COMPLETE)
        return request.result  # type: ignore[no-any-return]

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = [{"task": function, "data": payload} for _ in range(count)]
        requests = self.client.submit_multiple_jobs(jobs, poll_timeout=self.timeout)
        for request in requests:
            self._check(request, gearman.JOB_COMPLETE)
        return [request.result for request in requests]

    def submit_background(self, function: str, payload: bytes) -> None:
        request = self.client.submit_job(
            function,
            payload,
            background=True,
            wait_until_complete=False,
            poll_timeout=self.timeout,
        )
        self._check(request, gearman.JOB_CREATED)

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        jobs = [{"task": function, "data": payload} for _ in range(count)]
        requests = self.client.submit_multiple_jobs(
            jobs, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        for request in requests:
            self._check(request, gearman.JOB_CREATED)


class _CountingWorker(gearman.GearmanWorker):  # type: ignore[misc]
    """Counts in `on_job_complete`, not `after_job`: pygearman calls `after_job`
    after every poll that follows a job, not once per job."""

    count = 0
    done = 0
    after_each: Callable[[int], None] = staticmethod(lambda done: None)

    def on_job_complete(self, current_job: Any, job_result: Any) -> bool:
        sent = super().on_job_complete(current_job, job_result)  # waits until written
        self.done += 1
        self.after_each(self.done)
        return sent  # type: ignore[no-any-return]

    def after_poll(self, any_activity: bool) -> bool:
        return self.done < self.count


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
        worker.count = count
        worker.after_each = after_job
        worker.register_task(function.encode(), lambda _worker, job: handler(job.data))
        worker.work(poll_timeout=5.0)


if __name__ == "__main__":
    _common.main(Client, Worker)
