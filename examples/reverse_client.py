"""Reverse client: submit "Hello World!" to the "reverse" function and print the result.

PLACEHOLDER: speaks the Gearman binary protocol by hand with `socket` and
`struct`; it will be rewritten on top of the `gearman` binding.

Usage: python examples/reverse_client.py HOST:PORT
"""

from __future__ import annotations

import socket
import struct
import sys

HEADER = struct.Struct(">4sII")  # magic, packet type, body size
SUBMIT_JOB, JOB_CREATED, WORK_COMPLETE, WORK_FAIL = 7, 8, 13, 14
TIMEOUT = 30.0  # seconds to wait for any reply


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
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
        body = b"reverse\0\0Hello World!"  # function, unique (empty), data
        conn.sendall(HEADER.pack(b"\0REQ", SUBMIT_JOB, len(body)) + body)
        kind, handle = recv_packet(conn)
        if kind != JOB_CREATED:
            raise ConnectionError(f"expected JOB_CREATED, got packet type {kind}")
        while True:
            kind, body = recv_packet(conn)
            if kind == WORK_COMPLETE:
                _handle, result = body.split(b"\0", 1)
                print(f"Job {handle.decode()} finished! Result: COMPLETE - {result.decode()}")
                return 0
            if kind == WORK_FAIL:
                print(f"Job {handle.decode()} finished! Result: FAILED")
                return 1
            # WORK_DATA, WORK_STATUS, WORK_WARNING, ...: not used by this example


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
