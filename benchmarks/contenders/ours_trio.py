"""Contender: this project's trio binding (``gearman.trio``).

ours.py's calls with ``await``, in ``trio.run``: the client side runs the
shared drivers in one ``trio.run`` with one ``gearman.trio.GearmanClient``;
in the conc scenario 100 tasks of one nursery share it. The worker is a
``gearman.trio.GearmanWorker`` that runs one job at a time, or
``_common.CONC_WORKER_JOBS`` at once in conc (``max_jobs``); its task
function is a plain function. Run it with the project's interpreter, like
ours.py: ``.venv/bin/python benchmarks/contenders/ours_trio.py --role client
--scenario conc --n 1000 --address 127.0.0.1:4730``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import ours
import trio

import gearman.trio


class Client:
    def __init__(self, options: _common.Options) -> None:
        self.client = gearman.trio.GearmanClient([options.address])
        self.timeout = options.timeout

    async def submit(self, function: str, payload: bytes) -> bytes:
        request = await self.client.submit_job(function, payload, poll_timeout=self.timeout)
        return ours.result_of(request)

    async def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = ours.job_dicts(function, payload, count)
        requests = await self.client.submit_multiple_jobs(jobs, poll_timeout=self.timeout)
        return [request.result for request in requests]

    async def submit_background(self, function: str, payload: bytes) -> None:
        request = await self.client.submit_job(
            function, payload, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        ours.check_created(request)

    async def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        jobs = ours.job_dicts(function, payload, count)
        requests = await self.client.submit_multiple_jobs(
            jobs, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        for request in requests:
            ours.check_created(request)

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(task)


class _CountingWorker(ours.Counting, gearman.trio.GearmanWorker):
    pass


class Worker:
    def __init__(self, options: _common.Options) -> None:
        self.address = options.address
        self.max_jobs = _common.worker_slots(options.scenario)

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        trio.run(self._serve, function, handler, count, after_job)

    async def _serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        worker = _CountingWorker([self.address], max_jobs=self.max_jobs)
        ours.prepare(worker, function, handler, count, after_job)
        await worker.work(poll_timeout=ours.WORKER_POLL_TIMEOUT)


if __name__ == "__main__":
    _common.main_async(Client, Worker, trio.run)
