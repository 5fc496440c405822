"""The blocking binding's poll loop (``gearman._blocking.Pump``) over a socket pair.

The far end of the pair plays the server, so these tests see exactly the
bytes the pump writes and when it writes them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import gearman_proto as proto
from gearman._blocking import Link, Pump

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


def registered_worker(
    pair: tuple[socket.socket, socket.socket], on_event: object
) -> tuple[Pump, proto.WorkerConnection]:
    ours, theirs = pair
    worker = proto.WorkerConnection()
    worker.queue(proto.CanDo(function=b"f"))  # leaves CAN_DO and GRAB_JOB_UNIQ queued
    pump = Pump(on_event)  # type: ignore[arg-type]
    pump.add(Link(SERVER, ours, worker))
    pump.flush()
    assert theirs.recv(65536).endswith(GRAB_JOB_UNIQ)
    return pump, worker


@pytest.mark.parametrize(("packet", "answer"), [(NO_JOB, PRE_SLEEP), (NOOP, GRAB_JOB_UNIQ)])
def test_the_cores_own_answer_is_written_before_the_events_are_handled(
    pair: tuple[socket.socket, socket.socket], packet: bytes, answer: bytes
) -> None:
    on_the_wire_during_callback: list[bytes] = []
    pump, _ = registered_worker(
        pair, lambda link, event: on_the_wire_during_callback.append(pending(pair[1]))
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
    pump, worker = registered_worker(pair, lambda link, event: seen.append(type(event)))
    assign = b"\0RES\0\0\0\x1f\0\0\0\x0aH:1\0f\0u\0xy"
    pair[1].sendall(assign + NOOP)
    assert pump.run_once(5)
    assert seen == [proto.JobAssigned, proto.Noop]
    assert [job.handle for job in worker.jobs] == [b"H:1"]


def test_the_server_closing_reaches_the_callback_as_connection_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    seen: list[proto.Event] = []
    pump, _ = registered_worker(pair, lambda link, event: seen.append(event))
    pair[1].close()
    assert pump.run_once(5)
    (closed,) = seen
    assert isinstance(closed, proto.ConnectionClosed)
    assert pump.links == {}


def client_link(
    pair: tuple[socket.socket, socket.socket], on_event: object
) -> tuple[Pump, proto.ClientConnection]:
    client = proto.ClientConnection()
    pump = Pump(on_event)  # type: ignore[arg-type]
    pump.add(Link(SERVER, pair[0], client))
    return pump, client


def test_a_failed_write_reports_the_cores_end_event_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    seen: list[proto.Event] = []
    pump, client = client_link(pair, lambda link, event: seen.append(event))
    echo = proto.EchoRequest(payload=b"e")
    client.queue(echo)
    pair[1].close()  # writing to a closed peer fails (EPIPE)
    pump.flush()
    assert seen == [proto.ConnectionClosed(unanswered=(echo,))]
    assert client.state is proto.ConnectionState.ERROR
    assert pump.links == {}


def test_a_protocol_error_reports_the_cores_end_event(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    seen: list[proto.Event] = []
    pump, client = client_link(pair, lambda link, event: seen.append(event))
    echo = proto.EchoRequest(payload=b"e")
    client.queue(echo)
    pump.flush()
    pair[1].sendall(NO_JOB)  # not a packet a client may receive
    assert pump.run_once(5)
    assert seen == [proto.ConnectionClosed(unanswered=(echo,))]
    assert client.state is proto.ConnectionState.ERROR
    assert pump.links == {}
