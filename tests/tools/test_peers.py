"""The misbehaving test peers of `devtools.peers`, checked with raw sockets only.

Requests are built here by hand with `struct`, and the expected replies are
the ``hex:`` lines of ../shared/PROTOCOL.md section 9 (captured from
gearmand 1.1.20), so none of the bytes compared comes from `gearman_proto`.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import devtools.peers
from devtools.gearmand import PORT_RANGE
from devtools.peers import (
    MAX_PACKET_SIZE,
    FullBacklogServer,
    PeerClosing,
    PeerConnection,
    PeerError,
    ScriptedServer,
    StalledServer,
    assign_job,
    expect,
    listen_on_free_port,
    send,
)
from gearman_proto import PacketType

T = PacketType

# PROTOCOL.md 9.5: S -> W JOB_ASSIGN_UNIQ H:vm:1\0bgfunc\0uniq-bg-1\0payload
GOLDEN_JOB_ASSIGN_UNIQ = bytes.fromhex(
    "00 52 45 53 00 00 00 1f 00 00 00 1f 48 3a 76 6d 3a 31 00 62 67 66 75 6e 63 00"
    " 75 6e 69 71 2d 62 67 2d 31 00 70 61 79 6c 6f 61 64"
)
# PROTOCOL.md 9.4: S -> W JOB_ASSIGN H:vm:1\0reverse\0test
GOLDEN_JOB_ASSIGN = bytes.fromhex(
    "00 52 45 53 00 00 00 0b 00 00 00 13 48 3a 76 6d 3a 31 00 72 65 76 65 72 73 65 00 74 65 73 74"
)
# PROTOCOL.md 9.4: S -> W NOOP
GOLDEN_NOOP = bytes.fromhex("00 52 45 53 00 00 00 06 00 00 00 00")
# PROTOCOL.md 1.1 layout: ECHO_RES (17) with body "hello"
GOLDEN_ECHO_RES = b"\0RES" + struct.pack(">II", 17, 5) + b"hello"


def request(number: int, *arguments: bytes) -> bytes:
    """A request packet by hand: ``\\0REQ``, type, size, arguments joined by NUL."""
    body = b"\0".join(arguments)
    return b"\0REQ" + struct.pack(">II", number, len(body)) + body


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    """Read *size* bytes, failing the test if the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


@contextlib.contextmanager
def client(peer: StalledServer | ScriptedServer) -> Iterator[socket.socket]:
    """A raw TCP connection to *peer*, with a timeout so a test never hangs."""
    with socket.create_connection((peer.host, peer.port), timeout=5) as conn:
        yield conn


def fill_until_blocked(conn: socket.socket, limit: int) -> int:
    """Send on non-blocking *conn* until the kernel refuses; return the bytes accepted.

    Fails the test if more than *limit* bytes went through.
    """
    conn.setblocking(False)
    chunk = b"\0" * 65536
    total = 0
    while total <= limit:
        try:
            total += conn.send(chunk)
        except BlockingIOError:
            return total
    pytest.fail(f"{total} bytes were sent and the connection still had not stalled")


def peer_threads() -> list[str]:
    """Names of the peer threads still alive (every peer names its threads after its kind)."""
    prefixes = ("stalled-", "scripted-")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


# -- the module itself --------------------------------------------------------------


def test_peers_import_only_the_stdlib_gearman_proto_and_devtools() -> None:
    # The peers serve every binding, so they must not import one (ast: aliased
    # and nested imports count, names in strings do not).
    tree = ast.parse(Path(devtools.peers.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    foreign = imported - sys.stdlib_module_names - {"__future__", "gearman_proto", "devtools"}
    assert foreign == set()
    assert "gearman_proto" in imported


def test_every_public_class_and_function_of_peers_has_a_docstring() -> None:
    # Constants and type aliases carry ``#:`` comments instead (no __doc__ of their own).
    public = [getattr(devtools.peers, name) for name in devtools.peers.__all__]
    checked = [obj for obj in public if inspect.isclass(obj) or inspect.isfunction(obj)]
    assert len(checked) >= 9
    assert [obj.__name__ for obj in checked if not (obj.__doc__ or "").strip()] == []


# -- ports and addresses ------------------------------------------------------------


def test_listen_on_free_port_listens_below_the_ephemeral_range() -> None:
    with listen_on_free_port(backlog=1) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert PORT_RANGE[0] <= port <= PORT_RANGE[1] < 32768
        # It really listens: a connect succeeds.
        socket.create_connection((host, port), timeout=5).close()


@pytest.mark.parametrize("make", [StalledServer, lambda: ScriptedServer(lambda conn: None)])
def test_peer_address_is_host_colon_port(
    make: Callable[[], StalledServer | ScriptedServer],
) -> None:
    with make() as peer:
        assert peer.address == f"127.0.0.1:{peer.port}"
        assert peer.port < 32768


def test_peer_has_no_port_before_it_starts() -> None:
    with pytest.raises(PeerError, match="not been started"):
        _ = StalledServer().address


# -- StalledServer ------------------------------------------------------------------


def test_stalled_server_never_reads_so_a_nonblocking_send_raises_blocking_io_error() -> None:
    with StalledServer() as peer, client(peer) as conn:
        assert peer.wait_accepted(5)
        assert peer.wait_stalled(5)
        sent = fill_until_blocked(conn, peer.stall_bound())
        assert sent > 0
        with pytest.raises(BlockingIOError):
            conn.send(b"\0")
        assert peer.received_bytes == 0
        assert peer.received_types == []


def test_stalled_server_makes_a_send_with_timeout_time_out() -> None:
    with StalledServer() as peer, client(peer) as conn:
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.sendall(b"\0" * peer.stall_bound())
        assert peer.received_bytes == 0


def test_stalled_server_advertises_a_small_receive_window() -> None:
    # With the client's send buffer shrunk too, the write stalls after a few
    # KiB (10240 bytes measured), where a default receive buffer lets ~80 KiB through.
    with StalledServer() as peer, socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        conn.settimeout(5)
        conn.connect((peer.host, peer.port))
        assert peer.wait_stalled(5)
        sndbuf = conn.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        sent = fill_until_blocked(conn, peer.stall_bound(client_sndbuf=sndbuf))
        assert sent < 32 * 1024


@pytest.mark.parametrize("grab", [T.GRAB_JOB_UNIQ, T.GRAB_JOB_ALL])
def test_assign_job_answers_a_grab_with_the_golden_job_assign_uniq(grab: T) -> None:
    script = assign_job(b"H:vm:1", b"bgfunc", b"uniq-bg-1", b"payload")
    sent = request(T.CAN_DO, b"bgfunc") + request(grab)
    with StalledServer(script) as peer, client(peer) as conn:
        conn.sendall(sent)
        assert recv_exactly(conn, len(GOLDEN_JOB_ASSIGN_UNIQ)) == GOLDEN_JOB_ASSIGN_UNIQ
        assert peer.wait_stalled(5)
        assert peer.received_types == [T.CAN_DO, grab]
        assert peer.received_bytes == len(sent)
        # From now on nothing is read: the job's result stays in the kernel.
        conn.sendall(request(T.WORK_COMPLETE, b"H:vm:1", b"done"))
        fill_until_blocked(conn, peer.stall_bound())
        assert peer.received_bytes == len(sent)
        assert peer.received_types == [T.CAN_DO, grab]


def test_assign_job_wakes_a_sleeping_worker_and_answers_grab_job_with_job_assign() -> None:
    script = assign_job(b"H:vm:1", b"reverse", b"never-sent", b"test")
    with StalledServer(script) as peer, client(peer) as conn:
        conn.sendall(request(T.CAN_DO, b"reverse") + request(T.PRE_SLEEP))
        assert recv_exactly(conn, len(GOLDEN_NOOP)) == GOLDEN_NOOP
        conn.sendall(request(T.GRAB_JOB))
        assert recv_exactly(conn, len(GOLDEN_JOB_ASSIGN)) == GOLDEN_JOB_ASSIGN
        assert peer.wait_stalled(5)
        assert peer.received_types == [T.CAN_DO, T.PRE_SLEEP, T.GRAB_JOB]


def test_stalled_server_runs_a_list_of_steps_on_every_connection() -> None:
    script = [expect(T.ECHO_REQ), send(T.ECHO_RES, b"hello")]
    with StalledServer(script) as peer, client(peer) as first, client(peer) as second:
        for conn in (first, second):
            conn.sendall(request(T.SET_CLIENT_ID, b"me") + request(T.ECHO_REQ, b"ping"))
            assert recv_exactly(conn, len(GOLDEN_ECHO_RES)) == GOLDEN_ECHO_RES
        assert peer.wait_stalled(5, count=2)
        assert peer.stalled == 2
        assert peer.received_types == [T.SET_CLIENT_ID, T.ECHO_REQ] * 2


def test_stalled_server_raises_a_failed_script_at_exit() -> None:
    with (  # noqa: PT012
        pytest.raises(PeerError, match="handler") as caught,
        StalledServer(expect(T.GRAB_JOB_UNIQ)) as peer,
        client(peer) as conn,
    ):
        conn.sendall(b"status\n" + b"\0" * 5)  # a text line, not a request header
        assert not peer.wait_stalled(5)  # the error ends the wait at once
        assert len(peer.errors) == 1
    assert isinstance(caught.value.__cause__, PeerError)
    assert "not a request header" in str(caught.value.__cause__)


# -- FullBacklogServer --------------------------------------------------------------


@pytest.mark.parametrize("backlog", [0, 3])
def test_full_backlog_server_makes_connect_time_out(backlog: int) -> None:
    with FullBacklogServer(backlog=backlog) as peer:
        assert peer.address == f"127.0.0.1:{peer.port}"
        assert peer.fillers == backlog + 1
        queued = peer.queue_length()
        assert queued is None or queued == backlog + 1
        with pytest.raises(TimeoutError):
            socket.create_connection((peer.host, peer.port), timeout=1)


def test_full_backlog_server_closes_its_sockets_on_exit() -> None:
    with FullBacklogServer() as peer:
        port = peer.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


# -- ScriptedServer -----------------------------------------------------------------


def test_scripted_server_round_trips_a_packet() -> None:
    seen: list[tuple[PacketType, list[bytes]]] = []

    def echo(conn: PeerConnection) -> None:
        packet_type, arguments = conn.read_packet()
        seen.append((packet_type, arguments))
        conn.send_packet(T.ECHO_RES, *arguments)

    sent = request(T.ECHO_REQ, b"hello")
    with ScriptedServer(echo) as peer, client(peer) as conn:
        conn.sendall(sent)
        assert recv_exactly(conn, len(GOLDEN_ECHO_RES)) == GOLDEN_ECHO_RES
        assert peer.wait_handled(5)
        assert peer.wait_received(len(sent), 5)
        assert peer.received_bytes == len(sent)
        assert peer.received_types == [T.ECHO_REQ]
    assert seen == [(T.ECHO_REQ, [b"hello"])]


def test_scripted_server_runs_the_handler_for_each_connection_at_once() -> None:
    both_in = threading.Barrier(2, timeout=5)  # proves the handlers run concurrently

    def handler(conn: PeerConnection) -> None:
        both_in.wait()
        conn.send_packet(T.JOB_CREATED, b"H:%d" % conn.index)
        conn.close()

    with ScriptedServer(handler) as peer, client(peer) as first, client(peer) as second:
        assert peer.wait_accepted(5, count=2)
        replies = {recv_exactly(conn, 15) for conn in (first, second)}
        assert replies == {b"\0RES" + struct.pack(">II", 8, 3) + b"H:%d" % i for i in (0, 1)}
        assert first.recv(1) == b""  # the handler closed it
        assert peer.wait_handled(5, count=2)


def test_send_raw_sends_bytes_unchecked() -> None:
    # What a hostile-server test builds on: a header that announces 4 GiB - 1.
    lie = b"\0RES" + struct.pack(">II", T.JOB_CREATED, 0xFFFFFFFF) + b"H:"
    with ScriptedServer(lambda conn: conn.send_raw(lie)) as peer, client(peer) as conn:
        assert recv_exactly(conn, len(lie)) == lie
        assert peer.wait_handled(5)


def test_read_packet_refuses_a_huge_header_without_reading_the_body() -> None:
    refused: list[PeerError] = []

    def handler(conn: PeerConnection) -> None:
        try:
            conn.read_packet()
        except PeerError as exc:
            refused.append(exc)

    with ScriptedServer(handler) as peer, client(peer) as conn:
        conn.sendall(b"\0REQ" + struct.pack(">II", T.ECHO_REQ, MAX_PACKET_SIZE + 1) + b"x" * 100)
        assert peer.wait_handled(5)
        assert peer.received_bytes == 12
    assert len(refused) == 1
    assert "announces" in str(refused[0])


def test_read_packet_times_out_and_reports_eof() -> None:
    outcomes: list[type[BaseException]] = []
    timed_out = threading.Event()

    def handler(conn: PeerConnection) -> None:
        for timeout in (0.05, 5.0):  # the client closes after the first
            try:
                conn.read_packet(timeout=timeout)
            except (TimeoutError, EOFError) as exc:
                outcomes.append(type(exc))
                timed_out.set()

    with ScriptedServer(handler) as peer, client(peer) as conn:
        assert timed_out.wait(5)
        conn.close()
        assert peer.wait_handled(5)
    assert outcomes == [TimeoutError, EOFError]


def test_stop_reading_leaves_later_bytes_unread() -> None:
    errors: list[PeerError] = []

    def handler(conn: PeerConnection) -> None:
        conn.read_packet()
        conn.stop_reading()
        assert not conn.reading
        try:
            conn.read_packet()
        except PeerError as exc:
            errors.append(exc)

    first = request(T.ECHO_REQ, b"one")
    with ScriptedServer(handler) as peer, client(peer) as conn:
        conn.sendall(first + request(T.ECHO_REQ, b"two"))
        assert peer.wait_handled(5)
        assert peer.received_bytes == len(first)
        assert peer.received_types == [T.ECHO_REQ]
    assert len(errors) == 1
    assert "stopped reading" in str(errors[0])


def test_scripted_server_raises_a_handler_error_at_exit() -> None:
    def handler(conn: PeerConnection) -> None:
        raise ValueError("boom")

    with (
        pytest.raises(PeerError, match="boom") as caught,
        ScriptedServer(handler) as peer,
        client(peer),
    ):
        assert peer.wait_handled(5)
    assert isinstance(caught.value.__cause__, ValueError)


def test_close_releases_a_handler_blocked_in_read_or_pause() -> None:
    waiting = threading.Barrier(3, timeout=5)
    unwound: list[str] = []

    def handler(conn: PeerConnection) -> None:
        waiting.wait()
        if conn.index == 0:
            try:
                conn.read_packet(timeout=None)  # would wait forever without close()
            except PeerClosing:
                unwound.append("read")
                raise
        else:
            assert conn.wait_closing(timeout=None)
            unwound.append("pause")

    with ScriptedServer(handler) as peer, client(peer), client(peer):
        waiting.wait()
        port = peer.port
        peer.close()  # while the clients are still connected (else the read sees EOF)
    # close() woke both: a stuck thread would have made it raise PeerError,
    # and PeerClosing raised during close is not reported as a failure.
    assert sorted(unwound) == ["pause", "read"]
    assert peer.errors == []
    assert peer_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_close_wakes_a_handler_blocked_in_send() -> None:
    def handler(conn: PeerConnection) -> None:
        # More than the client's receive buffer plus our send buffer can hold
        # (32 MiB + 4 MiB at most here): sendall cannot finish.
        conn.send_raw(b"\0" * (64 * 1024 * 1024))

    with ScriptedServer(handler) as peer, client(peer) as conn:
        assert recv_exactly(conn, 1) == b"\0"  # the handler is inside sendall now
        peer.close()  # while the client is still connected (else sendall sees a reset)
    assert peer.errors == []
    assert peer_threads() == []


@pytest.mark.parametrize("kind", ["stalled", "scripted"])
def test_exit_closes_accepted_connections_and_joins_threads(kind: str) -> None:
    peer: StalledServer | ScriptedServer
    if kind == "stalled":
        peer = StalledServer(expect(T.ECHO_REQ))
    else:
        peer = ScriptedServer(PeerConnection.stop_reading)
    with peer, client(peer) as conn:
        assert peer.wait_accepted(5)
        assert peer_threads() != []
        port = peer.port
        peer.close()
        assert peer_threads() == []
        # The client sees the end: EOF, or a reset where bytes were left unread.
        try:
            end = conn.recv(1)
        except ConnectionResetError:
            end = b""
        assert end == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
