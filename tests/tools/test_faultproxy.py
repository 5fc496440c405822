"""The fault proxy of `devtools.faultproxy`, checked with raw sockets only.

Packets are built here with `struct` (no binding, no `gearman_proto` codec),
so what is checked is the proxy: against a real gearmand for the protocol
exchanges, and against a plain listening socket of the test ("the sink") where
a test must see exactly which bytes reached the server side.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devtools._faultproxy_engine
import devtools.faultproxy
from devtools.faultproxy import (
    PACKET_NAMES,
    FaultProxy,
    FaultProxyError,
    FaultProxyFactory,
    FaultProxyTimeout,
    Trigger,
)
from devtools.gearmand import PORT_RANGE, Gearmand
from devtools.peers import listen_on_free_port
from gearman_proto import PacketType

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


def packet(magic: bytes, number: int, *arguments: bytes) -> bytes:
    """One binary packet: *arguments* joined by NUL after the 12-byte header."""
    body = b"\0".join(arguments)
    return magic + struct.pack(">II", number, len(body)) + body


def req(number: int, *arguments: bytes) -> bytes:
    """A request packet (``\\0REQ``)."""
    return packet(b"\0REQ", number, *arguments)


def res(number: int, *arguments: bytes) -> bytes:
    """A response packet (``\\0RES``)."""
    return packet(b"\0RES", number, *arguments)


def echo_req(payload: bytes) -> bytes:
    return req(16, payload)


def echo_res(payload: bytes) -> bytes:
    return res(17, payload)


def connect(proxy: FaultProxy) -> socket.socket:
    """A raw client connection through *proxy*, with a timeout so no test hangs."""
    return socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT)


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    """Read *size* bytes, failing the test if the connection ends first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def recv_packet(conn: socket.socket) -> bytes:
    """Read one whole binary packet, header included."""
    header = recv_exactly(conn, 12)
    (size,) = struct.unpack(">I", header[8:])
    return header + recv_exactly(conn, size)


def recv_until_end(conn: socket.socket) -> tuple[bytes, str]:
    """Read until the connection ends; return the bytes and ``"eof"`` or ``"reset"``."""
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def nothing_pending(conn: socket.socket) -> bool:
    """True if *conn* has neither bytes nor an end of stream to read right now."""
    readable, _, _ = select.select([conn], [], [], 0)
    return not readable


@pytest.fixture
def sink() -> Iterator[socket.socket]:
    """A listening socket of the test: an upstream whose every byte the test reads."""
    with listen_on_free_port(backlog=8) as listener:
        listener.settimeout(TIMEOUT)
        yield listener


def accept(listener: socket.socket) -> socket.socket:
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    return conn


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


# ------------------------------------------------------------------ the module


def test_the_proxy_imports_only_the_standard_library_and_devtools() -> None:
    allowed = set(sys.stdlib_module_names) | {"devtools"}
    for module in (devtools.faultproxy, devtools._faultproxy_engine):
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
        imported = {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        } | {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert imported <= allowed, (module.__name__, imported - allowed)
    engine = ast.parse(Path(inspect.getfile(devtools._faultproxy_engine)).read_text())
    assert not [
        node
        for node in ast.walk(engine)
        if isinstance(node, ast.ImportFrom) and node.module
        if node.module.startswith("devtools")
    ], "the engine runs with python -I: it must not import the project"


def test_every_public_name_has_a_docstring() -> None:
    for name in devtools.faultproxy.__all__:
        value = getattr(devtools.faultproxy, name)
        if inspect.isclass(value):
            assert value.__doc__, name
            for member, attribute in vars(value).items():
                if not member.startswith("_") and callable(attribute):
                    assert attribute.__doc__, f"{name}.{member}"


def test_the_packet_names_are_the_core_table() -> None:
    assert {int(t): t.name for t in PacketType} == PACKET_NAMES


def test_the_proxy_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("127.0.0.1", 4730), host="0.0.0.0")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Trigger.before("NO_SUCH_PACKET"), "unknown packet"),
        (lambda: Trigger.before(99), "no packet type"),
        (lambda: Trigger.after("JOB_CREATED", nth=0), "nth"),
        (lambda: Trigger.after_packets(-1), ">= 0"),
        (lambda: Trigger.before("ECHO_RES", into=-2), ">= 0"),
    ],
)
def test_triggers_are_checked_when_built(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_triggers_take_packet_names_or_numbers() -> None:
    assert Trigger.before(8) == Trigger.before("job_created")
    assert Trigger.after("TEXT").name == "TEXT"


# ------------------------------------------------------------------ forwarding


def test_a_full_job_exchange_passes_unchanged_and_is_accounted(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    assert PORT_RANGE[0] <= proxy.port <= PORT_RANGE[1] < 32768
    function = f"fp-{os.getpid()}-{time.monotonic_ns()}".encode()
    with connect(proxy) as worker:
        worker.sendall(req(1, function) + req(9))  # CAN_DO, GRAB_JOB
        assert recv_packet(worker) == res(10)  # NO_JOB
        worker.sendall(req(4))  # PRE_SLEEP
        proxy.connection(0).to_server.wait_for_packet("PRE_SLEEP")
        with connect(proxy) as client:
            client.sendall(req(7, function, b"", b"hello"))  # SUBMIT_JOB
            created = recv_packet(client)
            assert created[:12] == res(8)[:8] + struct.pack(">I", len(created) - 12)
            handle = created[12:]
            assert recv_packet(worker) == res(6)  # NOOP
            worker.sendall(req(9))
            assert recv_packet(worker) == res(11, handle, function, b"hello")  # JOB_ASSIGN
            worker.sendall(req(13, handle, b"olleh"))  # WORK_COMPLETE
            assert recv_packet(client) == res(13, handle, b"olleh")
    worker_conn, client_conn = proxy.connections
    assert worker_conn.to_server.names == [
        "CAN_DO",
        "GRAB_JOB",
        "PRE_SLEEP",
        "GRAB_JOB",
        "WORK_COMPLETE",
    ]
    assert worker_conn.to_client.names == ["NO_JOB", "NOOP", "JOB_ASSIGN"]
    assert client_conn.to_server.names == ["SUBMIT_JOB"]
    assert client_conn.to_client.names == ["JOB_CREATED", "WORK_COMPLETE"]
    for flow in (worker_conn.to_server, worker_conn.to_client, client_conn.to_client):
        packets = flow.packets
        assert [p.offset for p in packets[1:]] == [p.offset + p.size for p in packets[:-1]]
        assert flow.bytes_read == flow.bytes_sent == sum(p.size or 0 for p in packets)
        assert not any(p.dropped for p in packets)
    (submit,) = client_conn.to_server.packets
    assert (submit.number, submit.magic, submit.size) == (7, "REQ", 12 + len(function) + 7)
    assert client_conn.wait_closed() == "client closed"
    assert worker_conn.wait_closed() == "client closed"


def test_admin_lines_are_framed_as_text(gearmand: Gearmand, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(gearmand)
    with connect(proxy) as admin:
        admin.sendall(b"version\ngetpid\n")
        replies = b""
        while replies.count(b"\n") < 2:
            chunk = admin.recv(4096)
            assert chunk
            replies += chunk
    conn = proxy.connection(0)
    assert [(p.name, p.text) for p in conn.to_server.packets] == [
        ("TEXT", "version"),
        ("TEXT", "getpid"),
    ]
    texts = [p.text for p in conn.to_client.packets]
    assert [p.name for p in conn.to_client.packets] == ["TEXT", "TEXT"]
    assert texts == [line.decode() for line in replies.splitlines()]
    assert texts[1] == f"OK {gearmand.pid}"


def test_bytes_that_cannot_be_framed_are_forwarded_as_unframed(
    sink: socket.socket, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(sink.getsockname())
    with connect(proxy) as client, accept(sink) as server:
        server.sendall(res(17, b"ok") + b"\0BAD" + b"\xff" * 20)
        assert recv_exactly(client, 14 + 24) == res(17, b"ok") + b"\0BAD" + b"\xff" * 20
        proxy.connection(0).to_client.wait_for_bytes(38)
        assert proxy.connection(0).to_client.names == ["ECHO_RES", "UNFRAMED"]


def test_an_upstream_that_refuses_ends_the_accepted_connection(
    fault_proxy: FaultProxyFactory,
) -> None:
    with listen_on_free_port(backlog=1) as taken:
        refused = taken.getsockname()  # nothing listens once it is closed
    taken.close()
    proxy = fault_proxy(refused)
    with connect(proxy) as client:
        assert recv_until_end(client) == (b"", "eof")
    conn = proxy.connection(0)
    assert conn.wait_closed().startswith("upstream connect failed")
    assert conn.upstream_error
    assert conn.upstream_port is None


# ------------------------------------------------------------------ cuts


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_a_cut_at_a_boundary_delivers_exactly_the_packets_before_it(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory, reset: bool
) -> None:
    proxy = fault_proxy(gearmand)
    proxy.next_connection.to_client.cut(Trigger.after_packets(2), reset=reset)
    with connect(proxy) as client:
        client.sendall(echo_req(b"one") + echo_req(b"two") + echo_req(b"three"))
        data, end = recv_until_end(client)
    assert data == echo_res(b"one") + echo_res(b"two")
    assert end == ("reset" if reset else "eof")
    conn = proxy.connection(0)
    assert conn.wait_closed() == ("reset" if reset else "cut")
    assert conn.to_client.names == ["ECHO_RES", "ECHO_RES"]
    (fired,) = conn.to_client.fired
    assert (fired.action, fired.offset, fired.packets) == ("cut", len(data), 2)


def test_a_cut_before_a_request_reaches_the_server_delivers_the_ones_before(
    sink: socket.socket, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(sink.getsockname())
    proxy.next_connection.to_server.cut(Trigger.before("ECHO_REQ", nth=2))
    with connect(proxy) as client, accept(sink) as server:
        client.sendall(echo_req(b"one") + echo_req(b"two"))
        assert recv_until_end(server) == (echo_req(b"one"), "eof")
        assert recv_until_end(client) == (b"", "eof")
    assert proxy.connection(0).to_server.names == ["ECHO_REQ"]


def test_a_cut_inside_a_packet_delivers_part_of_it(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    proxy.next_connection.to_client.cut(Trigger.before("ECHO_RES", nth=2, into=5))
    with connect(proxy) as client:
        client.sendall(echo_req(b"one") + echo_req(b"two"))
        data, end = recv_until_end(client)
    assert (data, end) == (echo_res(b"one") + echo_res(b"two")[:5], "eof")
    conn = proxy.connection(0)
    assert conn.to_client.names == ["ECHO_RES"]  # a partial packet is not a packet
    assert conn.to_client.bytes_sent == len(data)


def test_a_cut_after_bytes_may_split_a_header(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    proxy.next_connection.to_client.cut(Trigger.after_bytes(len(echo_res(b"one")) + 3))
    with connect(proxy) as client:
        client.sendall(echo_req(b"one") + echo_req(b"two"))
        assert recv_until_end(client) == (echo_res(b"one") + b"\0RE", "eof")


def test_a_cut_when_a_packet_type_passed(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    conn = proxy.next_connection
    conn.to_client.cut(Trigger.after("JOB_CREATED"))
    with connect(proxy) as client:
        function = f"fp-bg-{time.monotonic_ns()}".encode()
        # No worker: gearmand answers JOB_CREATED, then ECHO_RES, which is never delivered
        # (and it drops the foreground job when the client has gone).
        client.sendall(req(7, function, b"", b"x") + echo_req(b"late"))
        data, end = recv_until_end(client)
    assert end == "eof"
    assert data[:8] == res(8)[:8], data  # JOB_CREATED and nothing after it
    assert len(data) == 12 + struct.unpack(">I", data[8:12])[0]
    assert conn.to_client.names == ["JOB_CREATED"]


def test_a_live_connection_can_be_cut_now(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    with connect(proxy) as client:
        client.sendall(echo_req(b"one"))
        assert recv_packet(client) == echo_res(b"one")
        conn = proxy.wait_for_connection(0)
        conn.cut(reset=True)
        assert recv_until_end(client) == (b"", "reset")
    assert conn.close_reason == "reset"


def test_faults_armed_ahead_wait_for_their_connection(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    proxy.connection(1).to_client.cut(Trigger.after_packets(1))
    for index in range(3):
        with connect(proxy) as client:
            client.sendall(echo_req(b"a") + echo_req(b"b"))
            if index == 1:
                assert recv_until_end(client) == (echo_res(b"a"), "eof")
            else:
                assert recv_packet(client) + recv_packet(client) == echo_res(b"a") + echo_res(b"b")
    assert [c.close_reason for c in proxy.connections][1] == "cut"


def test_arming_a_closed_connection_is_an_error(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    with connect(proxy):
        conn = proxy.wait_for_connection(0)
    conn.wait_closed()
    with pytest.raises(FaultProxyError, match="closed"):
        conn.to_client.delay(1.0)


# ------------------------------------------------------------------ slow paths


def test_drip_delivers_every_byte_one_write_at_a_time(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    conn = proxy.next_connection
    conn.to_client.drip(0.001)
    payload = bytes(range(40, 80))
    with connect(proxy) as client:
        client.sendall(echo_req(payload))
        assert recv_packet(client) == echo_res(payload)
    assert conn.to_client.writes == conn.to_client.bytes_sent == 12 + len(payload)
    assert conn.to_server.writes == 1  # the other direction is not affected


def test_drip_from_a_packet_boundary_on(gearmand: Gearmand, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(gearmand)
    conn = proxy.next_connection
    conn.to_client.drip(0.001, at=Trigger.after_packets(1))
    with connect(proxy) as client:
        client.sendall(echo_req(b"fast"))
        assert recv_packet(client) == echo_res(b"fast")
        client.sendall(echo_req(b"slow"))
        assert recv_packet(client) == echo_res(b"slow")
    assert conn.to_client.writes == 1 + len(echo_res(b"slow"))


def test_delay_holds_each_chunk(gearmand: Gearmand, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(gearmand)
    conn = proxy.next_connection
    conn.to_client.delay(0.2)
    with connect(proxy) as client:
        began = time.monotonic()
        client.sendall(echo_req(b"later"))
        assert recv_packet(client) == echo_res(b"later")
        assert time.monotonic() - began >= 0.2  # a lower bound: the proxy held it that long
        conn.to_client.heal()
        client.sendall(echo_req(b"now"))
        assert recv_packet(client) == echo_res(b"now")


def test_black_hole_swallows_both_ways_and_keeps_the_connection_open(
    sink: socket.socket, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(sink.getsockname())
    with connect(proxy) as client, accept(sink) as server:
        conn = proxy.wait_for_connection(0)
        conn.black_hole()
        client.sendall(echo_req(b"lost"))
        server.sendall(echo_res(b"lost"))
        assert conn.to_server.wait_for_packet("ECHO_REQ").dropped
        assert conn.to_client.wait_for_packet("ECHO_RES").dropped
        assert nothing_pending(client)  # no byte and no end of stream
        assert nothing_pending(server)
        assert (conn.to_server.bytes_sent, conn.to_client.bytes_sent) == (0, 0)
        assert not conn.closed
        conn.heal()
        client.sendall(echo_req(b"after"))
        assert recv_packet(server) == echo_req(b"after")
        server.sendall(echo_res(b"after"))
        assert recv_packet(client) == echo_res(b"after")
    assert conn.to_server.bytes_dropped == len(echo_req(b"lost"))


def test_a_black_holed_server_never_answers_nor_closes(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    conn = proxy.next_connection
    conn.to_client.black_hole(at=Trigger.after("ECHO_RES"))
    with connect(proxy) as client:
        client.sendall(echo_req(b"first"))
        assert recv_packet(client) == echo_res(b"first")
        client.sendall(echo_req(b"second"))
        assert conn.to_client.wait_for_packet("ECHO_RES", count=2).dropped
        assert nothing_pending(client)
        assert not conn.closed


def test_stop_reading_fills_the_senders_buffers(
    sink: socket.socket, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(sink.getsockname(), rcvbuf=4096)
    conn = proxy.next_connection
    conn.to_server.stop_reading()
    with connect(proxy) as client, accept(sink) as server:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.setblocking(False)
        chunk = echo_req(b"x" * 1000)
        sent = 0
        with pytest.raises(BlockingIOError):  # noqa: PT012 -- the loop ends by raising
            for _ in range(100_000):
                sent += client.send(chunk)
        assert 0 < sent < 10 * 1024 * 1024
        assert not conn.to_server.reading
        assert conn.to_server.bytes_read == 0
        assert nothing_pending(server)
        conn.heal()
        received = recv_exactly(server, sent)
    assert received == (chunk * (sent // len(chunk) + 1))[:sent]
    assert conn.to_server.bytes_sent == sent


# ------------------------------------------------------------------ waiting and cleanup


def test_wait_for_times_out_with_an_assertion(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    with pytest.raises(FaultProxyTimeout, match="connection 0 accepted"):
        proxy.wait_for_connection(0, timeout=0.05)
    assert issubclass(FaultProxyTimeout, AssertionError)


def test_wait_for_wakes_on_the_report_it_waits_for(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(gearmand)
    released = threading.Event()

    def connect_later() -> None:
        released.wait(TIMEOUT)
        with connect(proxy) as client:
            client.sendall(echo_req(b"hi"))
            recv_packet(client)

    other = threading.Thread(target=connect_later)
    other.start()
    try:
        released.set()
        seen = proxy.connection(0).to_client.wait_for_packet("ECHO_RES")
    finally:
        other.join(TIMEOUT)
    assert (seen.name, seen.size) == ("ECHO_RES", 14)


def test_stop_leaves_no_process_thread_or_socket(
    gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    fds, threads = open_fds(), threading.active_count()
    proxy = FaultProxy(gearmand).start()
    pid, port = proxy.pid, proxy.port
    assert threading.active_count() == threads, "the proxy starts no thread here"
    with connect(proxy) as client:
        client.sendall(echo_req(b"x"))
        assert recv_packet(client) == echo_res(b"x")
        proxy.stop()
        assert recv_until_end(client) == (b"", "eof")
    assert not proxy.running
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert proxy.connection(0).close_reason == "proxy stopped"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    assert open_fds() == fds
    assert threading.active_count() == threads
    proxy.stop()  # twice is fine


def test_the_subprocess_ends_when_its_owner_dies(gearmand: Gearmand) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from devtools.faultproxy import FaultProxy\n"
            f"proxy = FaultProxy({gearmand.address!r}).start()\n"
            "print(proxy.pid, flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert owner.stdout is not None
    assert owner.stdin is not None
    try:
        pid = int(owner.stdout.readline())
        engine = os.pidfd_open(pid)
    finally:
        owner.kill()
        owner.wait()
        owner.stdin.close()
        owner.stdout.close()
    try:
        readable, _, _ = select.select([engine], [], [], TIMEOUT)  # readable when it exits
        assert readable, "the proxy outlived its owner"
    finally:
        os.close(engine)
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def test_the_fixture_stops_its_proxies(gearmand: Gearmand, fault_proxy: FaultProxyFactory) -> None:
    first, second = fault_proxy(gearmand), fault_proxy(gearmand.address)
    assert first.running
    assert second.running
    assert first.port != second.port
    assert second.upstream == (gearmand.host, gearmand.port)
