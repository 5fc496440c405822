"""Micro-benchmark of the core's receive and send paths (no sockets).

Usage: python benchmarks/parser.py [--seconds S] [--json FILE]

Measures, through the real ``receive_data`` / ``next_event`` path:
- decode of small JOB_ASSIGN_UNIQ packets (16-byte payload) on a worker
  connection, fed in 64 KiB chunks: packets/s and MB/s;
- decode of the small packets a pipelining client receives (JOB_CREATED,
  then WORK_COMPLETE with a 16-byte result, per job), fed in 64 KiB chunks,
  and, for reference, the same stream through a hand-inlined loop that is
  not the library (the ceiling of a pure Python decoder on this machine);
- decode of 1 MiB WORK_COMPLETE packets on a client connection, fed in
  64 KiB chunks: packets/s and MB/s;
and through ``ClientConnection.send``: SUBMIT_JOB encodes per second.
Each figure is the best of several rounds of at least S seconds.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import gearman_proto as proto

CHUNK = 64 * 1024
HEADER = struct.Struct(">4sII")


def packet(packet_type: int, *arguments: bytes) -> bytes:
    body = b"\0".join(arguments)
    return HEADER.pack(b"\0RES", packet_type, len(body)) + body


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


#: (packets per round, bytes per round, prepare, run): ``prepare()`` builds a
#: fresh connection outside the timed part, ``run(connection)`` is timed and
#: returns how many packets it saw.
Round = tuple[int, int, Callable[[], Any], Callable[[Any], int]]


def small_assign_round(count: int) -> Round:
    """A worker connection that grabbed `count` times receives `count` assignments."""
    stream = b"".join(
        packet(31, b"H:vm:%d" % i, b"reverse", b"u-%d" % i, b"0123456789abcdef")
        for i in range(count)
    )
    pieces = chunks(stream)

    def prepare() -> proto.WorkerConnection:
        worker = proto.WorkerConnection(max_jobs=count + 1)
        worker.send(proto.CanDo(function=b"reverse"))
        return worker

    def run(worker: proto.WorkerConnection) -> int:
        # Every assignment answers a grab: the connection re-grabs after
        # each one because it has room, as a busy worker would.
        seen = 0
        for piece in pieces:
            worker.receive_data(piece)
            while worker.next_event() is not None:
                seen += 1
        return seen

    return count, len(stream), prepare, run


def client_stream(count: int) -> bytes:
    """JOB_CREATED for `count` jobs, then WORK_COMPLETE (16-byte result) for each."""
    created = b"".join(packet(8, b"H:vm:%d" % i) for i in range(count))
    completed = b"".join(packet(13, b"H:vm:%d" % i, b"fedcba9876543210") for i in range(count))
    return created + completed


def small_client_round(count: int) -> Round:
    """A client with `count` foreground jobs receives JOB_CREATED, then WORK_COMPLETE, for each.

    The packets a pipelining client decodes: 2 * `count` small packets.
    """
    stream = client_stream(count)
    pieces = chunks(stream)
    submissions = [
        proto.SubmitJob(function=b"reverse", payload=b"0123456789abcdef", unique=b"u-%d" % i)
        for i in range(count)
    ]

    def prepare() -> proto.ClientConnection:
        client = proto.ClientConnection()
        for submission in submissions:
            client.queue(submission)
        client.data_to_send()
        return client

    def run(client: proto.ClientConnection) -> int:
        seen = 0
        for piece in pieces:
            client.receive_data(piece)
            while events := client.next_events():
                seen += len(events)
        return seen

    return 2 * count, len(stream), prepare, run


class _Created(tuple[bytes, int]):
    __slots__ = ()


class _Completed(tuple[bytes, bytes]):
    __slots__ = ()


def reference_client_round(count: int) -> Round:
    """The stream of :func:`small_client_round` through a hand-inlined loop.

    Not the library: one function that keeps only what a client must
    (replies matched in order, foreground handles, recently finished
    handles) and builds tuple-based events.  It is the ceiling of a pure
    Python decoder on this machine, to read the library's figure against.
    """
    stream = client_stream(count)
    unpack = HEADER.unpack_from
    new = tuple.__new__

    def prepare() -> deque[int]:
        return deque(range(count))

    def run(unanswered: deque[int]) -> int:
        foreground: dict[bytes, int] = {}
        finished: OrderedDict[bytes, None] = OrderedDict()
        events: list[tuple[bytes, int] | tuple[bytes, bytes]] = []
        append = events.append
        data, pos, end = stream, 0, len(stream)
        while end - pos >= 12:
            _, packet_type, body_size = unpack(data, pos)
            body = data[pos + 12 : pos + 12 + body_size]
            pos += 12 + body_size
            if packet_type == 8:
                foreground[body] = foreground.get(body, 0) + 1
                append(new(_Created, (body, unanswered.popleft())))
            elif packet_type == 13:
                handle, payload = body.split(b"\0", 1)
                if foreground.pop(handle) > 1:
                    raise AssertionError("one submission per handle here")
                finished[handle] = None
                if len(finished) > 1024:
                    finished.popitem(last=False)
                append(new(_Completed, (handle, payload)))
        return len(events)

    return 2 * count, len(stream), prepare, run


def large_complete_round(count: int) -> Round:
    """A client with `count` foreground jobs receives a 1 MiB WORK_COMPLETE for each."""
    payload = bytes(range(256)) * 4096
    created = b"".join(packet(8, b"H:vm:%d" % i) for i in range(count))
    stream = b"".join(packet(13, b"H:vm:%d" % i, payload) for i in range(count))
    pieces = chunks(stream)

    def prepare() -> proto.ClientConnection:
        client = proto.ClientConnection()
        for _ in range(count):
            client.queue(proto.SubmitJob(function=b"echo", payload=b"x"))
        client.receive_data(created)
        while client.next_event() is not None:
            pass
        return client

    def run(client: proto.ClientConnection) -> int:
        seen = 0
        for piece in pieces:
            client.receive_data(piece)
            while client.next_event() is not None:
                seen += 1
        return seen

    return count, len(stream), prepare, run


def encode_round(count: int) -> Round:
    """`count` SUBMIT_JOB events queued and drained in one write."""
    events = [
        proto.SubmitJob(function=b"reverse", payload=b"0123456789abcdef", unique=b"u-%d" % i)
        for i in range(count)
    ]

    def run(client: proto.ClientConnection) -> int:
        for event in events:
            client.queue(event)
        return len(client.data_to_send()) and count

    return count, 0, proto.ClientConnection, run


def best_rate(setup: Round, seconds: float) -> tuple[float, float]:
    """(packets/s, MB/s) of the fastest round, rounds repeated for `seconds`."""
    count, size, prepare, run = setup
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        connection = prepare()
        start = time.perf_counter()
        seen = run(connection)
        elapsed = time.perf_counter() - start
        assert seen == count, (seen, count)
        best = min(best, elapsed)
        if time.perf_counter() > deadline:
            break
    return count / best, size / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="gearman_proto parser micro-benchmark")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()

    results = {}
    small_pps, small_mbs = best_rate(small_assign_round(100_000), arguments.seconds)
    results["decode_small_job_assign_uniq"] = {"packets_per_s": small_pps, "mb_per_s": small_mbs}
    client_pps, client_mbs = best_rate(small_client_round(50_000), arguments.seconds)
    results["decode_small_client_stream"] = {"packets_per_s": client_pps, "mb_per_s": client_mbs}
    reference_pps, reference_mbs = best_rate(reference_client_round(50_000), arguments.seconds)
    results["reference_inlined_client_loop"] = {
        "packets_per_s": reference_pps,
        "mb_per_s": reference_mbs,
    }
    large_pps, large_mbs = best_rate(large_complete_round(64), arguments.seconds)
    results["decode_1mib_work_complete"] = {"packets_per_s": large_pps, "mb_per_s": large_mbs}
    encode_pps, _ = best_rate(encode_round(100_000), arguments.seconds)
    results["encode_submit_job"] = {"packets_per_s": encode_pps}

    rows = [
        ("decode JOB_ASSIGN_UNIQ (16 B payload)", small_pps, f"{small_mbs:8.1f} MB/s"),
        ("decode JOB_CREATED + WORK_COMPLETE (16 B)", client_pps, f"{client_mbs:8.1f} MB/s"),
        ("  reference: hand-inlined loop, same", reference_pps, f"{reference_mbs:8.1f} MB/s"),
        ("decode WORK_COMPLETE (1 MiB payload)", large_pps, f"{large_mbs:8.1f} MB/s"),
        ("encode SUBMIT_JOB", encode_pps, ""),
    ]
    for label, rate, extra in rows:
        print(f"{label:<40}{rate:>14,.1f} packets/s {extra}")
    if arguments.json:
        with open(arguments.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
