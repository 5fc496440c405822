"""Interop with libgearman's tools: ``gearman`` (client and worker) and ``gearadmin``.

The ``gearman`` CLI plays the client for our worker and the worker for our
client (PROTOCOL.md 9.27); ``gearadmin``'s output is compared field by
field with what our admin client returns for the same server state.
"""

from __future__ import annotations

import shutil
import subprocess
import types
from collections.abc import Iterator
from typing import Any

import pytest
from _binding_helpers import BackgroundWorker, reverse, serving, unique_name, wait_for_workers

from gearman import (
    JOB_COMPLETE,
    JOB_FAILED,
    PRIORITY_HIGH,
    GearmanJob,
)
from gearman.testing import Gearmand

pytestmark = pytest.mark.skipif(
    not (shutil.which("gearman") and shutil.which("gearadmin")),
    reason="the gearman and gearadmin tools are not installed (apt package gearman-tools)",
)

TIMEOUT = 15


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def server_args(server: Gearmand) -> list[str]:
    return ["-h", server.host, "-p", str(server.port)]


def gearman_client(
    runtime: types.ModuleType, server: Gearmand, *args: str, stdin: bytes | None = None
) -> Any:
    """Run the ``gearman`` CLI as a client; returns the CompletedProcess.

    Our worker serves it meanwhile: the run goes through the runtime's
    ``concurrency``, so it lets the worker's greenlets run under gevent."""
    return runtime.concurrency.run_process(
        ["gearman", *server_args(server), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture
def cli_worker(runtime: types.ModuleType, gearmand: Gearmand) -> Iterator[Any]:
    """Start ``gearman -w`` processes; each is waited for (or killed) at teardown."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(task: str, *args: str, count: int = 1) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["gearman", "-w", *server_args(gearmand), "-f", task, "-c", str(count), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        wait_for_workers(runtime, gearmand.address, task)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


# ----------------------------------------------- gearman CLI as the client


def test_cli_client_runs_a_job_on_our_worker(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    task = unique_name("reverse")
    with serving(runtime, [gearmand.address], {task: reverse}):
        result = gearman_client(runtime, gearmand, "-f", task, "Hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"olleH", b"")


def test_cli_client_options_reach_our_worker(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    task, unique = unique_name("opts"), unique_name("cli-unique")
    seen: list[tuple[Any, Any]] = []
    background_done = runtime.concurrency.Event()

    def record(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        seen.append((job.unique, job.data))
        if job.data == b"in-background":
            background_done.set()
        worker.send_job_data(job, b"partial;")
        return b"final"

    with serving(runtime, [gearmand.address], {task: record}):
        high = gearman_client(runtime, gearmand, "-f", task, "-u", unique, "-I", "high-data")
        background = gearman_client(runtime, gearmand, "-f", task, "-b", "-L", "in-background")
        assert background_done.wait(TIMEOUT)
        piped = gearman_client(runtime, gearmand, "-f", task, stdin=b"from stdin")
    assert (high.returncode, high.stdout) == (0, b"partial;final")
    assert (background.returncode, background.stdout) == (0, b"")
    assert piped.stdout == b"partial;final"
    assert seen[0] == (unique, b"high-data")
    assert seen[1][1] == b"in-background"
    assert seen[2][1] == b"from stdin"
    assert seen[1][0]
    assert seen[1][0] != unique


def test_cli_client_sees_our_worker_fail(runtime: types.ModuleType, gearmand: Gearmand) -> None:
    task = unique_name("failing")

    def broken(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        raise RuntimeError("expected by the test")

    with serving(runtime, [gearmand.address], {task: broken}):
        result = gearman_client(runtime, gearmand, "-f", task, "x")
    assert result.returncode == 1
    assert b"Job failed" in result.stderr


# ----------------------------------------------- gearman CLI as the worker


@pytest.mark.skipif(not shutil.which("rev"), reason="no rev command")
def test_cli_worker_runs_a_job_for_our_client(
    runtime: types.ModuleType, gearmand: Gearmand, cli_worker: Any
) -> None:
    task = unique_name("rev")
    process = cli_worker(task, "--", "rev")
    request = runtime.GearmanClient([gearmand.address]).submit_job(
        task, b"hello", poll_timeout=TIMEOUT
    )
    assert (request.state, request.result) == (JOB_COMPLETE, b"olleh")
    assert process.wait(TIMEOUT) == 0  # -c 1: exits after one job


def test_cli_worker_command_failure_fails_our_request(
    runtime: types.ModuleType, gearmand: Gearmand, cli_worker: Any
) -> None:
    task = unique_name("false")
    cli_worker(task, "--", "false")
    request = runtime.GearmanClient([gearmand.address]).submit_job(task, b"x", poll_timeout=TIMEOUT)
    assert (request.state, request.complete, request.timed_out) == (JOB_FAILED, True, False)


def test_cli_worker_without_command_echoes_and_completes_empty(
    runtime: types.ModuleType, gearmand: Gearmand, cli_worker: Any
) -> None:
    task = unique_name("echo")
    process = cli_worker(task)
    request = runtime.GearmanClient([gearmand.address]).submit_job(
        task, b"echoed", priority=PRIORITY_HIGH, poll_timeout=TIMEOUT
    )
    assert (request.state, request.result) == (JOB_COMPLETE, b"")
    stdout, _ = process.communicate(timeout=TIMEOUT)
    assert stdout == b"echoed"


def test_cli_worker_line_mode_sends_work_data(
    runtime: types.ModuleType, gearmand: Gearmand, cli_worker: Any
) -> None:
    task = unique_name("lines")
    cli_worker(task, "-n", "--", "cat", count=2)
    request = runtime.GearmanClient([gearmand.address]).submit_job(
        task, b"one\ntwo\n", poll_timeout=TIMEOUT
    )
    assert (request.state, request.result) == (JOB_COMPLETE, b"")
    # libgearman's worker sends its whole output so far in each WORK_DATA
    assert list(request.data_updates) == [b"one\n", b"one\ntwo\n"]
    # the CLI client, given the same job, prints the same packets
    theirs = gearman_client(runtime, gearmand, "-f", task, stdin=b"one\ntwo\n")
    assert theirs.stdout == b"".join(request.data_updates) + request.result


# --------------------------------------------------------------- gearadmin


def gearadmin(server: Gearmand, *options: str) -> str:
    result = subprocess.run(
        ["gearadmin", *server_args(server), *options],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert result.stderr == b"", result.stderr
    return result.stdout.decode()


def block_lines(output: str) -> list[str]:
    lines = output.split("\n")
    assert lines[-2:] == [".", ""], output
    return lines[:-2]


@pytest.fixture
def busy_server(runtime: types.ModuleType, gearmand_factory: Any) -> Iterator[dict[str, Any]]:
    """A private gearmand with a worker of ours, queued jobs and a running job."""
    server: Gearmand = gearmand_factory()
    served, queued, client_id = unique_name("served"), unique_name("queued"), unique_name("id")
    started, release = runtime.concurrency.Event(), runtime.concurrency.Event()

    def hold(worker: runtime.GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        assert release.wait(TIMEOUT)
        return b""

    worker = runtime.GearmanWorker([server.address])
    worker.set_client_id(client_id)
    worker.register_task(served, hold)
    worker.register_task(queued + "-other", reverse)
    client_label = unique_name("client")
    client = runtime.GearmanClient([server.address], client_id=client_label)
    with BackgroundWorker(runtime, worker):
        running = client.submit_job(served, b"", wait_until_complete=False, poll_timeout=TIMEOUT)
        assert started.wait(TIMEOUT)
        jobs = [
            client.submit_job(queued, b"a", unique="u-a", background=True, priority=PRIORITY_HIGH),
            client.submit_job(queued, b"b", unique="u-b", background=True),
            client.submit_job(queued, b"c", unique="u-c", wait_until_complete=False),
        ]
        yield {
            "server": server,
            "client_id": client_id,
            "client_label": client_label,
            "running": running,
            "jobs": jobs,
            "admin": runtime.GearmanAdminClient([server.address]),
        }
        release.set()


def test_gearadmin_status_matches_get_status(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    theirs = []
    for line in block_lines(gearadmin(server, "--status")):
        task, queued, running, workers = line.split("\t")
        theirs.append(
            {"task": task, "queued": int(queued), "running": int(running), "workers": int(workers)}
        )
    ours = list(admin.get_status())
    assert sorted(theirs, key=lambda s: s["task"]) == sorted(ours, key=lambda s: s["task"])
    assert len(ours) == 3
    assert any(s["running"] == 1 for s in ours)


def test_gearadmin_priority_status_matches(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    theirs = []
    for line in block_lines(gearadmin(server, "--priority-status")):
        task, high, normal, low, workers = line.split("\t")
        theirs.append(
            {
                "task": task,
                "high": int(high),
                "normal": int(normal),
                "low": int(low),
                "workers": int(workers),
            }
        )
    ours = list(admin.get_priority_status())
    assert sorted(theirs, key=lambda s: s["task"]) == sorted(ours, key=lambda s: s["task"])


def test_gearadmin_workers_matches_get_workers(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    client_id = busy_server["client_id"]
    theirs = []
    for line in block_lines(gearadmin(server, "--workers")):
        fd, ip, cid, colon, *tasks = line.split(" ")
        assert colon == ":"
        theirs.append({"file_descriptor": fd, "ip": ip, "client_id": cid, "tasks": tuple(tasks)})
    ours = admin.get_workers()
    # each tool lists its own admin connection differently; our worker is the same
    (their_worker,) = [w for w in theirs if w["client_id"] == client_id]
    (our_worker,) = [w for w in ours if w["client_id"] == client_id]
    assert their_worker["file_descriptor"] == our_worker["file_descriptor"]
    assert their_worker["ip"] == our_worker["ip"]
    assert sorted(their_worker["tasks"]) == sorted(our_worker["tasks"])
    assert len(our_worker["tasks"]) == 2
    # the labelled connections (our worker and our client) are listed alike;
    # the unlabelled admin connections come and go with each tool
    labelled = {client_id, busy_server["client_label"]}
    assert sorted(
        (w["client_id"], w["file_descriptor"]) for w in theirs if w["client_id"] != "-"
    ) == (sorted((w["client_id"], w["file_descriptor"]) for w in ours if w["client_id"] != "-"))
    assert {w["client_id"] for w in ours if w["client_id"] != "-"} == labelled


def test_gearadmin_version_pid_and_verbose_match(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    assert gearadmin(server, "--server-version") == admin.get_version() + "\n"
    assert gearadmin(server, "--getpid") == admin.get_pid() + "\n"
    assert admin.get_pid() == str(server.pid)
    assert gearadmin(server, "--server-verbose") == admin.get_verbose() + "\n"


def test_gearadmin_show_jobs_matches_get_jobs(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    theirs = {}
    for line in block_lines(gearadmin(server, "--show-jobs")):
        handle, retries, ignored, background = line.split("\t")
        theirs[handle] = (int(retries), bool(int(ignored)), bool(int(background)))
    ours = {j["handle"]: (j["retries"], j["ignored"], j["background"]) for j in admin.get_jobs()}
    assert theirs == ours
    handles = {r.job.handle for r in busy_server["jobs"]} | {busy_server["running"].job.handle}
    assert set(ours) == handles
    background = {r.job.handle for r in busy_server["jobs"] if r.background}
    assert {h for h, (_, _, bg) in ours.items() if bg} == background


def test_gearadmin_show_unique_jobs_matches(busy_server: dict[str, Any]) -> None:
    server, admin = busy_server["server"], busy_server["admin"]
    theirs = sorted(block_lines(gearadmin(server, "--show-unique-jobs")))
    ours = sorted(u["unique"] for u in admin.get_unique_jobs())
    assert theirs == ours
    assert {"u-a", "u-b", "u-c"} <= set(ours)


def test_gearadmin_sees_functions_our_admin_creates_and_drops(
    runtime: types.ModuleType, gearmand: Gearmand
) -> None:
    task = unique_name("made")
    admin = runtime.GearmanAdminClient([gearmand.address])
    admin.create_function(task)
    assert f"{task}\t0\t0\t0" in block_lines(gearadmin(gearmand, "--status"))
    admin.drop_function(task)
    assert all(not line.startswith(task) for line in block_lines(gearadmin(gearmand, "--status")))
    assert gearadmin(gearmand, "--create-function", task) == "OK\n"
    assert {"task": task, "queued": 0, "running": 0, "workers": 0} in admin.get_status()
