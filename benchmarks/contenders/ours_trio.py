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


class Client(ours.AsyncClient):
    client_class = gearman.trio.GearmanClient

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(task)


class _CountingWorker(ours.Counting, gearman.trio.GearmanWorker):
    pass


def worker(options: _common.Options) -> ours.AsyncWorker:
    return ours.AsyncWorker(options, _CountingWorker, trio.run)


if __name__ == "__main__":
    _common.main_async(Client, worker, trio.run)
