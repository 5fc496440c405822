"""Contender: this project's asyncio binding (``gearman.asyncio``).

ours_trio.py on asyncio: the client side runs the shared drivers in one
``asyncio.run`` with one ``gearman.asyncio.GearmanClient``; in the conc
scenario 100 tasks (``asyncio.gather``) share it. The worker is a
``gearman.asyncio.GearmanWorker`` that runs one job at a time, or
``_common.CONC_WORKER_JOBS`` at once in conc (``max_jobs``); its task
function is a plain function. Run it with the project's interpreter, like
ours.py: ``.venv/bin/python benchmarks/contenders/ours_asyncio.py --role
client --scenario conc --n 1000 --address 127.0.0.1:4730``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import ours

import gearman.asyncio


class Client(ours.AsyncClient):
    client_class = gearman.asyncio.GearmanClient

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        await asyncio.gather(*(task() for _ in range(count)))


class _CountingWorker(ours.Counting, gearman.asyncio.GearmanWorker):
    pass


def worker(options: _common.Options) -> ours.AsyncWorker:
    return ours.AsyncWorker(options, _CountingWorker, _common.run_asyncio)


if __name__ == "__main__":
    _common.main_async(Client, worker, _common.run_asyncio)
