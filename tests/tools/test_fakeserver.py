"""`devtools.fakeserver`, checked with raw sockets: the scripts play as written."""

from __future__ import annotations

import socket
import struct

import pytest

from devtools import fakeserver
from devtools.fakeserver import Behaviour, FakeServer, FakeServerError
from devtools.gearmand import PORT_RANGE
from gearman_proto import PacketType as T


def request(packet_type: T, *arguments: bytes) -> bytes:
    body = b"\0".join(arguments)
    return b"\0REQ" + struct.pack(">II", packet_type, len(body)) + body


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def connect(server: FakeServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock


def test_it_answers_every_matching_request_and_counts_them() -> None:
    with FakeServer(Behaviour(after="ECHO_REQ", reply=b"pong")) as server:
        low, high = PORT_RANGE
        assert low <= server.port <= high
        with connect(server) as sock:
            sock.sendall(request(T.CAN_DO, b"f") + request(T.ECHO_REQ, b"a"))
            assert read_exactly(sock, 4) == b"pong"
            sock.sendall(b"status\r\n" + request(T.ECHO_REQ, b"b"))
            assert read_exactly(sock, 4) == b"pong"
        stats = server.stats()
    assert stats.accepted == 1
    assert stats.requests == ("CAN_DO", "ECHO_REQ", "line:status", "ECHO_REQ")
    assert stats.sent == 8
    assert server.close() == server.stats()  # closing twice: the last counters


def test_a_drip_goes_out_one_byte_per_write() -> None:
    with FakeServer(fakeserver.drip(b"OK 1\n", 0.001)) as server, connect(server) as sock:
        sock.sendall(b"version\r\n")
        assert read_exactly(sock, 5) == b"OK 1\n"
        assert server.stats().sent == 5


def test_a_stream_runs_until_the_client_goes_and_stops_with_the_server() -> None:
    with FakeServer(fakeserver.huge_header()) as server:
        with connect(server) as sock:
            sock.sendall(request(T.SUBMIT_JOB, b"f", b"", b"x"))
            assert read_exactly(sock, 12) == b"\0RES" + struct.pack(">II", T.JOB_CREATED, 2**32 - 1)
        flood = fakeserver.work_data_flood(100)
        with FakeServer(flood) as flooding, connect(flooding) as sock:
            sock.sendall(request(T.SUBMIT_JOB, b"f", b"", b"x"))
            read_exactly(sock, 1 << 20)
            stats = flooding.close()  # while it still streams
        assert stats.sent >= 1 << 20
    assert server.stats().closed == 1


def test_bytes_our_side_should_never_send_fail_the_test() -> None:
    server = FakeServer(Behaviour()).start()
    with connect(server) as sock:
        sock.sendall(request(T.SUBMIT_JOB, b"only-one-field"))  # three are due
        assert sock.recv(1) == b""  # it hangs up on bytes it cannot decode
    with pytest.raises(FakeServerError, match="undecodable"):
        server.__exit__(None, None, None)
