"""The blocking runtime's own loop (``gearman._blocking.BlockingRuntime``) over a socket pair.

The far end of the pair plays the server, so these tests see exactly the
bytes the runtime writes and when it writes them.  (What every runtime must
do is tested through the facades; this is what poll(2) pumping adds.)  The
last test puts a fault proxy between a client and gearmand instead, to reset
a link the runtime has not looked at since.
"""

from __future__ import annotations

import socket
import types
from collections.abc import Iterator

import pytest
from _binding_helpers import Threads, reverse, serving, unique_name, wait_for_workers

import gearman
import gearman._blocking
import gearman_proto as proto
from devtools.faultproxy import FaultProxyFactory
from devtools.gearmand import Gearmand
from gearman._blocking import BlockingRuntime

SERVER = proto.ServerAddress("127.0.0.1", 4730)
NO_JOB = b"\0RES\0\0\0\x0a\0\0\0\0"
NOOP = b"\0RES\0\0\0\x06\0\0\0\0"
PRE_SLEEP = b"\0REQ\0\0\0\x04\0\0\0\0"
GRAB_JOB_UNIQ = b"\0REQ\0\0\0\x1e\0\0\0\0"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def pending(sock: socket.socket) -> bytes:
    """What *sock* can read right now, without waiting."""
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


class Pump:
    """A runtime over one link, read until its sink has seen something new."""

    def __init__(self, on_event: object) -> None:
        self.seen = 0

        def sink(server: proto.ServerAddress, event: proto.Event) -> None:
            self.seen += 1
            on_event(server, event)  # type: ignore[operator]

        self.runtime = BlockingRuntime(sink)

    def run_once(self, timeout: float) -> bool:
        seen = self.seen
        return self.runtime.wait(lambda: self.seen > seen, self.runtime.now() + timeout)


def registered_worker(
    pair: tuple[socket.socket, socket.socket], on_event: object
) -> tuple[Pump, proto.WorkerConnection]:
    ours, theirs = pair
    worker = proto.WorkerConnection()
    worker.queue(proto.CanDo(function=b"f"))  # leaves CAN_DO and GRAB_JOB_UNIQ queued
    pump = Pump(on_event)
    ours.setblocking(False)
    pump.runtime.attach(SERVER, ours, worker)
    pump.runtime.wait(lambda: True, None)  # writes what is queued
    assert theirs.recv(65536).endswith(GRAB_JOB_UNIQ)
    return pump, worker


@pytest.mark.parametrize(("packet", "answer"), [(NO_JOB, PRE_SLEEP), (NOOP, GRAB_JOB_UNIQ)])
def test_the_cores_own_answer_is_written_before_the_events_are_handled(
    pair: tuple[socket.socket, socket.socket], packet: bytes, answer: bytes
) -> None:
    on_the_wire_during_callback: list[bytes] = []
    pump, _ = registered_worker(
        pair, lambda server, event: on_the_wire_during_callback.append(pending(pair[1]))
    )
    pair[1].sendall(NO_JOB)
    if packet == NOOP:  # asleep first, so the NOOP wakes it
        assert pump.run_once(5)
        on_the_wire_during_callback.clear()
        pair[1].sendall(NOOP)
    assert pump.run_once(5)
    assert on_the_wire_during_callback == [answer]


def test_a_batch_of_packets_in_one_read_is_handed_on_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    seen: list[type[proto.Event]] = []
    pump, worker = registered_worker(pair, lambda server, event: seen.append(type(event)))
    assign = b"\0RES\0\0\0\x1f\0\0\0\x0aH:1\0f\0u\0xy"
    pair[1].sendall(assign + NOOP)
    assert pump.run_once(5)
    assert seen == [proto.JobAssigned, proto.Noop]
    assert [job.handle for job in worker.jobs] == [b"H:1"]


def test_the_server_closing_reaches_the_callback_as_connection_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    seen: list[proto.Event] = []
    pump, _ = registered_worker(pair, lambda server, event: seen.append(event))
    pair[1].close()
    assert pump.run_once(5)
    (closed,) = seen
    assert isinstance(closed, proto.ConnectionClosed)
    assert not pump.runtime.connected(SERVER)


def test_a_blocking_worker_refuses_more_jobs_at_once_than_it_can_run() -> None:
    """The blocking runtime runs jobs in the loop's thread: a worker allowed to
    hold two would grab a second job it cannot start (hoarding it from other
    workers); it says so instead."""
    with pytest.raises(gearman.errors.InvalidWorkerState, match="max_jobs=2"):
        gearman.GearmanWorker(["127.0.0.1:4730"], max_jobs=2)
    assert gearman.GearmanWorker(["127.0.0.1:4730"], max_jobs=1).max_jobs == 1


def test_a_job_written_to_a_link_reset_unseen_is_resent_at_once(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server reset the idle link and the client has not looked since (here:
    never, by the idle check's threshold), so the job is written to a dead
    socket. The failed write ends the link; the wait must return for the job
    to be resent on a new connection at once, not sleep to its deadline with
    nothing to watch (it did: UNKNOWN and timed_out after poll_timeout)."""
    monkeypatch.setattr(gearman._blocking, "IDLE_CHECK_AFTER", float("inf"))
    proxy = fault_proxy(gearmand)
    task = unique_name("reset")
    # What the helpers take of a runtime: the blocking classes, tests in threads.
    blocking = types.SimpleNamespace(
        GearmanWorker=gearman.GearmanWorker,
        GearmanAdminClient=gearman.GearmanAdminClient,
        concurrency=Threads(),
    )
    with serving(blocking, [gearmand.address], {task: reverse}):  # type: ignore[arg-type]
        wait_for_workers(blocking, gearmand.address, task)  # type: ignore[arg-type]
        client = gearman.GearmanClient([proxy.address])
        assert client.submit_job(task, b"ab", poll_timeout=10).result == b"ba"
        first = proxy.connection(0)
        first.cut(reset=True)
        assert first.wait_closed() == "reset"
        request = client.submit_job(task, b"cd", max_retries=1, poll_timeout=10)
    assert (request.state, request.result, request.timed_out) == ("COMPLETE", b"dc", False)
    assert request.connection_attempts == 2
    assert proxy.connection(1).to_server.names == ["SUBMIT_JOB"]
