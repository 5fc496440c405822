"""A JSON DataEncoder on both sides: job data and results travel as JSON.

Usage: python json_encoder.py HOST:PORT
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

import gearman


class JSONDataEncoder(gearman.DataEncoder):
    """Encode payloads as JSON text; decode them back to Python objects."""

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        return json.dumps(encodable_object).encode("utf-8")

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return json.loads(decodable_string)


class JSONClient(gearman.GearmanClient):
    """A client whose payloads and results are JSON."""

    data_encoder = JSONDataEncoder


class JSONWorker(gearman.GearmanWorker):
    """A worker whose job data and results are JSON."""

    data_encoder = JSONDataEncoder


def add_up(worker: gearman.GearmanWorker, job: gearman.GearmanJob) -> dict[str, Any]:
    """Sum the numbers of a dict payload."""
    numbers = job.data["numbers"]
    return {"name": job.data["name"], "sum": sum(numbers), "count": len(numbers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    arguments = parser.parse_args()

    stop = threading.Event()
    worker = JSONWorker([arguments.address])
    worker.register_task("add_up", add_up)
    worker.after_poll = lambda any_activity: not stop.is_set()  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.work, kwargs={"poll_timeout": 0.1})
    thread.start()
    try:
        with JSONClient([arguments.address]) as client:
            request = client.submit_job(
                "add_up", {"name": "primes", "numbers": [2, 3, 5, 7]}, poll_timeout=30
            )
            print("result:", request.state, request.result)
    finally:
        stop.set()
        thread.join()


if __name__ == "__main__":
    main()
