"""An asyncio client: many tasks share one client, each gets its own answer.

Usage: python asyncio_client.py HOST:PORT [--tasks N] [--timeout SECONDS]

Gathers N submissions that each have a word reversed by the "reverse"
task, all over one connection, and prints the results in order.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import gearman
import gearman.asyncio


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--tasks", type=int, default=5, help="concurrent submissions")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    arguments = parser.parse_args()

    words = [f"word{index}" for index in range(arguments.tasks)]
    async with gearman.asyncio.GearmanClient([arguments.address]) as client:
        requests = await asyncio.gather(
            *(client.submit_job("reverse", word, poll_timeout=arguments.timeout) for word in words)
        )
    for word, request in zip(words, requests, strict=True):
        result = request.result.decode() if request.result is not None else None
        print(f"{word} -> {result} ({request.state})")
    return 0 if all(r.state == gearman.JOB_COMPLETE for r in requests) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
