"""Contender: ``gear`` 0.16 (OpenStack's Gearman library), from benchmarks/.peers-venv.

gear has no call that waits for a foreground job's end: a client learns it
in the handlers its poll thread runs (``handleWorkComplete`` ...), which the
docs invite subclasses to override. `_Client` does exactly that and sets an
`threading.Event` per job. ``submitJob`` itself blocks until JOB_CREATED,
so "pipe" sends its N submissions one round trip apart and then waits for
all results: gear cannot put several submissions on the wire at once.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import gear

CONNECT_TIMEOUT = 30.0


class _Client(gear.Client):  # type: ignore[misc]
    """Signals each job's `done` event from the handlers of terminal packets."""

    def _finish(self, job: Any) -> Any:
        done = getattr(job, "done", None)
        if done is not None:
            done.set()
        return job

    def handleWorkComplete(self, packet: Any) -> Any:
        return self._finish(super().handleWorkComplete(packet))

    def handleWorkFail(self, packet: Any) -> Any:
        return self._finish(super().handleWorkFail(packet))

    def handleWorkException(self, packet: Any) -> Any:
        return self._finish(super().handleWorkException(packet))


def _job(function: str, payload: bytes) -> Any:
    job = gear.Job(function, payload)
    job.done = threading.Event()
    return job


class Client:
    def __init__(self, options: _common.Options) -> None:
        self.client = _Client("bench-client")
        self.client.addServer(options.host, options.port)
        self.client.waitForServer(CONNECT_TIMEOUT)
        self.timeout = options.timeout

    def _result(self, job: Any) -> bytes:
        if not job.done.wait(self.timeout):
            _common.fail(f"job {job.handle!r} did not end within {self.timeout:g} s")
        if job.failure:
            _common.fail(f"job {job.handle!r} failed")
        return b"".join(job.data)

    def submit(self, function: str, payload: bytes) -> bytes:
        job = _job(function, payload)
        self.client.submitJob(job, timeout=self.timeout)
        return self._result(job)

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        jobs = [_job(function, payload) for _ in range(count)]
        for job in jobs:
            self.client.submitJob(job, timeout=self.timeout)
        return [self._result(job) for job in jobs]

    def submit_background(self, function: str, payload: bytes) -> None:
        job = gear.Job(function, payload)
        self.client.submitJob(job, background=True, timeout=self.timeout)
        if not job.handle:
            _common.fail("background job not accepted")

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        for _ in range(count):
            self.submit_background(function, payload)


class Worker:
    def __init__(self, options: _common.Options) -> None:
        self.worker = gear.Worker("bench-worker")
        self.worker.addServer(options.host, options.port)
        self.worker.waitForServer(CONNECT_TIMEOUT)

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        self.worker.registerFunction(function)
        for done in range(1, count + 1):
            job = self.worker.getJob()
            job.sendWorkComplete(handler(job.arguments))
            after_job(done)


if __name__ == "__main__":
    _common.main(Client, Worker)
