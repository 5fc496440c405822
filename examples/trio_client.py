"""A trio client: many tasks share one client, each gets its own answer.

Usage: python trio_client.py HOST:PORT [--tasks N] [--timeout SECONDS]

Starts N tasks that each have a word reversed by the "reverse" task, all
over one connection, and prints the results in order.
"""

from __future__ import annotations

import argparse
import sys

import trio

import gearman
import gearman.trio


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gearmand as HOST:PORT")
    parser.add_argument("--tasks", type=int, default=5, help="concurrent submissions")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    arguments = parser.parse_args()

    words = [f"word{index}" for index in range(arguments.tasks)]
    results: dict[str, gearman.GearmanJobRequest] = {}

    async with gearman.trio.GearmanClient([arguments.address]) as client:

        async def reverse(word: str) -> None:
            results[word] = await client.submit_job(
                "reverse", word, poll_timeout=arguments.timeout
            )

        async with trio.open_nursery() as nursery:
            for word in words:
                nursery.start_soon(reverse, word)

    for word in words:
        request = results[word]
        result = request.result.decode() if request.result is not None else None
        print(f"{word} -> {result} ({request.state})")
    return 0 if all(r.state == gearman.JOB_COMPLETE for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(trio.run(main))
