"""A gevent client: many greenlets share one client, each gets its own answer.

Usage: python gevent_client.py HOST:PORT [--greenlets N] [--timeout SECONDS]

Spawns N greenlets that each have a word reversed by the "reverse" task,
all over one connection, and prints the results in order.
"""

from __future__ import annotations

import argparse
import sys

import gevent

import gearman
import gearman.gevent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--greenlets", type=int, default=5, help="concurrent submissions")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    arguments = parser.parse_args()

    words = [f"word{index}" for index in range(arguments.greenlets)]
    with gearman.gevent.GearmanClient([arguments.address]) as client:
        greenlets = [
            gevent.spawn(client.submit_job, "reverse", word, poll_timeout=arguments.timeout)
            for word in words
        ]
        gevent.joinall(greenlets, raise_error=True)
    requests = [greenlet.value for greenlet in greenlets]
    for word, request in zip(words, requests, strict=True):
        result = request.result.decode() if request.result is not None else None
        print(f"{word} -> {result} ({request.state})")
    return 0 if all(r.state == gearman.JOB_COMPLETE for r in requests) else 1


if __name__ == "__main__":
    sys.exit(main())
