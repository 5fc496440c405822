"""The devtools `GearServer` helper (gear's Server in a subprocess), over raw sockets."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from devtools.gear_server import GearServer, gear_available
from devtools.gearmand import PORT_RANGE, GearmandError

pytestmark = pytest.mark.skipif(
    not gear_available() and not os.environ.get("CI"),
    reason="the gear package is not installed: pip install '.[test]'",
)

SUBMIT_JOB_BG = b"\0REQ" + struct.pack(">II", 18, 6) + b"f\0u\0xy"


def status(server: GearServer) -> bytes:
    """The ``status`` admin reply, whole (gear ends it with ``.``)."""
    with socket.create_connection((server.host, server.port), timeout=5) as conn:
        conn.sendall(b"status\n")
        reply = b""
        while not reply.endswith(b".\n"):
            chunk = conn.recv(4096)
            assert chunk, f"connection closed after {reply!r}"
            reply += chunk
        return reply


def test_start_answers_below_the_ephemeral_range_and_stop_ends_the_process() -> None:
    server = GearServer()
    with server:
        low, high = PORT_RANGE
        assert low <= server.port <= high
        assert server.running
        pid = server.pid
        os.kill(pid, 0)  # the process exists
        with socket.create_connection((server.host, server.port), timeout=5) as conn:
            conn.sendall(SUBMIT_JOB_BG)
            assert conn.recv(12)[:4] == b"\0RES"  # JOB_CREATED
        assert b"f\t1\t0\t0\n" in status(server)
        assert "SUBMIT_JOB_BG" in server.log_text()  # gear logs every packet
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped by its pid, and reaped


def test_restart_keeps_the_port_with_a_new_process() -> None:
    with GearServer() as server:
        port, pid = server.port, server.pid
        server.restart()
        assert (server.port, server.running) == (port, True)
        assert server.pid != pid
        assert status(server) == b".\n"  # a fresh server: no functions


def test_a_taken_port_is_an_error_not_a_hang() -> None:
    with GearServer() as holder, pytest.raises(GearmandError, match="taken"):
        GearServer(port=holder.port).start()
