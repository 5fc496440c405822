"""Every wait ends by its deadline; core errors reach users as GearmanErrors.

The four defects of issue 9, against a real gearmand or a loopback peer of
ours that accepts connections and never reads (a listening socket that is
never ``accept()``-ed still completes handshakes and buffers what arrives,
up to its small receive buffer), or whose accept queue is full.
"""

from __future__ import annotations

import json
import socket
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
from _binding_helpers import reverse, serving, unique_name

import gearman
from devtools.peers import StalledServer, assign_job


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """127.0.0.1:PORT of a listener that takes connections and never reads."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def full_backlog_server() -> Iterator[str]:
    """127.0.0.1:PORT of a listener whose accept queue is full: connects hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    while True:  # fill the queue until a connect no longer completes
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(address)
        except (TimeoutError, OSError):
            probe.close()
            break
        fillers.append(probe)
        assert len(fillers) < 64, "the accept queue never filled"
    yield f"127.0.0.1:{address[1]}"
    for filler in fillers:
        filler.close()
    listener.close()


def test_a_large_submit_to_a_server_that_stopped_reading_returns_by_its_deadline(
    runtime: types.ModuleType, stalled_server: str
) -> None:
    """The stalled link is given up at the deadline; the request, never
    accepted, had no attempt left: a typed error, in time."""
    client = runtime.GearmanClient([stalled_server])
    started = time.monotonic()
    with pytest.raises(runtime.errors.ExceededConnectionAttempts):
        client.submit_job("big", b"x" * (32 << 20), poll_timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 2.0, f"poll_timeout=1 returned after {elapsed:.1f} s"


def test_connect_is_bounded_by_the_callers_poll_timeout(
    runtime: types.ModuleType, full_backlog_server: str
) -> None:
    client = runtime.GearmanClient([full_backlog_server], connect_timeout=60.0)
    started = time.monotonic()
    with pytest.raises(runtime.errors.ServerUnavailable):
        client.submit_job("t", b"", poll_timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 2.0, f"poll_timeout=0.5 returned after {elapsed:.1f} s"


def test_a_server_restarted_twice_is_used_as_soon_as_it_is_back(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    server = gearmand_factory()
    client = runtime.GearmanClient([server.address])
    task = unique_name("restart")
    for _ in range(3):
        request = client.submit_job(task, b"x", background=True, poll_timeout=10)
        assert request.complete
        server.restart()
    request = client.submit_job(task, b"x", background=True, max_retries=1, poll_timeout=10)
    assert request.complete
    assert not request.timed_out


@pytest.mark.parametrize("task", ["nul\0inside", b"nul\0inside"])
def test_a_name_the_protocol_cannot_carry_is_a_gearman_error(
    runtime: types.ModuleType, gearmand: Any, task: str | bytes
) -> None:
    client = runtime.GearmanClient([gearmand.address])
    with pytest.raises(runtime.errors.GearmanError, match="NUL"):
        client.submit_job(task, b"x", poll_timeout=5)
    worker = runtime.GearmanWorker([gearmand.address])
    with pytest.raises(runtime.errors.GearmanError, match="NUL"):
        worker.register_task(task, reverse)


def test_an_encoder_returning_the_wrong_type_is_a_gearman_error(
    runtime: types.ModuleType, gearmand: Any
) -> None:
    class Broken(runtime.DataEncoder):  # type: ignore[name-defined, misc]
        @classmethod
        def encode(cls, encodable_object: Any) -> Any:
            return 42

    class BrokenClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = Broken

    client = BrokenClient([gearmand.address])
    with pytest.raises(runtime.errors.GearmanError):
        client.submit_job(unique_name("enc"), {"a": 1}, poll_timeout=5)


def test_threads_share_one_client_and_each_gets_its_own_answers(
    runtime: types.ModuleType, gearmand: Any
) -> None:
    task = unique_name("shared")
    client = runtime.GearmanClient([gearmand.address])
    results: dict[int, list[bytes]] = {}
    failures: list[BaseException] = []

    def submitter(number: int) -> None:
        try:
            mine = []
            for job in range(15):
                payload = b"%d-%d" % (number, job)
                request = client.submit_job(task, payload, poll_timeout=20)
                assert request.complete, request
                mine.append(request.result)
            results[number] = mine
        except BaseException as error:
            failures.append(error)

    with serving(runtime, [gearmand.address], {task: reverse}):
        threads = [runtime.concurrency.start(submitter, n) for n in range(6)]
        for thread in threads:
            thread.join(60)
    assert not failures, failures
    assert results == {n: [(b"%d-%d" % (n, job))[::-1] for job in range(15)] for n in range(6)}


def test_the_gearman_package_offers_the_runtime_names(runtime: types.ModuleType) -> None:
    assert runtime.GearmanClient is not None
    assert issubclass(runtime.errors.ServerUnavailable, gearman.errors.GearmanError)


def test_a_worker_whose_result_stalls_keeps_calling_after_poll(
    runtime: types.ModuleType,
) -> None:
    """A large result to a server that stopped reading: the link is given up at
    the end of the wait, after_poll runs, and the worker carries on."""
    result = b"r" * (32 << 20)
    ran = runtime.concurrency.Event()
    polls_after_job: list[bool] = []

    class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def after_poll(self, any_activity: bool) -> bool:
            if ran.is_set():
                polls_after_job.append(any_activity)
            return len(polls_after_job) < 2

    def task(worker: Any, job: Any) -> bytes:
        ran.set()
        return result

    with StalledServer(script=assign_job(b"H:stall:1", b"big", b"u", b"x")) as peer:
        worker = Worker([peer.address])
        worker.register_task("big", task)
        started = time.monotonic()
        worker.work(poll_timeout=0.5)
        elapsed = time.monotonic() - started
        peer.close()
    assert ran.is_set()
    assert len(polls_after_job) == 2
    assert elapsed < 10.0, f"work() with poll_timeout=0.5 took {elapsed:.1f} s"


def test_a_worker_connect_is_bounded_by_its_poll_timeout(
    runtime: types.ModuleType, full_backlog_server: str
) -> None:
    polls: list[bool] = []

    class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        def after_poll(self, any_activity: bool) -> bool:
            polls.append(any_activity)
            return len(polls) < 3

    worker = Worker([full_backlog_server], connect_timeout=60.0)
    worker.register_task("t", reverse)
    started = time.monotonic()
    worker.work(poll_timeout=0.3)
    elapsed = time.monotonic() - started
    assert polls == [False, False, False]
    assert elapsed < 10.0, f"three polls of 0.3 s took {elapsed:.1f} s"


def test_an_encoder_returning_str_is_sent_utf8_on_both_sides(
    runtime: types.ModuleType, gearmand: Any
) -> None:
    """python-gearman's documented JSON encoder returns ``json.dumps``: a str."""

    class JSONEncoder(runtime.DataEncoder):  # type: ignore[name-defined, misc]
        @classmethod
        def encode(cls, encodable_object: Any) -> Any:
            return json.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string: bytes) -> Any:
            return json.loads(decodable_string)

    class Client(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONEncoder

    class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONEncoder

    task = unique_name("json")
    tasks = {task: lambda worker, job: {"got": job.data}}
    with serving(runtime, [gearmand.address], tasks, Worker):
        request = Client([gearmand.address]).submit_job(task, ["é", 1], poll_timeout=10)
    assert request.result == {"got": ["é", 1]}
