"""Misuse is refused before a byte is sent, in every runtime (issue 14, point 4).

Each call raises its role's ``gearman.errors`` class in the flavour of the
fault: ``Invalid*Value`` (also ``ValueError``) or ``Invalid*Type`` (also
``TypeError``), both ``GearmanError`` and the role's ``Invalid*State``.
That nothing went out is shown by the real gearmand (``status`` lists no
such function, the client sees no such update) and, where the misuse is an
object's first call, by this process having opened no new connection to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    admin_status,
    serving,
    sockets_connected_to,
    unique_name,
    wait_until,
)

import gearman_proto as proto
from devtools.gearmand import Gearmand
from gearman import JOB_COMPLETE, JOB_FAILED, GearmanJob, errors
from gearman._admin_kernel import check_echo, check_reply

#: bytes refused in function names and client ids.
FORBIDDEN_IN_NAMES = ["\0", "\t", "\n", "\r"]


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def local_ports(server: Gearmand) -> set[int]:
    """The local ports of this process's connections to *server*."""
    with sockets_connected_to(server.host, server.port) as sockets:
        return {ours.sock.getsockname()[1] for ours in sockets}


class NoNewConnection:
    """``with NoNewConnection(server):`` fails if the block connects to *server*."""

    def __init__(self, server: Gearmand) -> None:
        self.server = server

    def __enter__(self) -> None:
        self.before = local_ports(self.server)

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            new = local_ports(self.server) - self.before
            assert new == set(), f"connections opened from local ports {sorted(new)}"


def functions_named(runtime: types.ModuleType, address: str, prefix: str) -> list[str]:
    """gearmand's functions whose name starts with *prefix*."""
    with runtime.GearmanAdminClient([address], poll_timeout=5.0) as admin:
        return [row["task"] for row in admin.get_status() if row["task"].startswith(prefix)]


def assert_flavour(error: BaseException, role: type[errors.GearmanError], kind: type) -> None:
    assert isinstance(error, errors.GearmanError)
    assert isinstance(error, role)
    assert isinstance(error, kind)


# ----------------------------------------------------------- function names


def test_a_client_refuses_bad_function_names_before_connecting(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    prefix = unique_name("badname")
    client = runtime.GearmanClient([gearmand.address])
    with NoNewConnection(gearmand):
        for bad in FORBIDDEN_IN_NAMES:
            for background in (True, False):
                with pytest.raises(errors.InvalidClientValue) as caught:
                    client.submit_job(
                        f"{prefix}{bad}x", b"data", background=background, poll_timeout=5
                    )
                assert_flavour(caught.value, errors.InvalidClientState, ValueError)
            with pytest.raises(errors.InvalidClientValue):
                client.submit_job(f"{prefix}-r", b"data", reducer=f"red{bad}", poll_timeout=5)
    assert functions_named(runtime, gearmand.address, prefix) == []


def test_a_bad_job_among_several_sends_none_of_them(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    good, bad = unique_name("good"), unique_name("bad")
    client = runtime.GearmanClient([gearmand.address])
    with NoNewConnection(gearmand), pytest.raises(errors.InvalidClientValue):
        client.submit_multiple_jobs(
            [{"task": good, "data": b"1"}, {"task": f"{bad}\n", "data": b"2"}],
            background=True,
            poll_timeout=5,
        )
    assert admin_status(runtime, gearmand.address, good) is None
    assert functions_named(runtime, gearmand.address, bad) == []


def test_a_worker_refuses_bad_names_and_client_ids_and_keeps_working(
    runtime: types.ModuleType, address: str
) -> None:
    prefix = unique_name("badworker")
    worker = runtime.GearmanWorker([address])
    for bad in FORBIDDEN_IN_NAMES:
        with pytest.raises(errors.InvalidWorkerValue) as caught:
            worker.register_task(f"{prefix}{bad}x", lambda worker, job: b"")
        assert_flavour(caught.value, errors.InvalidWorkerState, ValueError)
        with pytest.raises(errors.InvalidWorkerValue):
            worker.set_client_id(f"{prefix}{bad}id")
    assert worker.worker_abilities == {}
    good = f"{prefix}-good"
    worker.register_task(good, lambda worker, job: job.data)
    with BackgroundWorker(runtime, worker):
        request = runtime.GearmanClient([address]).submit_job(good, b"echo", poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"echo")
    assert functions_named(runtime, address, prefix) == [good]


def test_a_client_id_is_checked_when_the_client_is_made(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    with NoNewConnection(gearmand):
        for bad in FORBIDDEN_IN_NAMES:
            with pytest.raises(errors.InvalidClientValue) as caught:
                runtime.GearmanClient([gearmand.address], client_id=f"me{bad}you")
            assert_flavour(caught.value, errors.InvalidClientState, ValueError)
        with pytest.raises(errors.InvalidClientType):
            runtime.GearmanClient([gearmand.address], client_id=42)


def test_a_worker_client_id_with_a_forbidden_byte_never_reaches_workers_list(
    runtime: types.ModuleType, address: str
) -> None:
    prefix = unique_name("wid")
    task = unique_name("wid-task")
    worker = runtime.GearmanWorker([address])
    worker.register_task(task, lambda worker, job: b"")
    worker.establish_worker_connections()  # connected: a refused id would go out now
    with pytest.raises(errors.InvalidWorkerValue):
        worker.set_client_id(f"{prefix}\n1 127.0.0.1 forged : {task}")
    worker.set_client_id(prefix)
    with runtime.GearmanAdminClient([address], poll_timeout=5.0) as admin:

        def ours() -> list[dict[str, Any]]:
            return [row for row in admin.get_workers() if prefix in row["client_id"]]

        rows = wait_until(runtime, ours, message="the worker's client id listed")
    worker.shutdown()
    assert [row["client_id"] for row in rows] == [prefix]


# ------------------------------------------------------------------ uniques


def test_uniques_of_64_bytes_or_more_are_refused_and_63_arrive_intact(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    task = unique_name("uniq")
    client = runtime.GearmanClient([gearmand.address])
    with NoNewConnection(gearmand):
        for size in (64, 65, 200):
            with pytest.raises(errors.InvalidClientValue, match=f"{size}-byte unique"):
                client.submit_job(task, b"payload", unique="u" * size, poll_timeout=5)
            with pytest.raises(errors.InvalidClientValue):
                client.submit_job(task, b"p", unique="u" * size, epoch=1, poll_timeout=5)
            with pytest.raises(errors.InvalidClientValue):
                client.get_status_by_unique("u" * size, poll_timeout=5)
    assert admin_status(runtime, gearmand.address, task) is None
    seen: list[tuple[Any, Any]] = []

    def record(worker: Any, job: GearmanJob) -> bytes:
        seen.append((job.unique, job.data))
        return b"ok"

    # generated uniques are hex: 31 random bytes make 62 characters, 32 too many
    with pytest.raises(errors.InvalidClientValue, match="random_unique_bytes"):
        runtime.GearmanClient([gearmand.address], random_unique_bytes=32)
    generating = runtime.GearmanClient([gearmand.address], random_unique_bytes=31)
    unique = "u" * 63
    with serving(runtime, [gearmand.address], {task: record}):
        request = client.submit_job(task, b"payload", unique=unique, poll_timeout=10)
        generated = generating.submit_job(task, b"more", poll_timeout=10)
    assert (request.state, generated.state) == (JOB_COMPLETE, JOB_COMPLETE)
    # gearmand cut nothing and put no NUL before the data
    assert seen == [(unique, b"payload"), (generated.job.unique, b"more")]
    assert len(generated.job.unique) == 62


# ----------------------------------------------------------- status numbers

BAD_STATUS: list[tuple[Any, Any, type]] = [
    (-1, 10, errors.InvalidWorkerValue),
    (1, -10, errors.InvalidWorkerValue),
    (2**32, 10, errors.InvalidWorkerValue),
    (1, 2**70, errors.InvalidWorkerValue),
    (1.5, 10, errors.InvalidWorkerType),
    (2.0, 10, errors.InvalidWorkerType),
    (True, 10, errors.InvalidWorkerType),
    ("1", 2, errors.InvalidWorkerType),
    (1, None, errors.InvalidWorkerType),
]


def test_bad_status_numbers_raise_in_the_task_and_never_reach_the_client(
    runtime: types.ModuleType, address: str
) -> None:
    task = unique_name("status")
    raised: list[BaseException] = []

    def report(worker: Any, job: GearmanJob) -> bytes:
        for numerator, denominator, _ in BAD_STATUS:
            try:
                worker.send_job_status(job, numerator, denominator)
            except errors.GearmanError as error:
                raised.append(error)
        worker.send_job_status(job, 2**32 - 1, 2**32 - 1)  # the largest gearmand keeps
        return b"done"

    with serving(runtime, [address], {task: report}):
        request = runtime.GearmanClient([address]).submit_job(task, b"", poll_timeout=10)
    assert (request.state, request.result) == (JOB_COMPLETE, b"done")
    assert [type(error) for error in raised] == [kind for _, _, kind in BAD_STATUS]
    for error in raised:
        kind = ValueError if isinstance(error, errors.InvalidWorkerValue) else TypeError
        assert_flavour(error, errors.InvalidWorkerState, kind)
    assert list(request.status_updates) == [(2**32 - 1, 2**32 - 1)]


# -------------------------------------------------------------------- ports

BAD_PORTS: list[Any] = [
    "localhost:\u0664\u0667\u0663\u0660",  # 4730 in Arabic-Indic digits
    "127.0.0.1:\uff14\uff17\uff13\uff10",  # 4730 in fullwidth digits
    "[::1]:\u0664\u0667\u0663\u0660",
    ("localhost", "\u0664\u0667\u0663\u0660"),
    {"host": "localhost", "port": "\u0664\u0667\u0663\u0660"},
    "localhost:0",
    "localhost:65536",
    ("localhost", 70000),
    {"port": 4730},
]


@pytest.mark.parametrize("spec", BAD_PORTS, ids=repr)
def test_every_class_refuses_a_host_list_with_a_bad_port(
    runtime: types.ModuleType, spec: Any
) -> None:
    for make, role in (
        (runtime.GearmanClient, errors.InvalidClientState),
        (runtime.GearmanWorker, errors.InvalidWorkerState),
        (runtime.GearmanAdminClient, errors.InvalidAdminClientState),
    ):
        with pytest.raises(errors.InvalidValue) as caught:
            make([spec])
        assert_flavour(caught.value, role, ValueError)


def test_a_status_query_refuses_a_bad_host(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    client = runtime.GearmanClient([gearmand.address])
    with NoNewConnection(gearmand), pytest.raises(errors.InvalidClientValue):
        client.get_status_by_handle("H:x:1", host="127.0.0.1:\u0664\u0667\u0663\u0660")


# ---------------------------------------------------------- admin arguments

SMUGGLERS = [" ", "\t", "\r", "\n", "\0", "\r\nshutdown"]


def test_admin_arguments_cannot_smuggle_a_command(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    prefix = unique_name("adm")
    admin = runtime.GearmanAdminClient([gearmand.address])
    calls: list[Callable[[str], Any]] = [
        admin.create_function,
        admin.drop_function,
        admin.cancel_job,
        lambda name: admin.send_maxqueue(name, 5),
        lambda name: admin.send_maxqueue(name, None),
    ]
    with NoNewConnection(gearmand):
        for bad in SMUGGLERS:
            for call in calls:
                with pytest.raises(errors.InvalidAdminValue, match="admin argument") as caught:
                    call(f"{prefix}{bad}status")
                assert_flavour(caught.value, errors.InvalidAdminClientState, ValueError)
        for size in ("5 status", 2.5, True):
            with pytest.raises(errors.InvalidAdminType) as caught_type:
                admin.send_maxqueue(prefix, size)
            assert_flavour(caught_type.value, errors.InvalidAdminClientState, TypeError)
        with pytest.raises(errors.InvalidAdminType):
            admin.create_function(42)
    assert functions_named(runtime, gearmand.address, prefix) == []
    # the same admin client still works, with a clean name
    assert admin.create_function(prefix) == "OK"
    assert functions_named(runtime, gearmand.address, prefix) == [prefix]
    assert admin.drop_function(prefix) == "OK"


# ----------------------------------------------------------------- payloads

OTHER_PAYLOADS: list[Any] = [42, 1.5, {"a": 1}, [b"x"], object()]


def test_a_client_refuses_payloads_the_encoder_cannot_send(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    task = unique_name("payload")
    client = runtime.GearmanClient([gearmand.address])
    with NoNewConnection(gearmand):
        for data in OTHER_PAYLOADS:
            with pytest.raises(errors.InvalidClientType) as caught:
                client.submit_job(task, data, background=True, poll_timeout=5)
            assert_flavour(caught.value, errors.InvalidClientState, TypeError)
    assert admin_status(runtime, gearmand.address, task) is None
    with serving(runtime, [gearmand.address], {task: lambda worker, job: job.data}):
        assert client.submit_job(task, "text", poll_timeout=10).result == b"text"  # str: UTF-8


def test_a_worker_refuses_payloads_and_fails_the_job_it_cannot_answer(
    runtime: types.ModuleType, address: str
) -> None:
    returns_int, sends_junk = unique_name("returns-int"), unique_name("sends-junk")
    raised: list[BaseException] = []

    def junk(worker: Any, job: GearmanJob) -> bytes:
        for send in (worker.send_job_data, worker.send_job_warning, worker.send_job_complete):
            for data in OTHER_PAYLOADS:
                try:
                    send(job, data)
                except errors.GearmanError as error:
                    raised.append(error)
        return b"fine"

    tasks: dict[str | bytes, Callable[[Any, GearmanJob], Any]] = {
        returns_int: lambda worker, job: 42,
        sends_junk: junk,
    }
    client = runtime.GearmanClient([address])
    with serving(runtime, [address], tasks) as background:
        failed = client.submit_job(returns_int, b"", poll_timeout=10)
        answered = client.submit_job(sends_junk, b"", poll_timeout=10)
        again = client.submit_job(returns_int, b"", poll_timeout=10)  # work() goes on
        assert background.is_alive()
    # a result that cannot be sent fails the job at once: it is not left held
    assert [(r.state, r.timed_out) for r in (failed, again)] == [(JOB_FAILED, False)] * 2
    assert (answered.state, answered.result) == (JOB_COMPLETE, b"fine")
    assert list(answered.data_updates) == []
    assert list(answered.warning_updates) == []
    assert len(raised) == 3 * len(OTHER_PAYLOADS)
    for error in raised:
        assert_flavour(error, errors.InvalidWorkerType, TypeError)


# ------------------------------------------------- admin replies of the kind


def test_an_admin_reply_of_the_wrong_kind_raises_invalid_admin_client_state() -> None:
    status = proto.AdminRequest(command=proto.AdminCommand.STATUS)
    wrong = proto.VersionReply(version=b"1.1.20", request=status)
    with pytest.raises(errors.InvalidAdminClientState, match="VersionReply"):
        check_reply(proto.AdminCommand.STATUS, wrong, proto.StatusReply)
    with pytest.raises(errors.InvalidAdminClientState):
        check_echo(wrong, b"ping")


def test_the_wrong_kind_is_refused_under_python_dash_o_too() -> None:
    # Under -O asserts vanish; the check must be a real one.
    program = (
        "import gearman_proto as proto\n"
        "from gearman import errors\n"
        "from gearman._admin_kernel import check_reply\n"
        "status = proto.AdminRequest(command=proto.AdminCommand.STATUS)\n"
        "wrong = proto.VersionReply(version=b'x', request=status)\n"
        "try:\n"
        "    check_reply(proto.AdminCommand.STATUS, wrong, proto.StatusReply)\n"
        "except errors.InvalidAdminClientState:\n"
        "    print('refused')\n"
        "try:\n"
        "    proto.CanDo(function=b'a\\tb')\n"
        "except proto.LocalValueError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "refused\nrefused\n", "")
