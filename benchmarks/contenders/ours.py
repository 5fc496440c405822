"""Contender: this project's blocking binding (``import gearman``).

Run with the project's interpreter: ``.venv/bin/python benchmarks/contenders/ours.py
--role client --scenario fg --n 1000 --address 127.0.0.1:4730``. The harness sets
PYTHONPATH to the working tree (``ours``) or to an extracted older revision
(``ours@REV``), so the same script measures either; it uses only the public
python-gearman API, which older revisions share.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

import gearman


class Client:
    def __init__(self, options: _common.Options) -> None:
        self.client = gearman.GearmanClient([options.address])
        self.timeout = options.timeout

    def submit(self, function: str, payload: bytes) -> bytes:
        request = self.client.submit_job(function, payload, poll_timeout=self.timeout)
        if request.state != gearman.JOB_COMPLETE:
            _common.fail(f"job ended in state {request.state}")
        return request.result  # type: ignore[no-any-return]

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = [{"task": function, "data": payload} for _ in range(count)]
        requests = self.client.submit_multiple_jobs(jobs, poll_timeout=self.timeout)
        return [request.result for request in requests]

    def submit_background(self, function: str, payload: bytes) -> None:
        request = self.client.submit_job(
            function,
            payload,
            background=True,
            wait_until_complete=False,
            poll_timeout=self.timeout,
        )
        if request.state != gearman.JOB_CREATED:
            _common.fail(f"background job ended in state {request.state}")

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        jobs = [{"task": function, "data": payload} for _ in range(count)]
        requests = self.client.submit_multiple_jobs(
            jobs, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        refused = sum(request.state != gearman.JOB_CREATED for request in requests)
        if refused:
            _common.fail(f"{refused} background jobs were not accepted")


class _CountingWorker(gearman.GearmanWorker):
    count = 0
    done = 0
    after_each: Callable[[int], None] = staticmethod(lambda done: None)

    def after_job(self) -> bool:
        self.done += 1
        self.after_each(self.done)
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
        worker.register_task(function, lambda _worker, job: handler(job.data))
        worker.work(poll_timeout=5.0)


if __name__ == "__main__":
    _common.main(Client, Worker)
