"""What the asyncio binding adds to the shared scenarios: tasks, cancellation, N jobs at once.

The shared binding suite runs for asyncio through the ``runtime`` fixture;
these tests are about asyncio's own idiom: ``asyncio.gather`` of hundreds
of tasks on one client, ``asyncio.wait_for`` and ``Task.cancel`` ending
waits, a worker running several jobs at once and stopping gracefully or by
cancellation, any stream pair as a link.  Each test is one
``asyncio.run`` against the session's real gearmand (or a socket-pair
peer), and every wait in it is bounded.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from _binding_helpers import unique_name

import gearman
import gearman.asyncio as ga
import gearman_proto as proto
from devtools.peers import StalledServer
from gearman.testing import Gearmand

README = Path(__file__).resolve().parents[2] / "README.md"

#: the longest any step of these tests may take before it counts as hung.
BOUND = 10.0


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run *test* in a fresh ``asyncio.run``, failing it if it takes more than a minute."""
    asyncio.run(asyncio.wait_for(test(), 60))


async def wait_for(condition: Callable[[], Awaitable[bool]], message: str) -> None:
    """Poll an async *condition* (an admin query) until it holds, at most BOUND seconds."""

    async def until() -> None:
        while not await condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(until(), BOUND)
    except asyncio.TimeoutError:
        raise AssertionError(f"{message}: not within {BOUND} s") from None


async def status_of(address: str, task: str) -> dict[str, Any] | None:
    """gearmand's ``status`` line for *task*."""
    async with ga.GearmanAdminClient([address]) as admin:
        for line in await admin.get_status():
            if line["task"] == task:
                return line
    return None


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def test_gathered_tasks_share_one_connection_and_each_gets_its_own_result(address: str) -> None:
    task, client_id = unique_name("many"), unique_name("shared-client")

    async def echo_later(worker: ga.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        await asyncio.sleep(0)  # results come back out of order across the 8 slots
        return b"result of " + job.data

    async def test() -> None:
        worker = ga.GearmanWorker([address], max_jobs=8)
        worker.register_task(task, echo_later)
        serving = asyncio.ensure_future(worker.work(1.0))
        async with ga.GearmanClient([address], client_id=client_id) as client:
            requests = await asyncio.gather(
                *(client.submit_job(task, b"%d" % i, poll_timeout=BOUND) for i in range(300))
            )
            async with ga.GearmanAdminClient([address]) as admin:
                links = [w for w in await admin.get_workers() if w["client_id"] == client_id]
        worker.stop()
        await asyncio.wait_for(serving, BOUND)
        assert len(links) == 1, "one connection per server, whatever the number of tasks"
        assert [r.result for r in requests] == [b"result of %d" % i for i in range(300)]

    run(test)


def test_wait_for_and_cancel_end_one_wait_and_leave_the_client_and_other_tasks_alone(
    address: str,
) -> None:
    served, unserved = unique_name("served"), unique_name("unserved")

    async def test() -> None:
        release = asyncio.Event()

        async def slow(worker: ga.GearmanWorker, job: gearman.GearmanJob) -> bytes:
            await release.wait()
            return job.data.upper()

        worker = ga.GearmanWorker([address])
        worker.register_task(served, slow)
        serving = asyncio.ensure_future(worker.work(1.0))
        async with ga.GearmanClient([address]) as client:
            patient = asyncio.ensure_future(client.submit_job(served, b"abc", poll_timeout=BOUND))
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.submit_job(unserved, b"nobody"), 0.2)
            doomed = asyncio.ensure_future(client.submit_job(unserved, b"nobody either"))

            async def both_queued() -> bool:
                line = await status_of(address, unserved)
                return line is not None and line["queued"] == 2

            await wait_for(both_queued, "both submissions queued")
            doomed.cancel()
            with pytest.raises(asyncio.CancelledError):
                await doomed
            release.set()
            other = await asyncio.wait_for(patient, BOUND)
            again = await client.submit_job(served, b"xyz", poll_timeout=BOUND)
        worker.stop()
        await asyncio.wait_for(serving, BOUND)
        assert (other.state, other.result) == (gearman.JOB_COMPLETE, b"ABC")
        assert (again.state, again.result) == (gearman.JOB_COMPLETE, b"XYZ")

    run(test)


def test_a_cancelled_wait_gives_up_a_link_whose_write_stalled() -> None:
    big = b"x" * (32 << 20)

    async def test() -> None:
        with StalledServer() as peer:
            async with ga.GearmanClient([peer.address]) as client:
                request = gearman.GearmanJobRequest(gearman.GearmanJob(None, None, "big", "u", big))
                await client.send_job_request(request)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.wait_until_jobs_accepted([request]), 1.0)
                assert request.state == gearman.JOB_UNKNOWN, "the core saw the link fail"
                with pytest.raises(gearman.errors.ExceededConnectionAttempts):
                    await client.wait_until_jobs_accepted([request], poll_timeout=BOUND)

    run(test)


def test_a_worker_runs_max_jobs_at_once_and_grabs_only_with_room(address: str) -> None:
    task = unique_name("slots")

    async def test() -> None:
        release = asyncio.Event()
        running: list[bytes] = []

        async def held(worker: ga.GearmanWorker, job: gearman.GearmanJob) -> bytes:
            running.append(job.data)
            await release.wait()
            return job.data

        worker = ga.GearmanWorker([address], max_jobs=3)
        worker.register_task(task, held)
        serving = asyncio.ensure_future(worker.work(1.0))
        async with ga.GearmanClient([address]) as client:
            requests = [
                client._create_request_from_dictionary({"task": task, "data": b"%d" % i})
                for i in range(5)
            ]
            await client.submit_multiple_requests(requests, wait_until_complete=False)

            async def three_running() -> bool:
                line = await status_of(address, task)
                return line is not None and line["running"] == 3 and len(running) == 3

            await wait_for(three_running, "three jobs running")
            assert await status_of(address, task) == {
                "task": task,
                "queued": 5,
                "running": 3,
                "workers": 1,
            }
            release.set()
            await client.wait_until_jobs_completed(requests, poll_timeout=BOUND)
        worker.stop()
        await asyncio.wait_for(serving, BOUND)
        assert [r.result for r in requests] == [b"%d" % i for i in range(5)]

    run(test)


def test_stop_finishes_the_jobs_in_hand_and_grabs_no_more(address: str) -> None:
    task = unique_name("graceful")

    async def test() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def held(worker: ga.GearmanWorker, job: gearman.GearmanJob) -> bytes:
            started.set()
            await release.wait()
            return job.data[::-1]

        worker = ga.GearmanWorker([address], max_jobs=2)
        worker.register_task(task, held)
        serving = asyncio.ensure_future(worker.work(1.0))
        async with ga.GearmanClient([address]) as client:
            first = client._create_request_from_dictionary({"task": task, "data": b"ab"})
            await client.submit_multiple_requests([first], wait_until_complete=False)
            await asyncio.wait_for(started.wait(), BOUND)
            worker.stop()
            done, _ = await asyncio.wait({serving}, timeout=0.3)
            assert not done, "work() must wait for the job in hand"
            late = await client.submit_job(task, b"late", poll_timeout=0.5)
            assert late.timed_out, "a stopping worker grabs no new job"
            assert late.state == gearman.JOB_CREATED
            release.set()
            await client.wait_until_jobs_completed([first], poll_timeout=BOUND)
            await asyncio.wait_for(serving, BOUND)
        assert (first.state, first.result) == (gearman.JOB_COMPLETE, b"ba")

    run(test)


def test_a_worker_cancelled_mid_job_reports_the_job_failed(address: str) -> None:
    task = unique_name("cancelled")

    async def test() -> None:
        started = asyncio.Event()

        async def forever(worker: ga.GearmanWorker, job: gearman.GearmanJob) -> bytes:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        worker = ga.GearmanWorker([address])
        worker.register_task(task, forever)
        async with ga.GearmanClient([address]) as client:
            serving = asyncio.ensure_future(worker.work(1.0))
            request = client._create_request_from_dictionary({"task": task, "data": b"x"})
            await client.submit_multiple_requests([request], wait_until_complete=False)
            await asyncio.wait_for(started.wait(), BOUND)
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
            await client.wait_until_jobs_completed([request], poll_timeout=BOUND)
        assert not request.timed_out
        assert request.state == gearman.JOB_FAILED

    run(test)


def test_a_link_can_be_any_stream_pair() -> None:
    """A peer on the far end of a socket pair answers a submission byte for byte."""
    ours, theirs = socket.socketpair()
    server = proto.ServerAddress("pair", 4730)
    opened: list[proto.ServerAddress] = []

    async def open_stream(
        address: proto.ServerAddress,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        opened.append(address)
        return await asyncio.open_connection(sock=ours)

    async def peer() -> None:
        reader, writer = await asyncio.open_connection(sock=theirs)
        header = await reader.readexactly(12)
        assert header[:8] == b"\0REQ\0\0\0\x07", "SUBMIT_JOB"
        body = await reader.readexactly(int.from_bytes(header[8:12], "big"))
        assert body.split(b"\0") == [b"echo", b"u1", b"ping"]
        writer.write(proto.encode_packet(proto.RES, proto.PacketType.JOB_CREATED, [b"H:p:1"]))
        writer.write(
            proto.encode_packet(proto.RES, proto.PacketType.WORK_COMPLETE, [b"H:p:1", b"pong"])
        )
        await writer.drain()

    async def test() -> None:
        answering = asyncio.ensure_future(peer())
        async with ga.GearmanClient(["pair:4730"], open_stream=open_stream) as client:
            request = await client.submit_job("echo", b"ping", unique="u1", poll_timeout=BOUND)
        await asyncio.wait_for(answering, BOUND)
        assert opened == [server]
        assert (request.state, request.job.handle, request.result) == (
            gearman.JOB_COMPLETE,
            "H:p:1",
            b"pong",
        )

    run(test)


def test_the_readme_asyncio_example_runs(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "gearman.asyncio" in block]
    exec(example.replace("localhost:4730", address), {})
    assert capsys.readouterr().out == "COMPLETE b'!dlroW olleH'\n"
