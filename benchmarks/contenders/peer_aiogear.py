"""Contender: ``aiogear`` 0.2.6 (an asyncio Gearman library), from benchmarks/.peers-venv.

Client: ``aiogear.Client`` is an ``asyncio.Protocol`` on one connection.
``await client.submit_job(function, payload)`` returns at JOB_CREATED; then
``client.wait_job(handle)`` is the future of the job's end (a
``WorkComplete(handle, result)``, the result decoded as UTF-8). All
submitters of conc share the one client, as ``asyncio.gather`` tasks.
aiogear keeps the waiters of each packet type in one list and hands a
packet to the oldest waiter of its type, whichever job the packet names: a
WORK_COMPLETE goes to the submitter that has waited longest, not to the one
whose job ended. Completions in submission order hide that; the conc
worker runs jobs at once, so they are not in order, and the driver's check
(every conc job has its own payload) counts the results that belonged to
another job. A background submission also leaves a WORK_COMPLETE waiter
behind that nothing resolves, so in bg each JOB_CREATED is looked for
behind all of them (quadratic in the number of jobs).

Worker: ``aiogear.Worker`` runs one job at a time per connection (its loop
awaits each job), so where a scenario runs several at once (conc) the
process opens ``_common.CONC_WORKER_JOBS`` connections, one
``aiogear.Worker`` each, in one event loop. Its task function gets a
``JobInfo`` whose workload is decoded as UTF-8: the large scenario's binary
payloads are out.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import aiogear
from aiogear.response import WorkComplete

#: The text encoding aiogear applies to payloads and results.
ENCODING = "utf-8"


class Client:
    """The AsyncClientAdapter on one ``aiogear.Client``; `connect` makes one."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @classmethod
    async def connect(cls, options: _common.Options) -> Client:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(
            lambda: aiogear.Client(loop=loop), options.host, options.port
        )
        return cls(protocol)

    async def submit(self, function: str, payload: bytes) -> bytes:
        created = await self.protocol.submit_job(function, payload)
        end = await self.protocol.wait_job(created.handle)  # at once: the waiter is there
        if not isinstance(end, WorkComplete):
            _common.fail(f"job {created.handle} ended with {end!r}")
        return str(end.result).encode(ENCODING)

    async def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        return list(await asyncio.gather(*(self.submit(function, payload) for _ in range(count))))

    async def submit_background(self, function: str, payload: bytes) -> None:
        created = await self.protocol.submit_job_bg(function, payload)
        if not created.handle:
            _common.fail("background job not accepted")

    async def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        for _ in range(count):
            await self.submit_background(function, payload)

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        await asyncio.gather(*(task() for _ in range(count)))


class _Count:
    """The jobs done over all of a worker process's connections; `finished` at `count`."""

    def __init__(self, count: int, after_job: Callable[[int], None]) -> None:
        self.count = count
        self.after_job = after_job
        self.done = 0
        self.finished = asyncio.get_running_loop().create_future()

    def one_more(self) -> None:
        self.done += 1
        self.after_job(self.done)
        if self.done == self.count:
            self.finished.set_result(None)


class _CountingWorker(aiogear.Worker):  # type: ignore[misc]
    """An ``aiogear.Worker`` that counts each job once its WORK_COMPLETE is written."""

    def __init__(self, *functions: Any, count: _Count, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(*functions, loop=loop)
        self.count = count

    def work_complete(self, handle: str, result: Any) -> None:
        super().work_complete(handle, result)
        self.count.one_more()


class Worker:
    def __init__(self, options: _common.Options) -> None:
        self.host = options.host
        self.port = options.port
        self.connections = _common.worker_slots(options.scenario)

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        _common.run_asyncio(lambda: self._serve(function, handler, count, after_job))

    async def _serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        done = _Count(count, after_job)

        def task(job: Any) -> bytes:
            return handler(str(job.workload).encode(ENCODING))

        transports = []
        for _ in range(self.connections):
            transport, _worker = await loop.create_connection(
                lambda: _CountingWorker((task, function), count=done, loop=loop),
                self.host,
                self.port,
            )
            transports.append(transport)
        await done.finished
        for transport in transports:
            transport.close()


if __name__ == "__main__":
    _common.main_async(Client.connect, Worker, _common.run_asyncio)
