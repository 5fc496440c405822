"""A worker that reverses strings: python-gearman's first example, on Python 3.

Usage: python reverse_worker.py HOST:PORT [--count N]

Serves the task "reverse" until interrupted, or until it has done N jobs.
"""

from __future__ import annotations

import argparse
import contextlib

import gearman


def task_listener_reverse(
    gearman_worker: gearman.GearmanWorker, gearman_job: gearman.GearmanJob
) -> bytes:
    """Return the job's data reversed (bytes in, bytes out)."""
    return gearman_job.data[::-1]


class CountingWorker(gearman.GearmanWorker):
    """A worker that leaves work() after a given number of jobs (None: never)."""

    def __init__(self, host_list: list[str], count: int | None) -> None:
        super().__init__(host_list)
        self.remaining = count

    def after_job(self) -> bool:
        if self.remaining is None:
            return True
        self.remaining -= 1
        return self.remaining > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--count", type=int, default=None, help="exit after this many jobs")
    arguments = parser.parse_args()

    gm_worker = CountingWorker([arguments.address], arguments.count)
    gm_worker.set_client_id("reverse-example")
    gm_worker.register_task("reverse", task_listener_reverse)
    with contextlib.suppress(KeyboardInterrupt):
        gm_worker.work()


if __name__ == "__main__":
    main()
