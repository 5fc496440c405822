"""The devtools `Gearmand` helper, checked against a real gearmand over raw sockets."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time

import pytest

from devtools.gearmand import (
    PORT_RANGE,
    Gearmand,
    GearmandError,
    GearmandFactory,
    pick_free_port,
    port_is_free,
)

ECHO_REQ = b"\0REQ" + struct.pack(">II", 16, 5) + b"hello"
ECHO_RES = b"\0RES" + struct.pack(">II", 17, 5) + b"hello"


def connect(server: Gearmand) -> socket.socket:
    """Open a TCP connection to *server* with a timeout, so a test never hangs."""
    return socket.create_connection((server.host, server.port), timeout=5)


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    """Read *size* bytes, failing the test if the server closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def recv_line(conn: socket.socket) -> bytes:
    """Read one admin reply line, line end included."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def admin(server: Gearmand, command: bytes) -> bytes:
    """Send one single-line admin command and return its reply line."""
    with connect(server) as conn:
        conn.sendall(command + b"\n")
        return recv_line(conn)


def echo(conn: socket.socket) -> bytes:
    """Send ECHO_REQ "hello" and return the server's reply packet."""
    conn.sendall(ECHO_REQ)
    return recv_exactly(conn, len(ECHO_RES))


def assert_closed_by_peer(conn: socket.socket) -> None:
    """The server side of *conn* is gone: EOF, or a reset if data was in flight."""
    with contextlib.suppress(ConnectionResetError):
        assert conn.recv(100) == b""


def test_echo_round_trip_is_byte_exact(gearmand: Gearmand) -> None:
    with connect(gearmand) as conn:
        assert echo(conn) == ECHO_RES


def test_admin_version_answers_ok(gearmand: Gearmand) -> None:
    assert admin(gearmand, b"version").startswith(b"OK ")


def test_properties_describe_the_running_server(gearmand: Gearmand) -> None:
    low, high = PORT_RANGE
    assert gearmand.running
    assert gearmand.host == "127.0.0.1"
    assert low <= gearmand.port <= high
    assert gearmand.address == f"127.0.0.1:{gearmand.port}"
    assert admin(gearmand, b"getpid") == f"OK {gearmand.pid}\n".encode()
    assert "Starting up" in gearmand.log_text()


def test_servers_from_the_factory_get_their_own_ports(
    gearmand: Gearmand, gearmand_factory: GearmandFactory
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    assert len({gearmand.port, first.port, second.port}) == 3
    for server in (first, second):
        with connect(server) as conn:
            assert echo(conn) == ECHO_RES


def test_restart_keeps_the_port_and_serves_again(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port, old_pid = server.port, server.pid
    with connect(server) as old_conn:
        assert echo(old_conn) == ECHO_RES
        # The old process leaves this connection in FIN_WAIT/TIME_WAIT on the
        # server's port; gearmand's SO_REUSEADDR must still let the new one bind.
        server.restart()
        assert_closed_by_peer(old_conn)
    assert server.port == port
    assert server.pid != old_pid
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES


def test_restart_after_kill_reuses_the_port(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port = server.port
    with connect(server) as conn:
        server.kill()
        assert_closed_by_peer(conn)
    server.restart()
    assert server.port == port
    assert admin(server, b"getpid") == f"OK {server.pid}\n".encode()


def test_kill_drops_connections_and_refuses_new_ones(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES
        server.kill()
        assert not server.running
        assert_closed_by_peer(conn)
    with pytest.raises(ConnectionRefusedError):
        connect(server)


def test_stop_ends_the_process_and_keeps_the_log(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    pid = server.pid
    server.stop()
    server.stop()  # a second stop is harmless
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Starting up" in server.log_text()
    with pytest.raises(GearmandError):
        _ = server.pid


def test_context_manager_stops_the_server_and_removes_its_files(gearmand_path: str) -> None:
    with Gearmand(executable=gearmand_path) as server:
        pid, log_path = server.pid, server.log_path
        assert log_path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not log_path.parent.exists()


def test_extra_args_and_verbose_reach_the_server(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory(verbose="DEBUG", extra_args=["--job-handle-prefix", "P:devtools"])
    assert admin(server, b"verbose") == b"OK DEBUG\n"
    body = b"reverse\0\0data"  # SUBMIT_JOB_BG: function, unique, data
    with connect(server) as conn:
        conn.sendall(b"\0REQ" + struct.pack(">II", 18, len(body)) + body)
        header = recv_exactly(conn, 12)
        magic, kind, size = struct.unpack(">4sII", header)
        assert (magic, kind) == (b"\0RES", 8)  # JOB_CREATED
        assert recv_exactly(conn, size) == b"P:devtools:1"


def test_a_taken_port_is_an_error_not_a_hang(
    gearmand: Gearmand, gearmand_factory: GearmandFactory
) -> None:
    with pytest.raises(GearmandError, match="another process"):
        gearmand_factory(port=gearmand.port)
    with connect(gearmand) as conn:
        assert echo(conn) == ECHO_RES


def test_startup_failure_reports_the_server_output(gearmand_factory: GearmandFactory) -> None:
    with pytest.raises(GearmandError, match="no-such-option"):
        gearmand_factory(extra_args=["--no-such-option"])


def test_pick_free_port_stays_below_the_ephemeral_range() -> None:
    port = pick_free_port()
    assert PORT_RANGE[0] <= port <= PORT_RANGE[1] < 32768
    assert port_is_free("127.0.0.1", port)


def test_start_after_the_server_died_on_its_own(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port = server.port
    os.kill(server.pid, signal.SIGKILL)  # not through kill(): a crash
    deadline = time.monotonic() + 5
    while server.running and time.monotonic() < deadline:
        time.sleep(0.01)
    server.start()
    assert server.port == port
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES
