"""Reverse worker: serve one "reverse" job from a gearmand, then exit.

PLACEHOLDER: speaks the Gearman binary protocol by hand with `socket` and
`struct`; it will be rewritten on top of the `gearman` binding.

Usage: python examples/reverse_worker.py HOST:PORT
"""

from __future__ import annotations

import socket
import struct
import sys

HEADER = struct.Struct(">4sII")  # magic, packet type, body size
CAN_DO, PRE_SLEEP, NOOP, GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_COMPLETE = 1, 4, 6, 9, 10, 11, 13


def send(conn: socket.socket, kind: int, *args: bytes) -> None:
    """Send one request packet; arguments are joined by NUL bytes."""
    body = b"\0".join(args)
    conn.sendall(HEADER.pack(b"\0REQ", kind, len(body)) + body)


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    """Read exactly *size* bytes or raise ConnectionError on EOF."""
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("gearmand closed the connection")
        data += chunk
    return bytes(data)


def recv_packet(conn: socket.socket) -> tuple[int, bytes]:
    """Read one response packet and return its type and body."""
    magic, kind, size = HEADER.unpack(recv_exactly(conn, HEADER.size))
    if magic != b"\0RES":
        raise ConnectionError(f"unexpected magic {magic!r}")
    return kind, recv_exactly(conn, size)


def main(address: str) -> int:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port))) as conn:
        send(conn, CAN_DO, b"reverse")
        send(conn, GRAB_JOB)
        while True:
            kind, body = recv_packet(conn)
            if kind == NO_JOB:  # nothing queued: sleep until the server sends NOOP
                send(conn, PRE_SLEEP)
            elif kind == NOOP:  # woken up: a job may be waiting
                send(conn, GRAB_JOB)
            elif kind == JOB_ASSIGN:
                handle, _function, data = body.split(b"\0", 2)
                send(conn, WORK_COMPLETE, handle, data[::-1])
                return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
