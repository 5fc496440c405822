"""Contender: this project's blocking binding (``import gearman``).

Run with the project's interpreter: ``.venv/bin/python benchmarks/contenders/ours.py
--role client --scenario fg --n 1000 --address 127.0.0.1:4730``. The harness sets
PYTHONPATH to the working tree (``ours``) or to an extracted older revision
(``ours@REV``), so the same script measures either; it uses only the public
python-gearman API, which older revisions share. In the conc scenario 100
threads share the one client (thread-safe since the binding's runtime
interface; the harness leaves older revisions out of conc), and the worker
runs one job at a time.

The other bindings' contenders share what is here: ``ours_gevent.py`` runs
these classes on ``gearman.gevent`` (conc submitters as greenlets);
``ours_trio.py`` and ``ours_asyncio.py`` make the same calls with ``await``
through `AsyncClient` and `AsyncWorker`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
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
    """The ClientAdapter on a blocking client class of ours (`client_class`)."""

    client_class: Callable[[list[str]], Any] = gearman.GearmanClient

    def __init__(self, options: _common.Options) -> None:
        self.client = self.client_class([options.address])
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
    """The WorkerAdapter on a Counting worker class of ours; `make_worker` builds it."""

    def __init__(self, options: _common.Options) -> None:
        self.address = options.address

    def make_worker(self) -> Any:
        """The worker (one job at a time: older revisions have no max_jobs)."""
        return _CountingWorker([self.address])

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        worker = self.make_worker()
        prepare(worker, function, handler, count, after_job)
        worker.work(poll_timeout=WORKER_POLL_TIMEOUT)


# --- our async bindings (gearman.trio, gearman.asyncio): the same calls, awaited ---


class AsyncClient:
    """Client's calls on an async client class of ours (`client_class`), awaited.

    A subclass names the class and runs the conc submitters as its tasks
    (`run_concurrently`).
    """

    client_class: Callable[[list[str]], Any]

    def __init__(self, options: _common.Options) -> None:
        self.client = self.client_class([options.address])
        self.timeout = options.timeout

    async def submit(self, function: str, payload: bytes) -> bytes:
        request = await self.client.submit_job(function, payload, poll_timeout=self.timeout)
        return result_of(request)

    async def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = job_dicts(function, payload, count)
        requests = await self.client.submit_multiple_jobs(jobs, poll_timeout=self.timeout)
        return [request.result for request in requests]

    async def submit_background(self, function: str, payload: bytes) -> None:
        request = await self.client.submit_job(
            function, payload, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        check_created(request)

    async def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        jobs = job_dicts(function, payload, count)
        requests = await self.client.submit_multiple_jobs(
            jobs, background=True, wait_until_complete=False, poll_timeout=self.timeout
        )
        for request in requests:
            check_created(request)


class AsyncWorker:
    """The WorkerAdapter on an async Counting worker class of ours, in its event loop.

    `run(async_function)` runs the loop (``trio.run``, say); the worker runs
    `_common.worker_slots(scenario)` jobs at once (``max_jobs``).
    """

    def __init__(
        self,
        options: _common.Options,
        worker_class: Callable[..., Any],
        run: Callable[[Callable[[], Awaitable[None]]], object],
    ) -> None:
        self.address = options.address
        self.max_jobs = _common.worker_slots(options.scenario)
        self.worker_class = worker_class
        self.run = run

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        async def work() -> None:
            worker = self.worker_class([self.address], max_jobs=self.max_jobs)
            prepare(worker, function, handler, count, after_job)
            await worker.work(poll_timeout=WORKER_POLL_TIMEOUT)

        self.run(work)


if __name__ == "__main__":
    _common.main(Client, Worker)
