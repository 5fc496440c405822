#!/usr/bin/env python3
"""Record a scripted session with a real gearmand into the fuzz corpora.

Starts a private gearmand (``devtools.gearmand.Gearmand``), then drives a
worker, a client and an admin connection through the fuzz harness itself:
every local move and every ``recv()`` result is appended to an op script
that the harness executes on the spot, so the script written to
``fuzz/corpus/<target>/rec-<sha1>`` replays exactly this session, with the
server's real chunking.  The received bytes also seed ``packets`` and
``admin_replies``.  Run from the repository root::

    python fuzz/record_session.py
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

FUZZ = Path(__file__).resolve().parent
sys.path[1:1] = [str(FUZZ.parent)]  # devtools, when the project is not installed

import _harness as h  # noqa: E402
from make_corpus import admin_replies_seeds, packets_seeds, write  # noqa: E402

from devtools.gearmand import Gearmand  # noqa: E402
from gearman_proto import (  # noqa: E402
    AdminCommand,
    Event,
    GrabMode,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
)

Address = tuple[str, int]


class Recorder:
    """One socket to gearmand, driven by a harness driver that records its input."""

    def __init__(self, driver: type[h.Driver[Any]], address: Address, config: bytes = b"") -> None:
        self.tape = h.PlainProvider(config)
        self.script = h.Script(driver, config)
        self.driver = driver(self.tape)
        self.sock = socket.create_connection(address, timeout=5)
        self.received: list[bytes] = []

    def run(self, encoded: bytes) -> None:
        """Execute ops just appended to the script; send what they queued."""
        self.tape.extend(encoded)
        while self.tape.remaining_bytes():
            self.driver.step()
        if self.driver.error is not None:
            raise RuntimeError(f"gearmand's bytes broke the protocol: {self.driver.error!r}")
        for data in self.driver.outbox:
            self.sock.sendall(data)
        self.driver.outbox.clear()

    def move(self, name: str, arg: int = 0) -> None:
        self.run(self.script.move(name, arg))

    def expect(self, count: int, timeout: float = 5.0) -> bytes:
        """Receive until *count* more events came; return the bytes received."""
        start, received = len(self.driver.events), len(self.received)
        deadline = time.monotonic() + timeout
        while len(self.driver.events) - start < count:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise RuntimeError(
                    f"{count} events expected, got {self.driver.events[start:]}"
                ) from None
            self.received.append(data)
            self.run(self.script.feed(data) + self.script.op("drain"))
        return b"".join(self.received[received:])


def submit(
    priority: int = 0, background: bool = False, kind: int = 0, unique: int = 0, function: int = 0
) -> int:
    """The argument of a ``submit`` move (see ClientDriver.move_submit)."""
    return priority | background << 2 | kind << 3 | unique << 5 | function << 7


def work(kind: type[Event], job: int = 0) -> int:
    """The argument of a worker ``work`` move for the *job*-th held job."""
    return list(h.WorkerDriver.WORK).index(kind) | job << 3


def session(address: Address) -> dict[str, list[bytes]]:
    """The scripted session; returns seeds per target."""
    config = h.WorkerDriver.config(GrabMode.UNIQ, max_jobs=2)
    worker = Recorder(h.WorkerDriver, address, config)
    client = Recorder(h.ClientDriver, address)
    admin = Recorder(h.AdminDriver, address)

    worker.move("client_id")
    worker.move("can_do", 0)  # "reverse": GRAB_JOB_UNIQ
    worker.expect(1)  # NO_JOB, then PRE_SLEEP
    client.move("option")  # exceptions
    client.expect(1)

    # a foreground job: progress, data, warning, status, completion
    client.move("submit", submit(kind=1))
    client.expect(1)
    worker.expect(2)  # NOOP, JOB_ASSIGN_UNIQ
    for update in (WorkStatus, WorkData, WorkWarning):
        worker.move("work", work(update))
    client.expect(3)
    client.move("status", 0)
    client.expect(1)
    worker.move("work", work(WorkComplete))
    client.expect(1)
    worker.expect(1)  # NO_JOB

    # background job with a unique id, status by unique, exception nobody sees
    client.move("submit", submit(background=True, kind=1, unique=2))
    client.expect(1)
    worker.expect(2)
    client.move("status_unique", 1)
    client.expect(1)
    worker.move("work", work(WorkException))
    worker.expect(1)
    client.move("echo", 2)
    client.move("option", 1)  # unknown option: ERROR
    client.expect(2)

    # foreground jobs ending in exception and failure; a reduce job
    for end, submission in ((WorkException, submit(priority=1)), (WorkFail, submit(kind=3))):
        client.move("submit", submission)
        client.expect(1)
        worker.expect(2)
        worker.move("work", work(end))
        client.expect(1)
        worker.expect(1)

    # two jobs held at once (max_jobs=2), finished in reverse order
    client.move("submit", submit(priority=2, unique=3))
    client.move("submit", submit(priority=2, unique=2))
    client.expect(2)
    worker.expect(3)  # NOOP, JOB_ASSIGN_UNIQ, JOB_ASSIGN_UNIQ
    worker.move("work", work(WorkComplete, 1))
    worker.move("work", work(WorkComplete, 0))
    client.expect(2)
    worker.expect(1)

    # queued jobs of a function nobody serves, then every admin command
    client.move("submit", submit(background=True, function=1))
    client.move("submit", submit(background=True, function=1, unique=3))
    client.expect(2)
    exchanges = []
    skip = {AdminCommand.SHUTDOWN}
    for index, command in enumerate(h.COMMANDS):
        if command not in skip:
            admin.move("command", index)
            exchanges.append((index, admin.expect(1)))
    admin.move("echo", 3)
    exchanges.append((len(h.COMMANDS), admin.expect(1)))

    # the worker takes the queued jobs: CAN_DO_TIMEOUT, accepting off and on, wake
    worker.move("can_do", 1 | 2 << 2)  # "bgfunc", 1000 ms
    worker.expect(2)  # NOOP? no: GRAB answered by the two queued jobs
    worker.move("accepting", 0)
    worker.move("work", work(WorkComplete, 0))
    worker.move("accepting", 1)
    worker.move("work", work(WorkComplete, 0))
    worker.expect(1)  # NO_JOB
    worker.move("wake")
    worker.expect(1)  # NO_JOB again
    worker.move("cant_do", 1)
    worker.move("reset")
    worker.move("echo", 3)
    worker.move("option", 0)
    worker.expect(2)

    for recorder in (worker, client, admin):
        recorder.sock.close()
    return {
        "worker": [bytes(worker.script.data)],
        "client": [bytes(client.script.data)],
        "admin": [bytes(admin.script.data)],
        "packets": packets_seeds(b"".join(worker.received))
        + packets_seeds(b"".join(client.received)),
        "admin_replies": admin_replies_seeds(exchanges),
    }


def main() -> None:
    for old in (FUZZ / "corpus").glob("*/rec-*"):
        old.unlink()
    with Gearmand() as server:
        seeds = session((server.host, server.port))
    for target, datas in sorted(seeds.items()):
        for data in datas:
            write(FUZZ / "corpus", target, data, "rec")
        print(f"{target}: {len(datas)} seeds, {sum(map(len, datas))} bytes")


if __name__ == "__main__":
    main()
