"""The core against a real gearmand 1.1.20, over plain blocking sockets.

The only socket code of the core's tests: `Peer` writes what a connection
hands out, feeds what it reads, and flushes the core's own moves (a worker's
PRE_SLEEP and GRAB_JOB) after every event.  Waits are blocking reads with a
socket timeout; ordering across connections is made certain with an ECHO
round trip (PROTOCOL.md trap 19), never with sleeps.

The server is the session-wide ``gearmand`` fixture, so every test works on
function names and unique ids of its own.  Admin replies are compared with
what the ``gearadmin`` tool prints for the same server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from gearman.testing import Gearmand
from gearman_proto import (
    AdminCommand,
    AdminConnection,
    AdminError,
    AdminOk,
    AdminRequest,
    CanDo,
    ClientConnection,
    ConnectionClosed,
    EchoReply,
    EchoRequest,
    Event,
    GetStatus,
    GetStatusUnique,
    JobAssigned,
    JobCreated,
    JobsReply,
    JobStatus,
    JobStatusUnique,
    NoJob,
    Noop,
    OptionAccepted,
    PidReply,
    Priority,
    PriorityStatusReply,
    ServerError,
    SetClientId,
    SetOption,
    StatusReply,
    SubmitJob,
    SubmitReduceJob,
    UniqueJobsReply,
    VerboseReply,
    VersionReply,
    WorkComplete,
    WorkData,
    WorkerConnection,
    WorkersReply,
    WorkerState,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
)

#: Seconds a read may block; everything here answers in milliseconds.
TIMEOUT = 5.0

Connection = ClientConnection | WorkerConnection | AdminConnection


class Peer:
    """One connection object driven over one blocking socket."""

    def __init__(self, conn: Connection, server: Gearmand) -> None:
        self.conn = conn
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.received = bytearray()  # everything read, for byte-level checks

    def send(self, event: Event) -> None:
        self.sock.sendall(self.conn.send(event))

    def next_event(self) -> Event:
        """The next event; blocks (up to TIMEOUT) until the bytes for it arrived."""
        while True:
            event = self.conn.next_event()
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)
            if event is not None:
                return event
            data = self.sock.recv(65536)
            self.received += data
            self.conn.receive_data(data)

    def sync(self) -> list[Event]:
        """ECHO round trip: the server has handled all this peer sent before.

        Returns the events that came before the echo (NO_JOB and NOOP of a
        worker's grab loop, for instance).
        """
        probe = EchoRequest(payload=uuid.uuid4().bytes)
        self.send(probe)
        before = []
        while (event := self.next_event()) != EchoReply(payload=probe.payload, request=probe):
            before.append(event)
        return before

    def close(self) -> None:
        self.sock.close()


PeerFactory = Callable[[Connection], Peer]


@pytest.fixture
def connect(gearmand: Gearmand) -> Iterator[PeerFactory]:
    """Open connections to the session gearmand; all are closed after the test."""
    peers: list[Peer] = []

    def open_peer(conn: Connection) -> Peer:
        peer = Peer(conn, gearmand)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        peer.close()


@pytest.fixture
def name() -> bytes:
    """A function name no other test uses."""
    return b"core-" + uuid.uuid4().hex[:12].encode()


def sleeping_worker(connect: PeerFactory, *functions: bytes) -> Peer:
    """A worker that registered *functions*, was told NO_JOB and sent PRE_SLEEP."""
    worker = connect(WorkerConnection())
    for function in functions:
        worker.send(CanDo(function=function))
    assert worker.conn.worker_state is WorkerState.GRABBING
    assert worker.next_event() == NoJob()
    assert worker.conn.worker_state is WorkerState.SLEEPING
    assert worker.sync() == []
    return worker


def test_foreground_job_end_to_end(connect: PeerFactory, name: bytes) -> None:
    worker = sleeping_worker(connect, name)
    client = connect(ClientConnection())
    submit = SubmitJob(function=name, payload=b"test")
    client.send(submit)
    created = client.next_event()
    assert isinstance(created, JobCreated)
    assert created.request == submit
    handle = created.handle
    assert handle.startswith(b"H:")

    assert worker.next_event() == Noop()  # the core answered it with GRAB_JOB_UNIQ
    assert worker.next_event() == JobAssigned(
        handle=handle, function=name, payload=b"test", unique=b""
    )
    worker.send(WorkStatus(handle=handle, numerator=b"1", denominator=b"2"))
    worker.send(WorkData(handle=handle, payload=b"partial\0with-nul"))
    worker.send(WorkWarning(handle=handle, payload=b"careful"))
    worker.send(WorkComplete(handle=handle, payload=b"tset"))

    assert [client.next_event() for _ in range(4)] == [
        WorkStatus(handle=handle, numerator=b"1", denominator=b"2"),
        WorkData(handle=handle, payload=b"partial\0with-nul"),
        WorkWarning(handle=handle, payload=b"careful"),
        WorkComplete(handle=handle, payload=b"tset"),
    ]
    assert client.conn.foreground_handles == ()
    # After the job the worker grabbed again, got NO_JOB and went back to sleep.
    assert worker.sync() == [NoJob()]
    assert worker.conn.worker_state is WorkerState.SLEEPING


def test_background_job_and_status_queries(connect: PeerFactory, name: bytes) -> None:
    client = connect(ClientConnection())
    unique = b"u-" + name
    client.send(SubmitJob(function=name, unique=unique, payload=b"payload", background=True))
    created = client.next_event()
    assert isinstance(created, JobCreated)
    handle = created.handle
    assert client.conn.foreground_handles == ()

    def status() -> tuple[JobStatus, JobStatusUnique]:
        client.send(GetStatus(handle=handle))
        client.send(GetStatusUnique(unique=unique))
        by_handle, by_unique = client.next_event(), client.next_event()
        assert isinstance(by_handle, JobStatus)
        assert isinstance(by_unique, JobStatusUnique)
        return by_handle, by_unique

    queued = status()
    assert (queued[0].known, queued[0].running, queued[0].numerator) == (True, False, 0)
    assert (queued[1].known, queued[1].running, queued[1].client_count) == (True, False, 0)

    worker = connect(WorkerConnection())
    worker.send(CanDo(function=name))
    assert worker.next_event() == JobAssigned(
        handle=handle, function=name, payload=b"payload", unique=unique
    )
    worker.send(WorkStatus(handle=handle, numerator=b"3", denominator=b"10"))
    worker.sync()
    running = status()
    assert running == (
        JobStatus(
            handle=handle,
            known=True,
            running=True,
            numerator=3,
            denominator=10,
            request=GetStatus(handle=handle),
        ),
        JobStatusUnique(
            unique=unique,
            known=True,
            running=True,
            numerator=3,
            denominator=10,
            client_count=0,
            request=GetStatusUnique(unique=unique),
        ),
    )

    worker.send(WorkComplete(handle=handle, payload=b"done"))
    assert worker.sync() == [NoJob()]
    finished = status()
    assert (finished[0].known, finished[0].running, finished[0].numerator) == (False, False, 0)
    assert (finished[1].known, finished[1].client_count) == (False, 0)


def test_echo_returns_any_bytes(connect: PeerFactory) -> None:
    client = connect(ClientConnection())
    for payload in (b"hello\0world\xff", b"", bytes(range(256)) * 4096):
        client.send(EchoRequest(payload=payload))
        assert client.next_event() == EchoReply(
            payload=payload, request=EchoRequest(payload=payload)
        )


def test_exceptions_option_decides_between_work_exception_and_work_fail(
    connect: PeerFactory, name: bytes
) -> None:
    worker = sleeping_worker(connect, name)
    opted_in = connect(ClientConnection())
    opted_in.send(SetOption())
    assert opted_in.next_event() == OptionAccepted(option=b"exceptions", request=SetOption())
    opted_in.send(SetOption(option=b"frobnicate"))
    assert opted_in.next_event() == ServerError(
        code=b"UNKNOWN_OPTION",
        text=b"Server does not recognize given option",
        request=SetOption(option=b"frobnicate"),
    )
    plain = connect(ClientConnection())
    handles = []
    for client in (opted_in, plain):  # both attach to one job through its unique id
        client.send(SubmitJob(function=name, unique=b"same-" + name, payload=b"x"))
        created = client.next_event()
        assert isinstance(created, JobCreated)
        handles.append(created.handle)
    handle = handles[0]
    assert handles == [handle, handle]

    assert worker.next_event() == Noop()
    assert isinstance(worker.next_event(), JobAssigned)
    worker.send(WorkException(handle=handle, payload=b"Traceback: boom"))

    assert opted_in.next_event() == WorkException(handle=handle, payload=b"Traceback: boom")
    assert plain.next_event() == WorkFail(handle=handle)
    # gearmand put a NUL after the handle of the WORK_FAIL it made (PROTOCOL.md 9.16).
    size = (len(handle) + 1).to_bytes(4, "big")
    assert plain.received.endswith(b"\x00RES\x00\x00\x00\x0e" + size + handle + b"\x00")
    assert plain.conn.foreground_handles == opted_in.conn.foreground_handles == ()


def test_one_connection_attached_twice_gets_both_terminal_packets(
    connect: PeerFactory, name: bytes
) -> None:
    worker = sleeping_worker(connect, name)
    client = connect(ClientConnection())
    for _ in range(2):
        client.send(SubmitJob(function=name, unique=b"twice", payload=b"x"))
    first, second = client.next_event(), client.next_event()
    assert isinstance(first, JobCreated)
    assert isinstance(second, JobCreated)
    assert first.handle == second.handle
    assert worker.next_event() == Noop()
    assert isinstance(worker.next_event(), JobAssigned)
    worker.send(WorkComplete(handle=first.handle, payload=b"r"))
    done = WorkComplete(handle=first.handle, payload=b"r")
    assert [client.next_event(), client.next_event()] == [done, done]
    assert client.conn.foreground_handles == ()


def test_queue_error_when_maxqueue_is_reached(connect: PeerFactory, name: bytes) -> None:
    admin = connect(AdminConnection())
    client = connect(ClientConnection())
    create = AdminRequest(command=AdminCommand.CREATE_FUNCTION, arguments=(name,))
    limit = AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(name, b"1"))
    admin.send(create)
    admin.send(limit)
    assert [admin.next_event(), admin.next_event()] == [
        AdminOk(text=b"", request=create),
        AdminOk(text=b"", request=limit),
    ]
    submissions = [
        SubmitJob(function=name, payload=b"%d" % n, background=True, priority=priority)
        for n, priority in enumerate([Priority.NORMAL, Priority.NORMAL, Priority.HIGH])
    ]
    for submission in submissions:
        client.send(submission)
    accepted, refused, refused_high = (client.next_event() for _ in submissions)
    assert isinstance(accepted, JobCreated)
    assert refused == ServerError(
        code=b"QUEUE_ERROR", text=b"Job queue is full", request=submissions[1]
    )
    assert refused_high == ServerError(
        code=b"QUEUE_ERROR", text=b"Job queue is full", request=submissions[2]
    )

    unlimited = AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(name, b"0"))
    admin.send(unlimited)
    assert admin.next_event() == AdminOk(text=b"", request=unlimited)
    client.send(submissions[1])
    assert isinstance(client.next_event(), JobCreated)


def test_admin_cancel_job_fails_the_waiting_client(connect: PeerFactory, name: bytes) -> None:
    client = connect(ClientConnection())
    client.send(SubmitJob(function=name, payload=b"cancel me"))
    created = client.next_event()
    assert isinstance(created, JobCreated)
    admin = connect(AdminConnection())
    cancel = AdminRequest(command=AdminCommand.CANCEL_JOB, arguments=(created.handle,))
    admin.send(cancel)
    assert admin.next_event() == AdminOk(text=b"", request=cancel)
    assert client.next_event() == WorkFail(handle=created.handle)
    unknown = AdminRequest(command=AdminCommand.CANCEL_JOB, arguments=(b"H:none:1",))
    admin.send(unknown)
    assert admin.next_event() == AdminError(code=b"UNKNOWN_JOB", message=b"", request=unknown)


def test_admin_mixes_text_commands_and_echo(connect: PeerFactory, gearmand: Gearmand) -> None:
    admin = connect(AdminConnection())
    version = AdminRequest(command=AdminCommand.VERSION)
    getpid = AdminRequest(command=AdminCommand.GETPID)
    shutdown = AdminRequest(command=AdminCommand.SHUTDOWN)
    for request in (version, EchoRequest(payload=b"bin"), getpid, shutdown, EchoRequest()):
        admin.send(request)
    events = [admin.next_event() for _ in range(5)]
    assert isinstance(events[0], VersionReply)
    assert events[1:] == [
        EchoReply(payload=b"bin", request=EchoRequest(payload=b"bin")),
        PidReply(pid=gearmand.pid, request=getpid),
        # shutdown was removed from gearmand's admin protocol (PROTOCOL.md trap 14).
        AdminError(
            code=b"UNKNOWN_COMMAND", message=b"Unknown server commandshutdown", request=shutdown
        ),
        EchoReply(payload=b"", request=EchoRequest()),
    ]


def test_server_closing_reports_what_was_in_flight(
    gearmand_factory: Callable[..., Gearmand],
) -> None:
    server = gearmand_factory()
    client = Peer(ClientConnection(), server)
    try:
        client.send(SubmitJob(function=b"nobody-serves-this", payload=b"x"))
        created = client.next_event()
        assert isinstance(created, JobCreated)
        client.send(SubmitReduceJob(function=b"x", reducer=b"r" * 70, background=True))
        assert isinstance(client.next_event(), ServerError)  # reducer too long
        server.stop()
        assert client.next_event() == ConnectionClosed(handles=(created.handle,))
    finally:
        client.close()


# ----------------------------------------------------------- gearadmin


def gearadmin(server: Gearmand, *options: str) -> subprocess.CompletedProcess[bytes]:
    executable = shutil.which("gearadmin")
    if executable is None:
        pytest.skip("gearadmin is not installed (apt package gearman-tools)")
    return subprocess.run(
        [executable, "-h", server.host, "-p", str(server.port), *options],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )


def ask(admin: Peer, command: AdminCommand, *arguments: bytes) -> Event:
    request = AdminRequest(command=command, arguments=arguments)
    admin.send(request)
    reply = admin.next_event()
    assert getattr(reply, "request", None) == request
    return reply


@pytest.fixture
def scene(connect: PeerFactory, name: bytes) -> dict[str, bytes]:
    """A worker with a client id for two functions, and a queued job with a unique."""
    worker_id = b"core worker " + name
    second = name + b"-2"
    worker = connect(WorkerConnection())
    worker.conn.accepting = False
    worker.send(SetClientId(client_id=worker_id))
    worker.send(CanDo(function=name))
    worker.send(CanDo(function=second))
    worker.sync()
    client = connect(ClientConnection())
    unique = b"u-" + name
    client.send(SubmitJob(function=name, unique=unique, payload=b"x", background=True))
    created = client.next_event()
    assert isinstance(created, JobCreated)
    return {
        "function": name,
        "second": second,
        "worker_id": worker_id,
        "unique": unique,
        "handle": created.handle,
    }


def test_admin_status_matches_gearadmin(
    connect: PeerFactory, gearmand: Gearmand, scene: dict[str, bytes]
) -> None:
    reply = ask(connect(AdminConnection()), AdminCommand.STATUS)
    assert isinstance(reply, StatusReply)
    ours = {row.function: row for row in reply.functions}
    assert (ours[scene["function"]].total, ours[scene["function"]].workers) == (1, 1)
    assert (ours[scene["second"]].total, ours[scene["second"]].workers) == (0, 1)
    printed = gearadmin(gearmand, "--status").stdout.splitlines()
    for function in (scene["function"], scene["second"]):
        row = ours[function]
        assert b"%s\t%d\t%d\t%d" % (function, row.total, row.running, row.workers) in printed


def test_admin_priority_status_matches_gearadmin(
    connect: PeerFactory, gearmand: Gearmand, scene: dict[str, bytes]
) -> None:
    reply = ask(connect(AdminConnection()), AdminCommand.PRIORITY_STATUS)
    assert isinstance(reply, PriorityStatusReply)
    (row,) = [row for row in reply.functions if row.function == scene["function"]]
    assert (row.high, row.normal, row.low, row.workers) == (0, 1, 0, 1)
    printed = gearadmin(gearmand, "--priority-status").stdout.splitlines()
    assert b"%s\t0\t1\t0\t1" % scene["function"] in printed


def test_admin_workers_matches_gearadmin(
    connect: PeerFactory, gearmand: Gearmand, scene: dict[str, bytes]
) -> None:
    reply = ask(connect(AdminConnection()), AdminCommand.WORKERS)
    assert isinstance(reply, WorkersReply)
    (worker,) = [w for w in reply.workers if w.client_id == scene["worker_id"]]
    # Most recently registered first (PROTOCOL.md 8.2).
    assert worker.functions == (scene["second"], scene["function"])
    assert worker.ip == b"127.0.0.1"
    printed = gearadmin(gearmand, "--workers").stdout.splitlines()
    line = b" ".join((worker.fd, worker.ip, worker.client_id, b":", *worker.functions))
    assert line in printed


def test_admin_show_jobs_matches_gearadmin(
    connect: PeerFactory, gearmand: Gearmand, scene: dict[str, bytes]
) -> None:
    admin = connect(AdminConnection())
    jobs = ask(admin, AdminCommand.SHOW_JOBS)
    assert isinstance(jobs, JobsReply)
    (job,) = [job for job in jobs.jobs if job.handle == scene["handle"]]
    assert (job.retries, job.ignored, job.background) == (0, False, True)
    assert (
        b"%s\t0\t0\t1" % scene["handle"] in gearadmin(gearmand, "--show-jobs").stdout.splitlines()
    )

    uniques = ask(admin, AdminCommand.SHOW_UNIQUE_JOBS)
    assert isinstance(uniques, UniqueJobsReply)
    assert scene["unique"] in uniques.uniques
    assert scene["unique"] in gearadmin(gearmand, "--show-unique-jobs").stdout.splitlines()


def test_admin_single_line_replies_match_gearadmin(
    connect: PeerFactory, gearmand: Gearmand
) -> None:
    admin = connect(AdminConnection())
    version = ask(admin, AdminCommand.VERSION)
    assert isinstance(version, VersionReply)
    assert gearadmin(gearmand, "--server-version").stdout == version.version + b"\n"
    verbose = ask(admin, AdminCommand.VERBOSE)
    assert isinstance(verbose, VerboseReply)
    assert gearadmin(gearmand, "--server-verbose").stdout == verbose.level + b"\n"
    pid = ask(admin, AdminCommand.GETPID)
    assert pid == PidReply(pid=gearmand.pid, request=AdminRequest(command=AdminCommand.GETPID))
    assert gearadmin(gearmand, "--getpid").stdout == b"%d\n" % gearmand.pid


def test_admin_create_drop_and_cancel_match_gearadmin(
    connect: PeerFactory, gearmand: Gearmand, name: bytes
) -> None:
    admin = connect(AdminConnection())

    def listed() -> set[bytes]:
        status = ask(admin, AdminCommand.STATUS)
        assert isinstance(status, StatusReply)
        return {row.function for row in status.functions}

    # Created by us, dropped by gearadmin; then the other way round.
    assert isinstance(ask(admin, AdminCommand.CREATE_FUNCTION, name), AdminOk)
    assert name in listed()
    assert gearadmin(gearmand, "--drop-function", name.decode()).stdout == b"OK\n"
    assert name not in listed()
    assert gearadmin(gearmand, "--create-function", name.decode()).stdout == b"OK\n"
    assert name in listed()
    assert isinstance(ask(admin, AdminCommand.DROP_FUNCTION, name), AdminOk)
    assert name not in listed()
    missing = ask(admin, AdminCommand.DROP_FUNCTION, name)
    assert isinstance(missing, AdminError)
    assert (missing.code, missing.message) == (b"function", b"not found")

    cancel = ask(admin, AdminCommand.CANCEL_JOB, b"H:none:1")
    assert isinstance(cancel, AdminError)
    assert cancel.code == b"UNKNOWN_JOB"
    printed = gearadmin(gearmand, "--cancel-job", "H:none:1")
    assert printed.stderr.strip() == b"Error: " + cancel.code
