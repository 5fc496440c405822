"""Code a python-gearman user writes, type-checked against the installed wheel.

``test_packaging.py`` copies this file into a fresh venv that holds the
wheel and runs ``mypy --strict`` on it there.  Each ``reveal_type`` line
ends with the type mypy must reveal (``# -> TYPE``); nothing here is run.
"""

# ruff: noqa: F821 -- reveal_type is mypy's, not a name at run time

from __future__ import annotations

import json

import gearman
import gearman.asyncio
import gearman.errors
import gearman_proto


class JSONDataEncoder(gearman.DataEncoder):
    """python-gearman's documented JSON encoder."""

    @classmethod
    def encode(cls, encodable_object: object) -> bytes:
        return json.dumps(encodable_object).encode()

    @classmethod
    def decode(cls, decodable_string: bytes) -> object:
        decoded: object = json.loads(decodable_string)
        return decoded


class JSONGearmanClient(gearman.GearmanClient):
    data_encoder = JSONDataEncoder


def task_listener_reverse(
    gearman_worker: gearman.GearmanWorker, gearman_job: gearman.GearmanJob
) -> bytes:
    gearman_worker.send_job_status(gearman_job, 1, 2)
    reveal_type(gearman_job.handle)  # -> builtins.str | None
    data: bytes = gearman_job.data
    return data[::-1]


def serve(hosts: list[str]) -> None:
    worker = gearman.GearmanWorker(hosts)
    worker.set_client_id("typed-worker")
    task = worker.register_task("reverse", task_listener_reverse)
    reveal_type(task)  # -> builtins.str | builtins.bytes
    worker.work(poll_timeout=1.0)


def submit(hosts: list[str]) -> str | None:
    client = gearman.GearmanClient(hosts)
    try:
        request = client.submit_job("reverse", b"Hello World!", poll_timeout=5.0)
    except gearman.errors.ServerUnavailable:
        return None
    except gearman.errors.GearmanError as error:
        print(f"failed: {error}")
        return None
    reveal_type(request)  # -> gearman.job.GearmanJobRequest
    reveal_type(request.job)  # -> gearman.job.GearmanJob
    reveal_type(request.job.handle)  # -> builtins.str | None
    reveal_type(request.timed_out)  # -> builtins.bool
    if request.state == gearman.JOB_COMPLETE and not request.timed_out:
        print(request.result)
    elif request.state == "FAILED":
        print(request.exception)
    status = client.get_job_status(request)
    reveal_type(status)  # -> gearman.job.GearmanJobRequest
    reveal_type(status.status.get("numerator"))  # -> builtins.int | None
    by_handle = client.get_status_by_handle(request.job.handle or "H:lap:1")
    reveal_type(by_handle["known"])  # -> builtins.bool
    reveal_type(client.get_status_by_unique("order-1")["client_count"])  # -> builtins.int
    requests = client.submit_multiple_jobs(
        [{"task": "reverse", "data": b"a"}, {"task": "reverse", "data": b"b"}],
        wait_until_complete=False,
    )
    completed = client.wait_until_jobs_completed(requests, poll_timeout=5.0)
    reveal_type(completed)  # -> builtins.list[gearman.job.GearmanJobRequest]
    return request.job.handle


def total_queued(hosts: list[str]) -> int:
    admin = gearman.GearmanAdminClient(hosts)
    reveal_type(admin.ping_server())  # -> builtins.float
    rows = admin.get_status()
    for row in rows:
        reveal_type(row["task"])  # -> builtins.str
    for worker in admin.get_workers():
        reveal_type(worker["tasks"])  # -> builtins.tuple[builtins.str, ...]
    return sum(row["queued"] for row in rows)


async def submit_async(hosts: list[str]) -> bytes:
    async with gearman.asyncio.GearmanClient(hosts) as client:
        request = await client.submit_job("reverse", b"Hello World!")
        reveal_type(request)  # -> gearman.job.GearmanJobRequest
        result: bytes = request.result
        return result


def sans_io() -> list[bytes]:
    connection = gearman_proto.ClientConnection()
    wire = connection.send(gearman_proto.SubmitJob(function=b"reverse", payload=b"Hello World!"))
    reveal_type(wire)  # -> builtins.bytes
    connection.receive_data(b"")
    payloads = []
    for event in connection.events():
        if isinstance(event, gearman_proto.WorkComplete):
            payloads.append(event.payload)
    reveal_type(payloads)  # -> builtins.list[builtins.bytes]
    reveal_type(gearman_proto.__version__)  # -> builtins.str
    return payloads
