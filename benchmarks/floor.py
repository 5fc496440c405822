"""How fast background submissions can go from Python, layer by layer.

Usage: python benchmarks/floor.py [--n N] [--repeat R]

Submits N background jobs one at a time (each waited for until JOB_CREATED)
to a private gearmand, a fresh one per way, three ways:

- ``raw``: a prebuilt SUBMIT_JOB_BG packet, ``sendall``, ``poll``,
  ``recv_into``: the floor for Python on this machine;
- ``core``: ``gearman_proto.ClientConnection`` builds each packet from a
  ``SubmitJob`` event and parses each reply, on a plain socket;
- ``binding``: ``gearman.GearmanClient.submit_job(..., background=True,
  wait_until_complete=False)``.

Prints jobs/s and this process's CPU µs per job (user + system) for each,
from the fastest of R rounds (the queue grows by N per round).  The gap
between two lines is what that layer costs.
"""

from __future__ import annotations

import argparse
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gearman
import gearman_proto as proto
from benchmarks.harness import low_latency
from devtools.gearmand import Gearmand

PAYLOAD = b"0123456789abcdef"
HEADER = struct.Struct(">4sII")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def raw_loop(port: int) -> Callable[[int], None]:
    sock = connect(port)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    buffer = bytearray(65536)

    def run(n: int) -> None:
        for i in range(n):
            body = b"\0".join((b"floor", b"raw-%d" % i, PAYLOAD))
            sock.sendall(HEADER.pack(b"\0REQ", 18, len(body)) + body)
            poller.poll(5000)
            if sock.recv_into(buffer) < 12:
                raise RuntimeError("short read")

    return run


def core_loop(port: int) -> Callable[[int], None]:
    sock = connect(port)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    buffer = bytearray(65536)
    view = memoryview(buffer)
    connection = proto.ClientConnection()

    def run(n: int) -> None:
        for i in range(n):
            submission = proto.SubmitJob(
                function=b"floor", unique=b"core-%d" % i, payload=PAYLOAD, background=True
            )
            sock.sendall(connection.send(submission))
            while True:
                poller.poll(5000)
                connection.receive_data(view[: sock.recv_into(buffer)].tobytes())
                events = connection.next_events()
                if events:
                    if type(events[0]) is not proto.JobCreated:
                        raise RuntimeError(f"unexpected {events[0]!r}")
                    break

    return run


def binding_loop(port: int) -> Callable[[int], None]:
    client = gearman.GearmanClient([f"127.0.0.1:{port}"])

    def run(n: int) -> None:
        for _ in range(n):
            request = client.submit_job(
                "floor", PAYLOAD, background=True, wait_until_complete=False, poll_timeout=5.0
            )
            if request.state != gearman.JOB_CREATED:
                raise RuntimeError(f"job ended in state {request.state}")

    return run


def measure(run: Callable[[int], None], n: int, repeat: int) -> tuple[float, float]:
    """(jobs/s, CPU µs per job) of the fastest of *repeat* rounds."""
    run(min(n, 200))  # warm-up
    best = (0.0, 0.0)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if n / wall > best[0]:
            best = (n / wall, cpu / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="jobs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per loop")
    arguments = parser.parse_args()
    with low_latency(enabled=True):
        for name, make in (("raw", raw_loop), ("core", core_loop), ("binding", binding_loop)):
            # A fresh server per loop: gearmand slows down as its queue grows.
            with Gearmand() as server:
                rate, cpu = measure(make(server.port), arguments.n, arguments.repeat)
            print(f"{name:<8}{rate:>10,.0f} jobs/s {cpu:8.1f} µs CPU/job")


if __name__ == "__main__":
    main()
