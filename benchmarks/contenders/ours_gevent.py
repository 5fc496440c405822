"""Contender: this project's gevent binding (``gearman.gevent``).

ours.py's classes and calls on ``gearman.gevent``, without monkey-patching
(the binding uses gevent's own sockets): the client side is ours.py's
blocking adapter over one ``gearman.gevent.GearmanClient``, and in the conc
scenario the shared driver runs its 100 submitters as greenlets
(`run_in_greenlets`) instead of threads, all sharing that client. The
worker is a ``gearman.gevent.GearmanWorker`` that runs one job at a time,
or ``_common.CONC_WORKER_JOBS`` at once in conc (``max_jobs``: a greenlet
each). Run it with the project's interpreter, like ours.py:
``.venv/bin/python benchmarks/contenders/ours_gevent.py --role client
--scenario conc --n 1000 --address 127.0.0.1:4730``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import gevent
import ours

import gearman.gevent


def run_in_greenlets(functions: Sequence[Callable[[], None]]) -> None:
    """_common.RunAll with a greenlet per function."""
    gevent.joinall([gevent.spawn(function) for function in functions], raise_error=True)


class Client(ours.Client):
    client_class = gearman.gevent.GearmanClient


class _CountingWorker(ours.Counting, gearman.gevent.GearmanWorker):
    pass


class Worker(ours.Worker):
    def __init__(self, options: _common.Options) -> None:
        super().__init__(options)
        self.max_jobs = _common.worker_slots(options.scenario)

    def make_worker(self) -> Any:
        return _CountingWorker([self.address], max_jobs=self.max_jobs)


if __name__ == "__main__":
    _common.main(Client, Worker, run_all=run_in_greenlets)
