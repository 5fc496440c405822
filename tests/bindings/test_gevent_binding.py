"""What the gevent binding adds to the shared scenarios: greenlets, gevent.Timeout, a job pool.

The shared binding suite runs for gevent through the ``runtime`` fixture;
these tests are about what only greenlets have: hundreds of them on one
client, ``gevent.Timeout`` and ``kill()`` cutting a wait short, a worker
running several jobs at once and stopping gracefully.  They run in the
test's own thread, without monkey-patching (the binding uses gevent's
sockets itself), against the session's real gearmand; every wait is
bounded and every pause is on a gevent event, never a sleep.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
from _binding_helpers import unique_name

import gearman
import gearman.gevent as gg
from devtools.peers import StalledServer
from gearman.testing import Gearmand

README = Path(__file__).resolve().parents[2] / "README.md"

#: the longest any step of these tests may take before it counts as hung.
BOUND = 10.0


@pytest.fixture
def address(gearmand: Gearmand) -> str:
    return gearmand.address


def wait_for(condition: Callable[[], bool], message: str) -> None:
    """Poll *condition* cooperatively until it holds, at most BOUND seconds."""
    with gevent.Timeout(BOUND, AssertionError(f"{message}: not within {BOUND} s")):
        while not condition():
            gevent.sleep(0.01)


def status_of(address: str, task: str) -> dict[str, Any] | None:
    """gearmand's ``status`` line for *task*."""
    for line in gg.GearmanAdminClient([address]).get_status():
        if line["task"] == task:
            return line
    return None


class Serving:
    """A gevent worker's ``work()`` in a greenlet; leaving stops it and checks it ended."""

    def __init__(self, worker: gg.GearmanWorker) -> None:
        self.worker = worker
        self.greenlet = gevent.spawn(worker.work, 1.0)

    def stop(self) -> None:
        self.worker.stop()
        self.greenlet.join(BOUND)
        assert self.greenlet.dead, "work() did not end after stop()"
        if self.greenlet.exception is not None:
            raise self.greenlet.exception


@pytest.fixture
def serve() -> Iterator[Callable[[gg.GearmanWorker], Serving]]:
    started: list[Serving] = []

    def start(worker: gg.GearmanWorker) -> Serving:
        started.append(Serving(worker))
        return started[-1]

    yield start
    for serving in started:
        serving.stop()


def test_hundreds_of_greenlets_share_one_connection_and_each_gets_its_own_result(
    address: str, serve: Callable[[gg.GearmanWorker], Serving]
) -> None:
    task, client_id = unique_name("many"), unique_name("shared-client")

    def echo_later(worker: gg.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        gevent.sleep(0)  # results come back out of order across the 8 slots
        return b"result of " + job.data

    worker = gg.GearmanWorker([address], max_jobs=8)
    worker.register_task(task, echo_later)
    serve(worker)
    client = gg.GearmanClient([address], client_id=client_id)
    greenlets = [
        gevent.spawn(client.submit_job, task, b"%d" % index, poll_timeout=BOUND)
        for index in range(300)
    ]
    gevent.joinall(greenlets, timeout=2 * BOUND, raise_error=True)
    listed = gg.GearmanAdminClient([address]).get_workers()
    links = [w for w in listed if w["client_id"] == client_id]
    assert len(links) == 1, "one connection per server, whatever the number of greenlets"
    assert [g.value.result for g in greenlets] == [b"result of %d" % i for i in range(300)]


def test_a_worker_runs_max_jobs_at_once_and_a_blocked_job_stalls_no_other(
    address: str, serve: Callable[[gg.GearmanWorker], Serving]
) -> None:
    held, quick = unique_name("held"), unique_name("quick")
    release = gevent.event.Event()
    running: list[bytes] = []

    def wait_for_release(worker: gg.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        running.append(job.data)
        worker.send_job_data(job, b"started")  # an in-flight update from inside the job
        release.wait(BOUND)
        return job.data

    worker = gg.GearmanWorker([address], max_jobs=3)
    worker.register_task(held, wait_for_release)
    worker.register_task(quick, lambda w, job: job.data[::-1])
    serve(worker)
    client = gg.GearmanClient([address])
    blocked = [
        client._create_request_from_dictionary({"task": held, "data": b"%d" % i})
        for i in range(4)
    ]
    client.submit_multiple_requests(blocked[:2], wait_until_complete=False)
    wait_for(lambda: len(running) == 2, "two held jobs running")
    # The third slot is free: a quick job runs beside the two blocked ones ...
    fast = client.submit_job(quick, b"abc", poll_timeout=BOUND)
    assert (fast.state, fast.result) == (gearman.JOB_COMPLETE, b"cba")
    client.submit_multiple_requests(blocked[2:], wait_until_complete=False)
    wait_for(lambda: len(running) == 3, "the third slot taken by a held job")
    # ... and with all three slots taken the fourth job stays queued at the server.
    assert status_of(address, held) == {"task": held, "queued": 4, "running": 3, "workers": 1}
    wait_for(
        lambda: sum(list(r.data_updates) == [b"started"] for r in blocked) == 3,
        "the running jobs' in-flight updates",
    )
    release.set()
    client.wait_until_jobs_completed(blocked, poll_timeout=BOUND)
    assert [r.result for r in blocked] == [b"%d" % i for i in range(4)]
    assert [list(r.data_updates) for r in blocked] == [[b"started"]] * 4


def test_a_gevent_timeout_or_a_kill_ends_one_wait_and_leaves_the_client_usable(
    address: str, serve: Callable[[gg.GearmanWorker], Serving]
) -> None:
    served, unserved = unique_name("served"), unique_name("unserved")
    worker = gg.GearmanWorker([address])
    worker.register_task(served, lambda w, job: job.data.upper())
    serve(worker)
    client = gg.GearmanClient([address])
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.2):
        client.submit_job(unserved, b"nobody")
    doomed = gevent.spawn(client.submit_job, unserved, b"nobody either")
    wait_for(lambda: status_of(address, unserved) == {
        "task": unserved, "queued": 2, "running": 0, "workers": 0
    }, "both submissions queued")
    doomed.kill(block=True, timeout=BOUND)
    assert doomed.dead
    again = client.submit_job(served, b"xyz", poll_timeout=BOUND)
    assert (again.state, again.result) == (gearman.JOB_COMPLETE, b"XYZ")
    timed_out = client.submit_job(unserved, b"poll", poll_timeout=0.2)
    assert timed_out.timed_out
    assert timed_out.state == gearman.JOB_CREATED


def test_a_timed_out_wait_gives_up_a_link_whose_write_stalled() -> None:
    big = b"x" * (32 << 20)
    with StalledServer() as peer:
        client = gg.GearmanClient([peer.address])
        request = gearman.GearmanJobRequest(gearman.GearmanJob(None, None, "big", "u", big))
        client.send_job_request(request)
        with pytest.raises(gevent.Timeout), gevent.Timeout(1.0):
            client.wait_until_jobs_accepted([request])
        assert request.state == gearman.JOB_UNKNOWN, "the core saw the link fail"
        with pytest.raises(gearman.errors.ExceededConnectionAttempts):
            client.wait_until_jobs_accepted([request], poll_timeout=BOUND)


def test_stop_finishes_the_jobs_in_hand_and_grabs_no_more(address: str) -> None:
    task = unique_name("graceful")
    started = gevent.event.Event()
    release = gevent.event.Event()

    def held(worker: gg.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        started.set()
        release.wait(BOUND)
        return job.data[::-1]

    worker = gg.GearmanWorker([address], max_jobs=2)
    worker.register_task(task, held)
    serving = gevent.spawn(worker.work, 1.0)
    client = gg.GearmanClient([address])
    first = client._create_request_from_dictionary({"task": task, "data": b"ab"})
    client.submit_multiple_requests([first], wait_until_complete=False)
    assert started.wait(BOUND)
    worker.stop()
    serving.join(0.3)
    assert not serving.dead, "work() must wait for the job in hand"
    late = client.submit_job(task, b"late", poll_timeout=0.5)
    assert late.timed_out, "a stopping worker grabs no new job"
    assert late.state == gearman.JOB_CREATED
    release.set()
    client.wait_until_jobs_completed([first], poll_timeout=BOUND)
    serving.join(BOUND)
    assert serving.dead
    assert serving.exception is None
    assert (first.state, first.result) == (gearman.JOB_COMPLETE, b"ba")


def test_a_killed_job_is_reported_failed(address: str) -> None:
    task = unique_name("killed")
    job_greenlets: list[gevent.Greenlet[..., Any]] = []

    def forever(worker: gg.GearmanWorker, job: gearman.GearmanJob) -> bytes:
        job_greenlets.append(gevent.getcurrent())
        gevent.event.Event().wait()
        raise AssertionError("unreachable")

    worker = gg.GearmanWorker([address])
    worker.register_task(task, forever)
    serving = gevent.spawn(worker.work, 1.0)
    client = gg.GearmanClient([address])
    request = client._create_request_from_dictionary({"task": task, "data": b"x"})
    client.submit_multiple_requests([request], wait_until_complete=False)
    wait_for(lambda: bool(job_greenlets), "the job running")
    job_greenlets[0].kill(block=True, timeout=BOUND)
    client.wait_until_jobs_completed([request], poll_timeout=BOUND)
    assert not request.timed_out
    assert request.state == gearman.JOB_FAILED
    worker.stop()
    serving.join(BOUND)
    assert serving.dead


def test_the_readme_gevent_example_runs(
    address: str,
    serve: Callable[[gg.GearmanWorker], Serving],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker = gg.GearmanWorker([address])
    worker.register_task("reverse", lambda w, job: job.data[::-1])
    serve(worker)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "gearman.gevent" in block]
    exec(example.replace("localhost:4730", address), {})
    assert capsys.readouterr().out == "[b'ba', b'dc']\n"
