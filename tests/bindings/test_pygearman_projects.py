"""How real projects use python-gearman, against a real gearmand.

The shapes of public code that runs on python-gearman, written again here
(the facts carry over, the code does not) with Python 3 edits, each test
naming its source:

- Archivematica: the MCP client's ``MCPGearmanWorker`` (a JSON
  ``DataEncoder`` whose ``encode`` returns ``json.dumps``, bytes task names
  and client id, ``functools.partial`` task handlers, ``after_poll``
  leaving ``work()`` on a shutdown event or after N jobs, an
  ``on_job_exception`` override) and the MCP server's ``MCPGearmanClient``
  (batches submitted with ``wait_until_complete=False``, then a
  ``wait_until_any_job_completed`` of its own built on
  ``poll_connections_until_stopped(self.connection_list, ...)``); workers
  stopped from a SIGTERM handler that calls ``worker.shutdown()``.
- django-gearman-commands: ``HookedGearmanWorker`` (``after_job``),
  ``GearmanWorkerBaseCommand`` (a bound method as task, results ``'OK'``),
  its ``submit_job`` shortcut, ``GearmanServerInfo`` (admin version,
  status, workers, ping, filtered and sorted) and ``HaltIfInactiveWorker``'s
  ``work()`` override: python-gearman's own loop of
  ``establish_worker_connections`` and ``poll_connections_until_stopped``.
- New Relic's Python agent (``newrelic/hooks/application_gearman.py``):
  wraps ``GearmanClient``'s submit and wait methods,
  ``GearmanConnectionManager.poll_connections_until_stopped`` /
  ``handle_read`` / ``handle_write`` / ``handle_error`` (reading
  ``connection.gearman_host`` / ``gearman_port`` for the trace URL) and
  ``GearmanWorker.on_job_execute`` / ``register_task``.
- Monitoring scripts and Nagios plugins: admin ``get_status`` /
  ``get_workers`` loops on one admin client.

Shapes that run in the caller's own thread (signal handlers, python-gearman's
poll loop, patching the sync classes as the agent does) run on the sync
runtimes only (`sync_runtimes_only`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _binding_helpers import (
    BackgroundWorker,
    Threads,
    reverse,
    serving,
    sync_runtimes_only,
    unique_name,
    wait_for_workers,
    wait_until,
)

import gearman
import gearman.client
import gearman.connection_manager
import gearman.worker
from devtools.gearmand import Gearmand
from gearman.constants import JOB_COMPLETE, JOB_CREATED, JOB_FAILED, JOB_UNKNOWN

logger = logging.getLogger("tests.pygearman_projects")


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


# ======================================================== Archivematica


class JSONDataEncoder(gearman.DataEncoder):
    """Archivematica's ``gearman_encoder.JSONDataEncoder`` (without its datetime and
    UUID hooks): bytes are sent as their text, ``encode`` returns ``json.dumps``."""

    @classmethod
    def encode(cls, encodable_object: Any) -> Any:
        # Object of type bytes is not JSON serializable.
        if isinstance(encodable_object, bytes):
            encodable_object = encodable_object.decode("utf-8")
        return json.dumps(encodable_object, separators=(",", ":"))

    @classmethod
    def decode(cls, decodable_string: Any) -> Any:
        return json.loads(decodable_string)


def mcp_worker_class(runtime: types.ModuleType) -> type:
    """Archivematica's MCP client ``MCPGearmanWorker`` on *runtime*'s worker class."""

    class MCPGearmanWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

        def __init__(
            self,
            hosts: list[str],
            client_scripts: list[str],
            shutdown_event: Any = None,
            max_jobs_to_process: int | None = None,
        ) -> None:
            super().__init__(hosts)
            self.client_id = f"MCPClient-{os.getpid()}"
            self.jobs_processed_count = 0
            self.max_jobs_to_process = max_jobs_to_process
            self.shutdown_event = shutdown_event

            self.set_client_id(self.client_id.encode("ascii"))

            for client_script in client_scripts:
                task_handler = functools.partial(self.handle_job, client_script)
                self.register_task(client_script.encode(), task_handler)

        def handle_job(self, task_name: Any, gearman_worker: Any, gearman_job: Any) -> Any:
            task_name = str(task_name)
            # (Archivematica logs gearman_job.unique.decode(): its Python 3 fork of
            # python-gearman gives a worker's unique as bytes; ours is str.)
            logger.debug("Gearman job request %s received for %s", gearman_job.unique, task_name)
            results = {}
            for task_uuid, task_data in gearman_job.data["tasks"].items():
                exit_code = 1 if task_data["arguments"] == "--fail" else 0
                results[task_uuid] = {
                    "exitCode": exit_code,
                    "finishedTimestamp": task_data["createdDate"],
                }
                if task_data.get("wants_output", True):
                    results[task_uuid]["stdout"] = f"{task_name} {task_data['arguments']}"
                    results[task_uuid]["stderror"] = ""
            if gearman_job.data.get("crash"):
                raise RuntimeError("a client script crashed")
            self.jobs_processed_count += 1
            return {"task_results": results}

        def on_job_exception(self, current_job: Any, exc_info: Any) -> Any:
            logger.error(
                "An unhandled exception occurred processing a Gearman job", exc_info=exc_info
            )
            return super().on_job_exception(current_job, exc_info)

        def after_poll(self, any_activity: bool) -> bool:
            if self.shutdown_event and self.shutdown_event.is_set():
                logger.info("Gearman Worker exited due to shutdown")
                return False
            if (  # noqa: SIM103 -- Archivematica's shape
                self.max_jobs_to_process is not None
                and self.jobs_processed_count >= self.max_jobs_to_process
            ):
                return False
            return True

    return MCPGearmanWorker


def batch(arguments: list[str], **extra: Any) -> tuple[dict[str, Any], list[str]]:
    """A ``GearmanTaskBatch``'s data: one entry per task, keyed by its UUID."""
    uuids = [str(uuid.uuid4()) for _ in arguments]
    data: dict[str, Any] = {
        "tasks": {
            task_uuid: {
                "uuid": task_uuid,
                "createdDate": "2024-05-01T12:00:00",
                "arguments": argument,
                "wants_output": True,
            }
            for task_uuid, argument in zip(uuids, arguments, strict=True)
        },
        **extra,
    }
    return data, uuids


def test_archivematica_mcp_client_worker_serves_batches_and_stops_on_its_shutdown_event(
    runtime: types.ModuleType, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    # src/MCPClient/lib/client/gearman.py (MCPGearmanWorker), pool.py (run_gearman_worker,
    # WorkerPool.stop sets the shared shutdown event), and the MCP server's
    # GearmanTaskBatch.submit / result.
    normalize, identify = unique_name("normalize_v1.0"), unique_name("identify")
    shutdown_event = runtime.concurrency.Event()
    worker = mcp_worker_class(runtime)([address], [normalize, identify], shutdown_event)

    class MCPGearmanClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    caplog.set_level(logging.ERROR)
    runner = BackgroundWorker(runtime, worker, poll_timeout=0.2).start()
    try:
        client = MCPGearmanClient([address])
        data, uuids = batch(["--file a", "--file b"])
        crash, _ = batch(["--file c"], crash=True)
        batch_uuid = uuid.uuid4()
        pending = client.submit_job(
            task=normalize.encode(),
            data=data,
            unique=str(batch_uuid).encode(),
            wait_until_complete=False,
            background=False,
            max_retries=5,
        )
        crashed = client.submit_job(
            task=identify.encode(), data=crash, wait_until_complete=False, max_retries=5
        )
        client.wait_until_jobs_accepted([pending, crashed])
        client.wait_until_jobs_completed([pending, crashed], poll_timeout=10)
        wait_for_workers(runtime, address, normalize)
        row = [r for r in gearman_workers(runtime, address) if normalize in r["tasks"]]
    finally:
        shutdown_event.set()  # WorkerPool.stop(): after_poll returns False
    runner.join()

    assert pending.state == JOB_COMPLETE
    assert pending.job.unique == str(batch_uuid).encode()
    task_results = pending.result["task_results"]
    assert set(task_results) == set(uuids)
    assert [task_results[u]["stdout"] for u in uuids] == [
        f"{normalize} --file a",
        f"{normalize} --file b",
    ]
    assert all(task_results[u]["exitCode"] == 0 for u in uuids)
    assert crashed.state == JOB_FAILED
    assert "An unhandled exception occurred processing a Gearman job" in caplog.text
    assert [r["client_id"] for r in row] == [f"MCPClient-{os.getpid()}"]
    assert sorted(row[0]["tasks"]) == sorted([normalize, identify])
    wait_for_workers(runtime, address, normalize, count=0)  # work() closed its connection


def test_archivematica_worker_leaves_work_after_max_jobs_to_process(
    runtime: types.ModuleType, address: str
) -> None:
    # src/MCPClient/lib/client/gearman.py: MAX_TASKS_PER_CHILD, after_poll returning False
    # once jobs_processed_count reaches max_jobs_to_process; the pool then starts another.
    script = unique_name("characterize")
    worker = mcp_worker_class(runtime)([address], [script], max_jobs_to_process=2)
    runner = BackgroundWorker(runtime, worker, poll_timeout=0.2).start()

    class MCPGearmanClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    client = MCPGearmanClient([address])
    requests = [
        client.submit_job(task=script.encode(), data=batch([f"--n {i}"])[0], poll_timeout=10)
        for i in range(2)
    ]
    runner.join()  # nobody stops it: after_poll does
    assert [r.state for r in requests] == [JOB_COMPLETE, JOB_COMPLETE]
    assert worker.jobs_processed_count == 2
    wait_for_workers(runtime, address, script, count=0)


def gearman_workers(runtime: types.ModuleType, address: str) -> tuple[dict[str, Any], ...]:
    with runtime.GearmanAdminClient([address]) as admin:
        rows: tuple[dict[str, Any], ...] = admin.get_workers()
    return rows


@sync_runtimes_only()
def test_archivematica_mcp_server_waits_with_its_own_poll_loop(
    runtime: types.ModuleType, address: str
) -> None:
    # src/MCPServer/lib/server/tasks/backends/gearman_backend.py: MCPGearmanClient's
    # wait_until_any_job_completed, written on python-gearman's poll loop, and
    # GearmanTaskBackend.wait_for_results collecting batches as they finish.
    script = unique_name("normalize")

    class MCPGearmanClient(runtime.GearmanClient):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

        def wait_until_any_job_completed(self, job_requests, poll_timeout=None):  # type: ignore[no-untyped-def]
            def continue_while_no_job_completed(any_activity):  # type: ignore[no-untyped-def]
                for current_request in job_requests:
                    if current_request.complete and current_request.state != JOB_UNKNOWN:
                        return False
                return True

            self.poll_connections_until_stopped(
                self.connection_list, continue_while_no_job_completed, timeout=poll_timeout
            )

            for current_request in job_requests:
                if current_request.complete:
                    self.request_to_rotating_connection_queue.pop(current_request, None)

            return job_requests

    class MCPGearmanWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        data_encoder = JSONDataEncoder

    client = MCPGearmanClient([address])
    with serving(
        runtime,
        [address],
        {script: lambda w, job: {"task_results": job.data}},
        worker_class=MCPGearmanWorker,
    ):
        pending_batches = [
            client.submit_job(
                task=script.encode(),
                data={"n": n},
                unique=str(uuid.uuid4()).encode(),
                wait_until_complete=False,
                background=False,
                max_retries=5,
            )
            for n in range(3)
        ]
        gearman_requests = list(pending_batches)
        client.wait_until_jobs_accepted(gearman_requests)
        collected = []
        for _ in range(20):  # the backend loops until every batch is collected
            if len(collected) == len(pending_batches):
                break
            gearman_requests = client.wait_until_any_job_completed(
                gearman_requests, poll_timeout=10
            )
            collected += [r for r in gearman_requests if r.state in (JOB_COMPLETE, JOB_FAILED)]
            gearman_requests = [
                request
                for request in gearman_requests
                if request.state not in (JOB_COMPLETE, JOB_FAILED)
            ]
    assert sorted(r.result["task_results"]["n"] for r in collected) == [0, 1, 2]


@contextlib.contextmanager
def sigterm_calls(handler: Callable[[int, Any], None]) -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_when_registered(
    address: str, task: str, returned: Any, rescue: Callable[[], None]
) -> Any:
    """In an OS thread: SIGTERM this process once gearmand lists a worker for *task*;
    if *returned* is not set 10 s later, call *rescue* (so a failure ends the test)."""
    blocking = types.SimpleNamespace(
        GearmanAdminClient=gearman.GearmanAdminClient, concurrency=Threads()
    )
    rescued: list[bool] = []

    def run() -> None:
        wait_for_workers(blocking, address, task)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)
        if not returned.wait(10):
            rescued.append(True)
            rescue()

    thread = Threads().start(run, name="sigterm")
    return thread, rescued


@sync_runtimes_only()
def test_worker_shutdown_from_a_sigterm_handler_ends_work(
    runtime: types.ModuleType, address: str
) -> None:
    # Workers stopped on SIGTERM (Archivematica's MCP client and others): the handler calls
    # gm_worker.shutdown(); work() running in the main thread returns.
    task = unique_name("sigterm")
    gm_worker = runtime.GearmanWorker([address])
    gm_worker.register_task(task, reverse)
    returned = Threads().Event()

    def stop(signum: int, frame: Any) -> None:
        gm_worker.shutdown()

    thread, rescued = sigterm_when_registered(address, task, returned, gm_worker.stop)
    with sigterm_calls(stop):
        try:
            gm_worker.work(poll_timeout=5.0)
        finally:
            returned.set()
            thread.join(20)
    assert rescued == [], "shutdown() from the signal handler did not end work()"
    wait_for_workers(runtime, address, task, count=0)


@sync_runtimes_only()
def test_worker_shutdown_then_exit_from_a_sigterm_handler(
    runtime: types.ModuleType, address: str
) -> None:
    # The other common handler: gm_worker.shutdown(); sys.exit(0) -- SystemExit leaves
    # work() and the connections are closed.
    task = unique_name("sigterm-exit")
    gm_worker = runtime.GearmanWorker([address])
    gm_worker.register_task(task, reverse)
    returned = Threads().Event()

    def stop(signum: int, frame: Any) -> None:
        gm_worker.shutdown()
        sys.exit(0)

    def work() -> None:
        try:
            gm_worker.work(poll_timeout=5.0)
        finally:
            returned.set()
            thread.join(20)

    thread, rescued = sigterm_when_registered(address, task, returned, gm_worker.stop)
    with sigterm_calls(stop), pytest.raises(SystemExit) as exited:
        work()
    assert exited.value.code == 0
    assert rescued == []
    wait_for_workers(runtime, address, task, count=0)


# ================================================ django-gearman-commands


def hooked_worker_class(runtime: types.ModuleType) -> type:
    """django_gearman_commands.HookedGearmanWorker on *runtime*'s worker class."""

    class HookedGearmanWorker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
        """GearmanWorker with hooks support."""

        def __init__(self, exit_after_job: bool, host_list: Any = None) -> None:
            super().__init__(host_list=host_list)
            self.exit_after_job = exit_after_job

        def after_job(self) -> bool:
            return not self.exit_after_job

    return HookedGearmanWorker


def test_django_gearman_commands_worker_command_and_submit_shortcut(
    runtime: types.ModuleType, address: str
) -> None:
    # django_gearman_commands/__init__.py: GearmanWorkerBaseCommand.handle / _invoke_job on
    # a HookedGearmanWorker, the footest worker (exit_after_job), the submit_job shortcut
    # (background, no wait) and the gearman_submit_job command (foreground).
    cache: dict[str, Any] = {}
    task_name = unique_name("footest")

    class FooTestCommand:  # GearmanWorkerBaseCommand, without Django
        worker_class = hooked_worker_class(runtime)

        def __init__(self, exit_after_job: bool) -> None:
            self.gearman_worker: Any = None
            self.exit_after_job = exit_after_job

        def do_job(self, job_data: Any) -> Any:
            cache["footest"] = "I AM FOO !" if not job_data else job_data  # noqa: SIM212
            return None

        def handle(self) -> None:
            self.gearman_worker = self.worker_class(
                exit_after_job=self.exit_after_job, host_list=[address]
            )
            self.gearman_worker.register_task(task_name, self._invoke_job)
            self.gearman_worker.work()

        def _invoke_job(self, worker: Any, job: Any) -> Any:
            result = self.do_job(job.data if job.data else None)
            return "OK" if not isinstance(result, str) else result

    def submit_job(task_name: str, data: Any = "", client: Any = None, **options: Any) -> Any:
        background = options.pop("background", True)
        wait_until_complete = options.pop("wait_until_complete", False)
        client = client or runtime.GearmanClient([address])
        return client.submit_job(
            task_name,
            data=data,
            background=background,
            wait_until_complete=wait_until_complete,
            **options,
        )

    command = FooTestCommand(exit_after_job=True)
    handling = runtime.concurrency.start(command.handle)
    client = runtime.GearmanClient([address])
    request = submit_job(task_name, client=client)
    assert (request.state, request.complete, request.background) == (JOB_CREATED, True, True)
    handling.join(10)
    assert not handling.is_alive(), "exit_after_job: work() returns after one job"
    assert cache == {"footest": "I AM FOO !"}

    command = FooTestCommand(exit_after_job=True)
    handling = runtime.concurrency.start(command.handle)
    result = client.submit_job(
        task_name, "some data", wait_until_complete=True, background=False, poll_timeout=10
    )
    handling.join(10)
    assert not handling.is_alive()
    assert (result.state, result.result) == (JOB_COMPLETE, b"OK")
    assert cache == {"footest": b"some data"}


def test_django_gearman_commands_server_info(runtime: types.ModuleType, address: str) -> None:
    # django_gearman_commands.GearmanServerInfo.get_server_info(task_filter) (the output
    # without prettytable; '{0:s}' of a list became '{0}' for Python 3) and the rows its
    # prettytable branch builds.
    prefix = unique_name("dgc")
    tasks = [f"{prefix}-b", f"{prefix}-a"]
    with (
        serving(runtime, [address], {tasks[0]: reverse}),
        serving(runtime, [address], {tasks[1]: reverse}),
    ):
        for task in tasks:
            wait_for_workers(runtime, address, task)
        host = address
        client = runtime.GearmanAdminClient([host])

        server_version = client.get_version()
        all_tasks = client.get_status()
        all_workers = client.get_workers()
        ping_time = client.ping_server()
        ping_time_str = f"{ping_time:0.016f}"

        task_filter = prefix
        found_tasks = [item for item in all_tasks if task_filter in item["task"]]
        found_workers = [
            item
            for item in all_workers
            if item["tasks"] and any(task_filter in t for t in item["tasks"])
        ]
        found_tasks = sorted(found_tasks, key=lambda item: item["task"])
        found_workers = sorted(found_workers, key=lambda item: item["tasks"])

        table = [[r["task"], r["workers"], r["running"], r["queued"]] for r in found_tasks]
        worker_table = [
            [r["ip"], ",".join(r["tasks"]), r["client_id"], r["file_descriptor"]]
            for r in found_workers
            if r["tasks"]
        ]
        result = ""
        result += f"Gearman Server Host:{host:s}\n"
        result += f"Gearman Server Version:{server_version:s}.\n"
        result += f"Gearman Server Ping Response Time:{ping_time_str:s}.\n"
        result += f"Tasks:\n{found_tasks}\n"
        result += f"Workers:\n{found_workers}\n"

    assert table == [[f"{prefix}-a", 1, 0, 0], [f"{prefix}-b", 1, 0, 0]]
    assert [row[1] for row in worker_table] == [f"{prefix}-a", f"{prefix}-b"]
    assert all(row[0] == "127.0.0.1" and row[3].isdigit() for row in worker_table)
    assert f"Gearman Server Host:{address}\n" in result
    assert f"Gearman Server Version:{server_version}.\n" in result
    assert float(ping_time_str) >= 0


@sync_runtimes_only()
def test_django_gearman_commands_work_loop_override(
    runtime: types.ModuleType, address: str
) -> None:
    # django_gearman_commands.HaltIfInactiveWorker.work (without its timer process), which is
    # python-gearman 2.0.2's own GearmanWorker.work: establish_worker_connections, then
    # poll_connections_until_stopped until it returns False, then close the connections.
    task = unique_name("halt")
    done: list[bytes] = []

    class LoopWorker(hooked_worker_class(runtime)):  # type: ignore[misc]
        def work(self, poll_timeout=1):  # type: ignore[no-untyped-def]
            """Loop indefinitely, complete tasks from all connections."""
            continue_working = True
            worker_connections = []

            def continue_while_connections_alive(any_activity):  # type: ignore[no-untyped-def]
                return self.after_poll(any_activity)

            # Shuffle our connections after the poll timeout
            while continue_working:
                worker_connections = self.establish_worker_connections()
                continue_working = self.poll_connections_until_stopped(
                    worker_connections, continue_while_connections_alive, timeout=poll_timeout
                )

            # If we were kicked out of the worker loop, we should shutdown all our connections
            for current_connection in worker_connections:
                current_connection.close()

        def after_poll(self, any_activity: bool) -> bool:
            return len(done) < 2

    def record(worker: Any, job: Any) -> bytes:
        done.append(job.data)
        return job.data[::-1]

    worker = LoopWorker(exit_after_job=False, host_list=[address])
    worker.register_task(task, record)
    runner = BackgroundWorker(runtime, worker, poll_timeout=0.2).start()
    client = runtime.GearmanClient([address])
    results = [client.submit_job(task, data, poll_timeout=10).result for data in (b"ab", b"cd")]
    runner.join()  # after_poll returned False: poll_connections_until_stopped returned False
    assert results == [b"ba", b"dc"]
    assert done == [b"ab", b"cd"]
    assert [c.connected for c in worker.connection_list] == [False]
    wait_for_workers(runtime, address, task, count=0)


# ============================================================ New Relic


def wrap_function_wrapper(
    monkeypatch: pytest.MonkeyPatch, module: types.ModuleType, name: str, wrapper: Any
) -> None:
    """Replace ``module.Class.method`` by ``wrapper(wrapped, instance, args, kwargs)``, as
    the agent's ``wrap_function_wrapper`` does (an unknown name raises AttributeError,
    which stops the agent's instrumentation of the module)."""
    class_name, method_name = name.split(".")
    owner = getattr(module, class_name)
    original = getattr(owner, method_name)

    @functools.wraps(original)
    def replacement(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(functools.partial(original, self), self, args, kwargs)

    monkeypatch.setattr(owner, method_name, replacement)


class CallableProxy:
    """A transparent wrapper of a task function (the agent's ``FunctionWrapper``)."""

    def __init__(self, wrapped: Callable[..., Any], calls: list[str]) -> None:
        self.__wrapped__ = wrapped
        self.calls = calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("task")
        return self.__wrapped__(*args, **kwargs)


@sync_runtimes_only()
def test_new_relic_agent_hooks(
    runtime: types.ModuleType, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # newrelic/hooks/application_gearman.py: instrument_gearman_client,
    # instrument_gearman_connection_manager, instrument_gearman_worker, applied when the
    # modules gearman.client, gearman.connection_manager and gearman.worker are imported.
    traced: list[str] = []
    urls: list[str] = []
    handled: list[str] = []
    task_calls: list[str] = []
    executed: list[Any] = []

    def function_trace(name: str) -> Any:
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            traced.append(name)
            return wrapped(*args, **kwargs)

        return wrapper

    for name in (
        "submit_job",
        "submit_multiple_jobs",
        "submit_multiple_requests",
        "wait_until_jobs_accepted",
        "wait_until_jobs_completed",
        "get_job_status",
        "get_job_statuses",
        "wait_until_job_statuses_received",
    ):
        wrap_function_wrapper(
            monkeypatch, gearman.client, f"GearmanClient.{name}", function_trace(name)
        )

    def poll_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def _bind_params(submitted_connections: Any, *args: Any, **kwargs: Any) -> Any:
            return submitted_connections

        submitted_connections = _bind_params(*args, **kwargs)
        if submitted_connections:
            first_connection = list(submitted_connections)[0]  # noqa: RUF015 -- the agent's
            urls.append(
                "gearman://%s:%s"  # noqa: UP031
                % (first_connection.gearman_host, first_connection.gearman_port)
            )
        return wrapped(*args, **kwargs)

    def handle_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def _bind_params(current_connection: Any, *args: Any, **kwargs: Any) -> Any:
            return current_connection

        current_connection = _bind_params(*args, **kwargs)
        handled.append(
            "gearman://%s:%s"  # noqa: UP031
            % (current_connection.gearman_host, current_connection.gearman_port)
        )
        return wrapped(*args, **kwargs)

    for name in ("handle_read", "handle_write", "handle_error"):
        wrap_function_wrapper(
            monkeypatch,
            gearman.connection_manager,
            f"GearmanConnectionManager.{name}",
            handle_wrapper,
        )
    wrap_function_wrapper(
        monkeypatch,
        gearman.connection_manager,
        "GearmanConnectionManager.poll_connections_until_stopped",
        poll_wrapper,
    )

    def on_job_execute_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def _bind_params(current_job: Any, *args: Any, **kwargs: Any) -> Any:
            return current_job

        executed.append(_bind_params(*args, **kwargs).task)  # the background task's name
        return wrapped(*args, **kwargs)

    def register_task_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def _bind_params(task: Any, callback_function: Any, *args: Any, **kwargs: Any) -> Any:
            return task, callback_function, args, kwargs

        task, callback_function, _args, _kwargs = _bind_params(*args, **kwargs)
        callback_function = CallableProxy(callback_function, task_calls)
        return wrapped(task, callback_function, *_args, **_kwargs)

    wrap_function_wrapper(
        monkeypatch, gearman.worker, "GearmanWorker.on_job_execute", on_job_execute_wrapper
    )
    wrap_function_wrapper(
        monkeypatch, gearman.worker, "GearmanWorker.register_task", register_task_wrapper
    )

    task = unique_name("traced")
    with serving(runtime, [address], {task: reverse}):
        client = runtime.GearmanClient([address])
        request = client.submit_job(task, b"abc", poll_timeout=10)
        status = client.submit_job(task, b"slow", wait_until_complete=False, poll_timeout=10)
        # This binding's own waits are the runtime's, not python-gearman's poll
        # loop (README, "python-gearman's lower layers"): the agent's poll and
        # handle_* hooks see the loop when code drives it, as here.
        client.poll_connections_until_stopped(
            client.connection_list, lambda activity: not status.complete, timeout=10
        )
        client.get_job_status(request, poll_timeout=10)

    expected = f"gearman://{address}"
    assert request.result == b"cba"
    assert status.result == b"wols"
    assert traced[0] == "submit_job"
    assert "get_job_status" in traced
    assert set(urls) == {expected}
    # handle_* see the connection when the polled loop read the reply (it may
    # have come with JOB_CREATED, before the loop ran)
    assert set(handled) <= {expected}
    assert executed == [task, task]
    assert task_calls == ["task", "task"]


# ================================================ monitoring scripts


def test_monitoring_script_lists_busy_functions_and_named_workers(
    runtime: types.ModuleType, address: str
) -> None:
    # A common admin script: print the workers that set a client id (gearmand lists other
    # connections with "-") and the functions with queued or running jobs.
    busy, idle = unique_name("busy"), unique_name("idle")
    client_id = unique_name("reporter")
    worker = runtime.GearmanWorker([address])
    worker.set_client_id(client_id)
    worker.register_task(idle, reverse)
    try:
        worker.establish_worker_connections()
        wait_for_workers(runtime, address, idle)
        runtime.GearmanClient([address]).submit_job(busy, b"", background=True, poll_timeout=10)

        admin = runtime.GearmanAdminClient(host_list=[address])
        named = []
        for client in admin.get_workers():
            if client["client_id"] != "-":  # exclude server task connections
                named.append((client["client_id"], client["ip"]))
        stats = []
        for stat in admin.get_status():
            if stat["running"] != 0 or stat["queued"] != 0:
                stats.append(stat)
    finally:
        worker.shutdown()
    assert (client_id, "127.0.0.1") in named
    assert all(client_id != "-" for client_id, _ in named)
    assert {"task": busy, "queued": 1, "running": 0, "workers": 0} in stats
    assert all(stat["task"] != idle for stat in stats)


def test_nagios_plugin_worker_capacity(runtime: types.ModuleType, address: str) -> None:
    # A nagiosplugin Resource (GearmanWorkerMetric): GearmanAdminClient([host], timeout),
    # the status line of one function, workers against queued jobs.
    task = unique_name("capacity")

    class GearmanWorkerMetric:
        def __init__(self, hostname: str, port: int, function: str, timeout: str) -> None:
            self.gearman_host = hostname + ":" + str(port)
            self.function = function
            self.timeout = float(timeout)

        def get_stats(self, task: str) -> Any:
            gm_admin_client = runtime.GearmanAdminClient([self.gearman_host], self.timeout)
            stats = gm_admin_client.get_status()
            for stat in stats:
                if stat.get("task") == task:
                    return stat
            return False

        def get_capacity(self, stats: dict[str, Any]) -> int:
            return int(stats.get("workers")) - int(stats.get("queued"))

    hostname, port = address.rsplit(":", 1)
    metric = GearmanWorkerMetric(hostname, int(port), task, "5")
    assert metric.get_stats(task) is False
    client = runtime.GearmanClient([address])
    client.submit_multiple_jobs([{"task": task, "data": b""}] * 3, background=True, poll_timeout=10)
    stats = metric.get_stats(task)
    assert stats == {"task": task, "queued": 3, "running": 0, "workers": 0}
    assert metric.get_capacity(stats) == -3


def test_monitoring_loop_watches_a_queue_drain_on_one_admin_client(
    runtime: types.ModuleType, address: str
) -> None:
    # A monitoring daemon polls get_status on one admin client while workers drain a queue.
    task = unique_name("drain")
    client = runtime.GearmanClient([address])
    client.submit_multiple_jobs(
        [{"task": task, "data": b"%d" % i} for i in range(5)], background=True, poll_timeout=10
    )
    seen: list[int] = []
    with runtime.GearmanAdminClient([address]) as admin:

        def queued() -> int:
            for stat in admin.get_status():
                if stat["task"] == task:
                    return int(stat["queued"])
            return -1

        seen.append(queued())
        with serving(runtime, [address], {task: reverse}):
            wait_until(runtime, lambda: seen.append(queued()) or seen[-1] == 0, message="drained")
    assert seen[0] == 5
    assert seen[-1] == 0
    assert seen == sorted(seen, reverse=True), "a queue that only drains never grows"


def test_monitoring_loop_survives_a_server_restart(
    runtime: types.ModuleType, gearmand_factory: Any
) -> None:
    # Monitoring loops run for ever on one admin client, catching gearman errors and
    # polling again: after a restart the same object answers again.
    server: Gearmand = gearmand_factory()
    admin = runtime.GearmanAdminClient([server.address], poll_timeout=5.0)
    assert admin.get_status() == ()
    server.restart()
    errors_seen: list[str] = []

    def poll() -> bool:
        try:
            admin.get_status()
        except gearman.errors.GearmanError as error:
            errors_seen.append(type(error).__name__)
            return False
        return True

    wait_until(runtime, poll, message="status after the restart")
    assert admin.ping_server() >= 0
    admin.shutdown()
