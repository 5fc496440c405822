"""An asyncio worker that reverses strings, eight jobs at a time.

Usage: python asyncio_worker.py HOST:PORT [--count N]

Serves the task "reverse" until interrupted, or until it has done N jobs;
then it finishes the jobs in hand and leaves.
"""

from __future__ import annotations

import argparse
import asyncio

import gearman.asyncio


class CountingWorker(gearman.asyncio.GearmanWorker):
    """A worker that stops after a given number of jobs (None: never)."""

    def __init__(self, host_list: list[str], count: int | None) -> None:
        super().__init__(host_list, max_jobs=8)
        self.remaining = count

    def after_job(self) -> bool:
        if self.remaining is None:
            return True
        self.remaining -= 1
        return self.remaining > 0


async def reverse(worker: gearman.asyncio.GearmanWorker, job: gearman.GearmanJob) -> bytes:
    """Report progress, then return the job's data reversed."""
    await worker.send_job_status(job, 1, 2)
    await asyncio.sleep(0)  # a real task would await its I/O here
    return job.data[::-1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--count", type=int, default=None, help="leave after this many jobs")
    arguments = parser.parse_args()

    worker = CountingWorker([arguments.address], arguments.count)
    worker.set_client_id("asyncio-reverse-example")
    worker.register_task("reverse", reverse)
    await worker.work()


if __name__ == "__main__":
    asyncio.run(main())
