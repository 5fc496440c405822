"""Submit a batch without waiting, then wait for all of it.

Usage: python batch.py HOST:PORT

``submit_multiple_jobs(..., wait_until_complete=False)`` returns once every
job is accepted; ``wait_until_jobs_completed`` then collects the results.
"""

from __future__ import annotations

import argparse
import threading

import gearman


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    arguments = parser.parse_args()

    stop = threading.Event()
    worker = gearman.GearmanWorker([arguments.address])
    worker.register_task("upper", lambda worker, job: job.data.upper())
    worker.after_poll = lambda any_activity: not stop.is_set()  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.work, kwargs={"poll_timeout": 0.1})
    thread.start()
    try:
        with gearman.GearmanClient([arguments.address]) as client:
            words = ["alpha", "beta", "gamma", "delta"]
            jobs = [{"task": "upper", "data": word} for word in words]
            submitted = client.submit_multiple_jobs(
                jobs, wait_until_complete=False, poll_timeout=30
            )
            # A handle means the server created the job; a fast worker may
            # already have finished some of them, so the states can differ.
            created = sum(request.handle is not None for request in submitted)
            print(f"accepted: {created} of {len(submitted)}")
            completed = client.wait_until_jobs_completed(submitted, poll_timeout=30)
            for request in completed:
                print(f"{request.job.data} -> {request.result.decode()} ({request.state})")
    finally:
        stop.set()
        thread.join()


if __name__ == "__main__":
    main()
