"""In-flight updates: a worker sends data and status while it runs, the client sees them.

Usage: python progress.py HOST:PORT

Runs a worker thread for the task "count_words" and a client in one process.
"""

from __future__ import annotations

import argparse
import threading

import gearman


def count_words(worker: gearman.GearmanWorker, job: gearman.GearmanJob) -> bytes:
    """Count the words of each line, reporting every line as data and as progress."""
    lines = job.data.splitlines()
    total = 0
    for number, line in enumerate(lines, start=1):
        words = len(line.split())
        total += words
        worker.send_job_data(job, b"%d words in line %d" % (words, number))
        worker.send_job_status(job, number, len(lines))
    worker.send_job_warning(job, b"no warnings, just saying")
    return b"%d" % total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    arguments = parser.parse_args()

    stop = threading.Event()
    worker = gearman.GearmanWorker([arguments.address])
    worker.register_task("count_words", count_words)
    worker.after_poll = lambda any_activity: not stop.is_set()  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.work, kwargs={"poll_timeout": 0.1})
    thread.start()
    try:
        with gearman.GearmanClient([arguments.address]) as client:
            text = b"the quick brown fox\njumps over\nthe lazy dog"
            request = client.submit_job("count_words", text, poll_timeout=30)
            for update in request.data_updates:
                print("data:", update.decode())
            print("warnings:", [w.decode() for w in request.warning_updates])
            print("last status:", request.status["numerator"], "/", request.status["denominator"])
            print("status updates:", list(request.status_updates))
            print("result:", request.state, request.result.decode())
    finally:
        stop.set()
        thread.join()


if __name__ == "__main__":
    main()
