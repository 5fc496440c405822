"""What the trio binding adds to the shared scenarios: tasks, cancel scopes, N jobs at once.

The shared binding suite runs for trio through the ``runtime`` fixture;
these tests are about what only an async runtime has: hundreds of tasks on
one client, cancel scopes ending waits, a worker running several jobs at
once and stopping gracefully or by cancellation, any ``trio.abc.Stream``
as a link.  Each test is one ``trio.run`` against the session's real
gearmand (or an in-memory peer), and every wait in it is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _binding_helpers import unique_name

import gearman
import gearman.trio as gt
import gearman_proto as proto
from devtools.peers import StalledServer
from gearman.testing import Gearmand

README = Path(__file__).resolve().parents[2] / "README.md"

#: the longest any step of these tests may take before it counts as hung.
BOUND = 10.0


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run *test* in a fresh ``trio.run``, failing it if it takes more than a minute."""

    async def bounded() -> None:
        with trio.fail_after(60):
            await test()

    trio.run(bounded)


async def wait_for(condition: Callable[[], Awaitable[bool]], message: str) -> None:
    """Poll an async *condition* (an admin query) until it holds, at most BOUND seconds."""
    with trio.fail_after(BOUND):
        while not await condition():
            await trio.sleep(0.01)


async def status_of(address: str, task: str) -> dict[str, Any] | None:
    """gearmand's ``status`` line for *task*."""
    async with gt.GearmanAdminClient([address]) as admin:
        for line in await admin.get_status():
            if line["task"] == task:
                return line
    return None


def reverse(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
    """A plain (sync) task function."""
    return job.data[::-1]


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


# ----------------------------------------------------------------- sharing


def test_hundreds_of_tasks_share_one_connection_and_each_gets_its_own_result(
    address: str,
) -> None:
    task, client_id = unique_name("many"), unique_name("shared-client")

    async def echo_later(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        await trio.sleep(0)  # results come back out of order across the 8 slots
        return b"result of " + job.data

    async def test() -> None:
        worker = gt.GearmanWorker([address], max_jobs=8)
        worker.register_task(task, echo_later)
        results: dict[int, gearman.GearmanJobRequest] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.work, 1.0)
            async with gt.GearmanClient([address], client_id=client_id) as client:

                async def submit(index: int) -> None:
                    results[index] = await client.submit_job(
                        task, b"%d" % index, poll_timeout=BOUND
                    )

                async with trio.open_nursery() as submitters:
                    for index in range(300):
                        submitters.start_soon(submit, index)
                async with gt.GearmanAdminClient([address]) as admin:
                    links = [w for w in await admin.get_workers() if w["client_id"] == client_id]
            worker.stop()
        assert len(links) == 1, "one connection per server, whatever the number of tasks"
        assert {i: r.result for i, r in results.items()} == {
            i: b"result of %d" % i for i in range(300)
        }
        assert all(r.state == gearman.JOB_COMPLETE for r in results.values())

    run(test)


# ------------------------------------------------------------ cancellation


def test_a_cancel_scope_ends_one_wait_and_leaves_the_client_and_other_tasks_alone(
    address: str,
) -> None:
    served, unserved = unique_name("served"), unique_name("unserved")
    release = trio.Event()

    async def slow(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        await release.wait()
        return job.data.upper()

    async def test() -> None:
        worker = gt.GearmanWorker([address])
        worker.register_task(served, slow)
        other: list[gearman.GearmanJobRequest] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.work, 1.0)
            async with gt.GearmanClient([address]) as client:

                async def patient() -> None:
                    other.append(await client.submit_job(served, b"abc", poll_timeout=BOUND))

                nursery.start_soon(patient)
                with trio.move_on_after(0.2) as scope:
                    await client.submit_job(unserved, b"nobody", poll_timeout=BOUND)
                assert scope.cancelled_caught, "the cancel scope ended the wait"
                with pytest.raises(trio.TooSlowError):
                    with trio.fail_after(0.2):
                        await client.submit_job(unserved, b"nobody either")
                release.set()
                with trio.fail_after(BOUND):
                    while not other:
                        await trio.sleep(0.01)
                again = await client.submit_job(served, b"xyz", poll_timeout=BOUND)
            worker.stop()
        assert (other[0].state, other[0].result) == (gearman.JOB_COMPLETE, b"ABC")
        assert (again.state, again.result) == (gearman.JOB_COMPLETE, b"XYZ")

    run(test)


def test_poll_timeout_still_sets_timed_out(address: str) -> None:
    async def test() -> None:
        async with gt.GearmanClient([address]) as client:
            request = await client.submit_job(unique_name("nobody"), b"x", poll_timeout=0.2)
            assert request.timed_out
            assert request.state == gearman.JOB_CREATED
        assert request.lost, "closing the client cuts the job off"

    run(test)


def test_a_cancelled_wait_gives_up_a_link_whose_write_stalled() -> None:
    big = b"x" * (32 << 20)

    async def test() -> None:
        with StalledServer() as peer:
            async with gt.GearmanClient([peer.address]) as client:
                request = gearman.GearmanJobRequest(gearman.GearmanJob(None, None, "big", "u", big))
                await client.send_job_request(request)
                with trio.move_on_after(1.0) as scope:
                    await client.wait_until_jobs_accepted([request])
                assert scope.cancelled_caught
                assert request.state == gearman.JOB_UNKNOWN, "the core saw the link fail"
                with pytest.raises(gearman.errors.ExceededConnectionAttempts):
                    await client.wait_until_jobs_accepted([request], poll_timeout=BOUND)

    run(test)


# --------------------------------------------------------------- the worker


def test_a_worker_runs_max_jobs_at_once_and_grabs_only_with_room(address: str) -> None:
    task = unique_name("slots")
    release = trio.Event()
    running = 0
    peak = 0

    async def held(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return job.data

    async def test() -> None:
        worker = gt.GearmanWorker([address], max_jobs=3)
        worker.register_task(task, held)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.work, 1.0)
            async with gt.GearmanClient([address]) as client:
                requests = [
                    client._create_request_from_dictionary({"task": task, "data": b"%d" % i})
                    for i in range(5)
                ]
                await client.submit_multiple_requests(requests, wait_until_complete=False)

                async def three_running() -> bool:
                    line = await status_of(address, task)
                    return line is not None and line["running"] == 3 and running == 3

                await wait_for(three_running, "three jobs running")
                line = await status_of(address, task)
                assert line == {"task": task, "queued": 5, "running": 3, "workers": 1}
                release.set()
                await client.wait_until_jobs_completed(requests, poll_timeout=BOUND)
            worker.stop()
        assert peak == 3
        assert [r.result for r in requests] == [b"%d" % i for i in range(5)]

    run(test)


def test_plain_and_async_task_functions_and_hooks(address: str) -> None:
    plain, coroutine = unique_name("plain"), unique_name("async")
    polls: list[bool] = []

    class Hooked(gt.GearmanWorker):
        async def after_poll(self, any_activity: bool) -> bool:
            polls.append(any_activity)
            return True

    async def async_task(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        await worker.send_job_data(job, b"partial")
        return job.data * 2

    async def test() -> None:
        worker = Hooked([address])
        worker.register_task(plain, reverse)
        worker.register_task(coroutine, async_task)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.work, 0.05)
            async with gt.GearmanClient([address]) as client:
                first = await client.submit_job(plain, b"abc", poll_timeout=BOUND)
                second = await client.submit_job(coroutine, b"ab", poll_timeout=BOUND)
            with trio.fail_after(BOUND):  # the next poll reports that jobs ran
                while True not in polls:
                    await trio.sleep(0.01)
            worker.stop()
        assert first.result == b"cba"
        assert (second.result, list(second.data_updates)) == (b"abab", [b"partial"])
        assert polls[0] is False

    run(test)


def test_stop_finishes_the_jobs_in_hand_and_grabs_no_more(address: str) -> None:
    task = unique_name("graceful")
    started = trio.Event()
    release = trio.Event()
    left = trio.Event()

    async def held(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        started.set()
        await release.wait()
        return job.data[::-1]

    async def test() -> None:
        worker = gt.GearmanWorker([address], max_jobs=2)
        worker.register_task(task, held)

        async def serve() -> None:
            await worker.work(1.0)
            left.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            async with gt.GearmanClient([address]) as client:
                first = client._create_request_from_dictionary({"task": task, "data": b"ab"})
                await client.submit_multiple_requests([first], wait_until_complete=False)
                with trio.fail_after(BOUND):
                    await started.wait()
                worker.stop()
                with trio.move_on_after(0.3):
                    await left.wait()
                assert not left.is_set(), "work() must wait for the job in hand"
                late = await client.submit_job(task, b"late", poll_timeout=0.5)
                assert late.timed_out, "a stopping worker grabs no new job"
                assert late.state == gearman.JOB_CREATED
                release.set()
                await client.wait_until_jobs_completed([first], poll_timeout=BOUND)
                with trio.fail_after(BOUND):
                    await left.wait()
        assert (first.state, first.result) == (gearman.JOB_COMPLETE, b"ba")

    run(test)


def test_a_worker_cancelled_mid_job_reports_the_job_failed(address: str) -> None:
    task = unique_name("cancelled")
    started = trio.Event()

    async def forever(worker: gt.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        started.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def test() -> None:
        worker = gt.GearmanWorker([address])
        worker.register_task(task, forever)
        async with gt.GearmanClient([address]) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker.work, 1.0)
                request = client._create_request_from_dictionary({"task": task, "data": b"x"})
                await client.submit_multiple_requests([request], wait_until_complete=False)
                with trio.fail_after(BOUND):
                    await started.wait()
                nursery.cancel_scope.cancel()
            await client.wait_until_jobs_completed([request], poll_timeout=BOUND)
        assert not request.timed_out
        assert request.state == gearman.JOB_FAILED

    run(test)


# ------------------------------------------------------------------ streams


def test_a_link_can_be_any_trio_stream() -> None:
    """An in-memory peer answers a submission byte for byte."""
    ours, theirs = trio.testing.memory_stream_pair()
    server = proto.ServerAddress("memory", 4730)
    opened: list[proto.ServerAddress] = []

    async def open_stream(address: proto.ServerAddress) -> trio.abc.Stream:
        opened.append(address)
        return ours

    async def peer() -> None:
        received = b""
        while len(received) < 12 or len(received) < 12 + int.from_bytes(received[8:12], "big"):
            received += await theirs.receive_some()
        assert received[:8] == b"\0REQ\0\0\0\x07", "SUBMIT_JOB"
        assert received[12:].split(b"\0") == [b"echo", b"u1", b"ping"]
        created = proto.encode_packet(proto.RES, proto.PacketType.JOB_CREATED, [b"H:m:1"])
        done = proto.encode_packet(
            proto.RES, proto.PacketType.WORK_COMPLETE, [b"H:m:1", b"pong"]
        )
        await theirs.send_all(created + done)

    async def test() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer)
            async with gt.GearmanClient(["memory:4730"], open_stream=open_stream) as client:
                request = await client.submit_job("echo", b"ping", unique="u1", poll_timeout=BOUND)
        assert opened == [server]
        assert (request.state, request.job.handle, request.result) == (
            gearman.JOB_COMPLETE,
            "H:m:1",
            b"pong",
        )

    run(test)


def test_the_readme_trio_example_runs(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "gearman.trio" in block]
    exec(example.replace("localhost:4730", address), {})
    assert capsys.readouterr().out == "COMPLETE b'!dlroW olleH'\n"
