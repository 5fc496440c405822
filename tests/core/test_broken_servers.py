"""A server that breaks the protocol: what the core decides, with plain bytes.

The connection names the error that ended it (``remote_error``) and no
longer counts as proven; the sessions put such a server in back-off, and a
request it cut off before JOB_CREATED goes to another server or ends with
that error; an admin block reply is bounded with the cost of its lines.
The bindings' side of the same scenarios is
``tests/bindings/test_binding_hostile.py``.
"""

from __future__ import annotations

import struct

import pytest

import gearman_proto as gp
from gearman_proto import PacketType as T
from gearman_proto._admin_connection import LINE_OVERHEAD

A = gp.ServerAddress("a", 1)
B = gp.ServerAddress("b", 2)

#: four bytes that are not a magic, and the rest of a header.
GARBAGE = b"\0RSE" + b"\0" * 8


def res(packet_type: T, *arguments: bytes) -> bytes:
    """A server packet, built by hand."""
    body = b"\0".join(arguments)
    return b"\0RES" + struct.pack(">II", packet_type, len(body)) + body


def break_with(
    session: gp.ClientSession | gp.WorkerSession, server: gp.ServerAddress, data: bytes
) -> list[object]:
    """Feed *data* to *server*'s connection as a binding would: events to the
    session until the protocol error, then the connection's end."""
    connection = session.connections[server]
    connection.receive_data(data)
    changed: list[object] = []
    while True:
        try:
            event = connection.next_event()
        except gp.RemoteProtocolError:
            break
        assert event is not None, "the bytes broke nothing"
        changed.extend(session.receive(server, event, 0.0))
    changed.extend(session.receive(server, connection.abandon(), 10.0))
    return changed


# ---------------------------------------------------------------- connection


def test_a_connection_names_the_error_that_ended_it() -> None:
    connection = gp.ClientConnection()
    assert connection.remote_error is None
    assert not connection.proven  # nothing received yet
    connection.send(gp.EchoRequest(payload=b"x"))
    connection.receive_data(res(T.ECHO_RES, b"x"))
    assert connection.next_events()
    assert connection.proven
    connection.receive_data(GARBAGE)
    with pytest.raises(gp.RemoteProtocolError) as raised:
        connection.next_events()
    assert connection.remote_error is raised.value
    assert not connection.proven  # it answered once, then broke the protocol


def test_an_oversized_header_is_the_error_and_a_failed_write_is_not() -> None:
    connection = gp.WorkerConnection()
    connection.receive_data(b"\0RES" + struct.pack(">II", T.JOB_ASSIGN, 0xFFFFFFFF))
    with pytest.raises(gp.PacketTooLarge):
        connection.next_events()
    assert isinstance(connection.remote_error, gp.PacketTooLarge)
    written = gp.ClientConnection()
    written.send_failed()
    assert written.remote_error is None  # our write failed: the server broke nothing


# ----------------------------------------------------------------- sessions


def test_a_request_cut_off_by_a_protocol_error_goes_to_another_server() -> None:
    session = gp.ClientSession([A, B])
    session.connection_made(A)
    request = gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=2)
    session.submit(request, 0.0, server=A)
    assert break_with(session, A, GARBAGE) == [request]
    assert not session.pool.available(A, 10.0)  # the broken server is in back-off
    assert session.connection_wanted(10.0) == B
    assert request.delivery_error is None
    session.connection_made(B)
    assert request.server == B
    assert request.state is gp.JobState.PENDING


def test_a_protocol_error_with_no_other_server_ends_the_request_with_it() -> None:
    session = gp.ClientSession([A])
    session.connection_made(A)
    request = gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=3)
    session.submit(request, 0.0, server=A)
    break_with(session, A, GARBAGE)
    assert isinstance(request.delivery_error, gp.RemoteProtocolError)
    assert "bad magic" in str(request.delivery_error)
    assert request.finished
    assert request.attempts == 1
    assert gp.settle([request], gp.Goal.ACCEPTED) is request.delivery_error


def test_a_protocol_error_on_the_last_attempt_is_the_delivery_error() -> None:
    session = gp.ClientSession([A, B])
    session.connection_made(A)
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0, server=A)
    break_with(session, A, res(T.NOOP))  # a packet a client never receives
    assert isinstance(request.delivery_error, gp.RemoteProtocolError)
    assert "unexpected NOOP" in str(request.delivery_error)


def test_an_accepted_request_cut_off_by_a_protocol_error_is_lost() -> None:
    session = gp.ClientSession([A])
    session.connection_made(A)
    request = gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=2)
    session.submit(request, 0.0, server=A)
    unsolicited = res(T.JOB_CREATED, b"H:1") + res(T.JOB_CREATED, b"H:2")
    assert break_with(session, A, unsolicited) == [request, request]
    assert request.lost
    assert request.delivery_error is None


def test_a_worker_backs_off_a_server_that_broke_the_protocol() -> None:
    session = gp.WorkerSession([A, B])
    session.register(b"f")
    session.accepting = True
    session.connection_made(A)
    fieldless = b"\0RES" + struct.pack(">II", T.JOB_ASSIGN_ALL, 5) + b"xxxxx"
    break_with(session, A, res(T.NOOP) + fieldless)  # a good packet first: not enough
    assert session.missing_servers(10.0) == [B]
    assert A in session.missing_servers(10.0 + session.pool.backoff_max + 1)


# -------------------------------------------------------------------- admin


def test_a_block_reply_counts_what_keeping_its_lines_costs() -> None:
    """Short lines cost more than their bytes: the limit counts
    LINE_OVERHEAD per line, so a stream of them stops in bounded memory."""
    line = b"f\t0\t0\t0\n"
    limit = 100 * (len(line) - 1 + LINE_OVERHEAD)  # each line kept without its newline
    admin = gp.AdminConnection(max_packet_size=limit)
    admin.send(gp.AdminRequest(command=gp.AdminCommand.STATUS))
    admin.receive_data(line * 100 + b".\n")
    assert isinstance(admin.next_event(), gp.StatusReply)  # at the limit: accepted
    admin.send(gp.AdminRequest(command=gp.AdminCommand.STATUS))
    admin.receive_data(line * 101)  # 808 bytes, far below the limit in bytes alone
    with pytest.raises(gp.RemoteProtocolError, match="block reply above"):
        admin.next_event()
    assert admin.remote_error is not None
