"""A worker's server connection cut at each point of a job exchange, for every runtime.

The worker reaches gearmand through a `devtools.faultproxy.FaultProxy` (the
``fault_proxy`` fixture) that cuts its first connection, with a FIN or a
RST, at one point of the exchange

    CAN_DO, GRAB_JOB_UNIQ -> NO_JOB, PRE_SLEEP   (registered, asleep)
    NOOP -> GRAB_JOB_UNIQ -> JOB_ASSIGN_UNIQ     (a job arrives)
    WORK_DATA, WORK_STATUS, WORK_COMPLETE        (the task's updates and result)

at a packet boundary or inside a packet (JOB_ASSIGN_UNIQ inside its 12-byte
header, its handle and its payload). A foreground client submits on
gearmand's own address, so only the worker's link breaks, and waits
``POLL_TIMEOUT``. Expectations, whatever the point:

- the worker reconnects and registers again by itself (at once when gearmand
  had answered on the link, after its back-off when the link died before
  gearmand said anything); nothing escapes ``work()``, nothing is logged as
  a protocol error or at ERROR (a packet cut short by the end of the stream
  is the end of the link, not a mis-parse);
- the client gets the right result within its ``POLL_TIMEOUT``, every time;
- the task runs once when the cut came before the worker had a whole
  JOB_ASSIGN_UNIQ (gearmand keeps or re-queues the job, which runs on the
  new link); twice when it came after the worker had the job and before
  gearmand had the whole WORK_COMPLETE (the worker runs the job it holds,
  its replies go nowhere, and gearmand re-queues the job, same handle, for
  the new link); once when gearmand had the whole WORK_COMPLETE;
- a reply is never sent on the new link for a job assigned on the old one:
  the new link carries exactly one WORK_DATA, WORK_STATUS and WORK_COMPLETE
  per JOB_ASSIGN_UNIQ it carried, and gearmand answers nothing on it with an
  ERROR. `test_a_job_that_outlives_its_link_is_not_answered_on_the_next_one`
  forces the case where that matters most: the old run still going when the
  new link holds the same job (same handle) again.

FIN and RST both run where the worker is reading a packet or writing its
replies when the link ends (the two reach it by different paths: the end of
the stream, or a read or write error); the other points run with a FIN.
"""

from __future__ import annotations

import logging
import types
from typing import Any, NamedTuple

import pytest
from _binding_helpers import admin_status, serving, unique_name, wait_for_workers

from devtools.faultproxy import TO_CLIENT, TO_SERVER, Connection, FaultProxyFactory, Trigger
from gearman import JOB_COMPLETE, GearmanJob, GearmanWorker
from gearman.testing import Gearmand

#: The client's budget for the job; a back-off of the worker (0.5 s) included,
#: every case completes well within it.
POLL_TIMEOUT = 10.0

#: The job's data: long enough that an offset of 500 is inside the payload of
#: JOB_ASSIGN_UNIQ (after the handle, function and unique) and WORK_COMPLETE.
DATA = bytes(range(32, 127)) * 11
INSIDE_PAYLOAD = 500

#: the packets a job's replies take on the worker's link.
REPLIES = ("WORK_DATA", "WORK_STATUS", "WORK_COMPLETE")


class Point(NamedTuple):
    """Where the worker's first connection is cut, and what the job had reached."""

    direction: str
    at: Trigger
    #: "registering" (cut before the worker slept: no job yet), "queued" (no
    #: whole JOB_ASSIGN_UNIQ reached the worker), "running" (the worker had
    #: the job, gearmand no whole WORK_COMPLETE) or "completed".
    reached: str
    #: run with a RST too.
    reset_too: bool = False
    #: WORK_DATA the client gets: 2 when gearmand had the first run's whole.
    updates: int = 1


POINTS = {
    "before CAN_DO": Point(TO_SERVER, Trigger.before("CAN_DO"), "registering"),
    "inside CAN_DO": Point(TO_SERVER, Trigger.before("CAN_DO", into=14), "registering"),
    "after CAN_DO": Point(TO_SERVER, Trigger.after("CAN_DO"), "registering"),
    "before NOOP": Point(TO_CLIENT, Trigger.before("NOOP"), "queued", reset_too=True),
    "after NOOP": Point(TO_CLIENT, Trigger.after("NOOP"), "queued"),
    # The second grab: the one gearmand answers with the job.
    "inside GRAB_JOB_UNIQ": Point(TO_SERVER, Trigger.before("GRAB_JOB_UNIQ", 2, into=6), "queued"),
    "after GRAB_JOB_UNIQ": Point(TO_SERVER, Trigger.after("GRAB_JOB_UNIQ", 2), "queued"),
    "before JOB_ASSIGN_UNIQ": Point(TO_CLIENT, Trigger.before("JOB_ASSIGN_UNIQ"), "queued"),
    "JOB_ASSIGN_UNIQ magic": Point(TO_CLIENT, Trigger.before("JOB_ASSIGN_UNIQ", into=4), "queued"),
    "JOB_ASSIGN_UNIQ size field": Point(
        TO_CLIENT, Trigger.before("JOB_ASSIGN_UNIQ", into=10), "queued", reset_too=True
    ),
    "JOB_ASSIGN_UNIQ handle": Point(
        TO_CLIENT, Trigger.before("JOB_ASSIGN_UNIQ", into=14), "queued"
    ),
    "JOB_ASSIGN_UNIQ payload": Point(
        TO_CLIENT,
        Trigger.before("JOB_ASSIGN_UNIQ", into=INSIDE_PAYLOAD),
        "queued",
        reset_too=True,
    ),
    "after JOB_ASSIGN_UNIQ": Point(
        TO_CLIENT, Trigger.after("JOB_ASSIGN_UNIQ"), "running", reset_too=True
    ),
    "before WORK_DATA": Point(TO_SERVER, Trigger.before("WORK_DATA"), "running", reset_too=True),
    "inside WORK_DATA": Point(TO_SERVER, Trigger.before("WORK_DATA", into=14), "running"),
    "after WORK_DATA": Point(TO_SERVER, Trigger.after("WORK_DATA"), "running", updates=2),
    "after WORK_STATUS": Point(
        TO_SERVER, Trigger.after("WORK_STATUS"), "running", reset_too=True, updates=2
    ),
    "before WORK_COMPLETE": Point(TO_SERVER, Trigger.before("WORK_COMPLETE"), "running", updates=2),
    "inside WORK_COMPLETE": Point(
        TO_SERVER,
        Trigger.before("WORK_COMPLETE", into=INSIDE_PAYLOAD),
        "running",
        reset_too=True,
        updates=2,
    ),
    "after WORK_COMPLETE": Point(
        TO_SERVER, Trigger.after("WORK_COMPLETE"), "completed", reset_too=True
    ),
}

#: (point, reset): every point with a FIN, those that read or write at the cut with a RST too.
CASES = [
    (where, reset)
    for where, point in POINTS.items()
    for reset in (False, True)
    if not reset or point.reset_too
]

#: runs of the task per outcome (module docstring).
RUNS = {"registering": 1, "queued": 1, "running": 2, "completed": 1}


def assert_answers_only_its_own_jobs(link: Connection) -> None:
    """*link* (ended) carried one of each reply per job assigned on it, and no ERROR."""
    assigned = link.to_client.names.count("JOB_ASSIGN_UNIQ")
    sent = link.to_server.names
    assert [sent.count(name) for name in REPLIES] == [assigned] * len(REPLIES), sent
    assert "ERROR" not in link.to_client.names, link.to_client.names


def assert_nothing_misparsed(caplog: pytest.LogCaptureFixture) -> None:
    """No record at ERROR or above, and none about a protocol error."""
    bad = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR or "protocol" in record.getMessage().lower()
    ]
    assert not bad, [record.getMessage() for record in bad]


@pytest.mark.parametrize(
    ("where", "reset"), CASES, ids=[f"{w}-{'rst' if r else 'fin'}" for w, r in CASES]
)
def test_a_worker_cut_at_any_point_recovers_and_the_job_completes(
    runtime: types.ModuleType,
    gearmand: Gearmand,
    fault_proxy: FaultProxyFactory,
    caplog: pytest.LogCaptureFixture,
    where: str,
    reset: bool,
) -> None:
    point = POINTS[where]
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    first = proxy.connection(0)
    first.flow(point.direction).cut(point.at, reset=reset)  # armed ahead of the connect
    task = unique_name("wcut")
    runs: list[str | None] = []

    def counted(worker: GearmanWorker, job: GearmanJob) -> Any:
        runs.append(job.handle)
        worker.send_job_data(job, b"part")
        worker.send_job_status(job, 1, 2)
        return job.data[::-1]

    client = runtime.GearmanClient([gearmand.address])
    with serving(runtime, [proxy.address], {task: counted}):
        if point.reached == "registering":
            first.wait_closed()
        else:
            first.to_server.wait_for_packet("PRE_SLEEP")  # registered, found nothing, asleep
        request = client.submit_job(task, DATA, unique=task, poll_timeout=POLL_TIMEOUT)
        assert (request.state, request.result) == (JOB_COMPLETE, DATA[::-1])
        assert (request.timed_out, request.lost) == (False, False)
        assert list(request.data_updates) == [b"part"] * point.updates

        second = proxy.wait_for_connection(1)
        second.to_server.wait_for_packet("PRE_SLEEP")  # registered again, by itself
        wait_for_workers(runtime, gearmand.address, task)  # gearmand forgot the old link
        if point.reached == "completed":  # the job ran before the cut: serve one more
            again = client.submit_job(task, b"xyz", poll_timeout=POLL_TIMEOUT)
            assert (again.state, again.result) == (JOB_COMPLETE, b"zyx")
            runs.remove(again.job.handle)

    # The cut happened where it was armed, once, and the worker came back once.
    assert first.close_reason == ("reset" if reset else "cut")
    assert [fired.action for fired in first.flow(point.direction).fired] == ["cut"]
    assert len(proxy.connections) == 2
    second.wait_closed()  # the worker left work(): what passed on it is all in

    assert len(runs) == RUNS[point.reached], runs
    assert len(set(runs)) == 1, "a job re-queued by gearmand keeps its handle"
    # The new link carried one job: the cut one (run again, or run there
    # first), or, when it had completed, the extra one.
    assert second.to_client.names.count("JOB_ASSIGN_UNIQ") == 1
    assert_answers_only_its_own_jobs(second)
    line = admin_status(runtime, gearmand.address, task)
    assert line is not None
    assert (line["queued"], line["running"]) == (0, 0), line
    assert_nothing_misparsed(caplog)


def runs_jobs_beside_its_links(runtime: types.ModuleType) -> bool:
    """Whether the runtime's worker keeps its links going while a task runs
    (gevent's greenlets, the async runners); the blocking worker runs the
    task in its loop's thread, so it reconnects only once the task is over."""
    factory = getattr(runtime.GearmanWorker, "runtime_factory", None)
    return factory is None or factory.job_slots != 1


def test_a_job_that_outlives_its_link_is_not_answered_on_the_next_one(
    runtime: types.ModuleType,
    gearmand: Gearmand,
    fault_proxy: FaultProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Expectation: the link is cut after the task's WORK_DATA, and the task
    goes on until the worker's new link has been assigned the same job (same
    handle) again; the old run's WORK_STATUS and WORK_COMPLETE are dropped
    (logged), not sent on the new link, where gearmand would take them for
    the new run's. The new run answers, and the client gets its result."""
    if not runs_jobs_beside_its_links(runtime):
        pytest.skip("the blocking worker reconnects only after the task returns")
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    first, second = proxy.connection(0), proxy.connection(1)
    first.to_server.cut(Trigger.after("WORK_DATA"))
    task = unique_name("outlived")
    runs: list[str | None] = []

    def outliving(worker: GearmanWorker, job: GearmanJob) -> Any:
        runs.append(job.handle)
        worker.send_job_data(job, b"part")
        if len(runs) == 1:  # the link is cut: wait until the job is back on the next one
            second.to_client.wait_for_packet("JOB_ASSIGN_UNIQ")
        worker.send_job_status(job, 1, 2)
        return job.data[::-1]

    client = runtime.GearmanClient([gearmand.address])
    with serving(runtime, [proxy.address], {task: outliving}):
        first.to_server.wait_for_packet("PRE_SLEEP")
        request = client.submit_job(task, DATA, unique=task, poll_timeout=POLL_TIMEOUT)
        assert (request.state, request.result) == (JOB_COMPLETE, DATA[::-1])
    second.wait_closed()

    assert first.close_reason == "cut"
    assert len(runs) == 2, runs
    assert len(set(runs)) == 1, runs
    assert second.to_client.names.count("JOB_ASSIGN_UNIQ") == 1
    assert_answers_only_its_own_jobs(second)
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert any("WorkStatus" in message for message in dropped), dropped
    assert any("outcome of job" in message for message in dropped), dropped
    assert_nothing_misparsed(caplog)
