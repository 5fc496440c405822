"""Hostile servers: each gives the documented error within the caller's timeout.

Every scenario runs against `devtools.fakeserver.FakeServer`, a scripted
Gearman server in a process of its own, for every runtime.  A client, an
admin client or a worker meets garbage, a header announcing a 4 GiB body,
admin replies without end, a slow drip, a WORK_DATA or NOOP flood, packets
of the wrong kind; the test checks the README's outcome for it:

- garbage, an oversized header, a packet the role never receives, an
  unsolicited JOB_CREATED: the link is given up and the server backed off;
  a request not yet accepted goes to another server, or raises
  ``gearman.errors.ProtocolError`` when none is left; one already accepted
  ends ``lost``;
- admin replies that never end, that are too long or of the wrong kind:
  ``InvalidAdminClientState``;
- a drip: the right answer when it completes in time, else the request
  is ``timed_out`` (the admin client raises ``InvalidAdminClientState``);
- a WORK_DATA or WORK_STATUS flood: the request keeps at most
  ``max_update_bytes`` of it (``dropped_updates`` counts the rest) and
  every wait still ends by its ``poll_timeout``;
- a worker's server that breaks the protocol: the worker drops the link
  and reconnects, and ``work()`` carries on; one that floods NOOPs keeps
  its link and ``work()`` its rhythm.

Nothing but these ``GearmanError`` subclasses may escape (anything else
fails the test).  Memory is measured where a server announces or sends far
more than a client should keep: the peak of the Python heap over the
scenario (tracemalloc), with the resident set's growth beside it (see
`Memory`), printed (run with ``-s`` to see them) and bounded far below
what the server announced or sent.  The only timing asserted is the bound
on a hang: a call returns within its ``poll_timeout`` plus a generous
`SLACK`; the timed waits of a flood run before tracemalloc starts.
"""

from __future__ import annotations

import itertools
import re
import time
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

import pytest

from devtools import fakeserver
from devtools.fakeserver import HANDLE, Behaviour, FakeServer
from gearman.job import UPDATE_OVERHEAD
from gearman_proto import DEFAULT_MAX_PACKET_SIZE, RES, PacketType, encode_packet

#: seconds past its timeout a call may take before the test calls it a hang.
SLACK = 5.0
#: a scenario's own limit: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
#: heap a client may use beyond what a scenario lets it keep (buffers, events).
HEAP_SLACK = 8 * MiB


def packet(packet_type: PacketType, *arguments: bytes) -> bytes:
    """A server packet, as the fake server sends it."""
    return encode_packet(RES, packet_type, arguments)


#: a valid answer to a foreground SUBMIT_JOB.
ANSWER = packet(PacketType.JOB_CREATED, HANDLE) + packet(
    PacketType.WORK_COMPLETE, HANDLE, b"result"
)


# ------------------------------------------------------------------ memory


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


class Memory:
    """What a ``with`` block cost this process at its peak, in bytes.

    - ``heap``: the peak of the Python allocations made inside the block
      (tracemalloc, every thread), whatever the process freed before: the
      figure the tests bound;
    - ``rss``: the peak resident set minus the resident set on entry
      (Linux: VmHWM, reset on entry by writing 5 to /proc/self/clear_refs).
      Only reported: it misses memory the process freed earlier and now
      reuses, and it includes tracemalloc's own table of live allocations.
    """

    heap = 0
    rss = 0

    def __enter__(self) -> Memory:
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        self._resident = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.rss = max(0, _status_kib("VmHWM") * 1024 - self._resident)
        self.heap = max(0, tracemalloc.get_traced_memory()[1] - self._base)
        if self._started:
            tracemalloc.stop()


def report(runtime: types.ModuleType, scenario: str, **figures: Any) -> None:
    """Print a scenario's figures (``pytest -s`` shows them); ``*_bytes`` in MiB."""
    shown = ", ".join(
        f"{key[:-6]}={value / MiB:.1f} MiB" if key.endswith("_bytes") else f"{key}={value}"
        for key, value in figures.items()
    )
    print(f"\n[hostile {runtime.runtime_name}] {scenario}: {shown}")


@pytest.fixture
def timer() -> list[float]:
    """Elapsed seconds of calls the test times (appended by `timed`)."""
    return []


def timed(timer: list[float], function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, its elapsed seconds appended to *timer*."""
    started = time.monotonic()
    try:
        return function(*args, **kwargs)
    finally:
        timer.append(time.monotonic() - started)


#: seconds a flood test waits for its volume at most (a failure bound, not a timing).
FLOOD_DEADLINE = 90.0


def flood(client: Any, request: Any, timer: list[float]) -> None:
    """The timed phase of a client flood test: three waits of 0.5 s on
    *request*, which never completes; each must end by its poll_timeout.

    Run before `Memory` starts: tracemalloc slows the client ten times,
    which would stretch the chunk a runtime parses at its deadline.
    """
    for _ in range(3):
        timed(timer, client.wait_until_jobs_completed, [request], poll_timeout=0.5)
        assert request.timed_out


def flood_until(client: Any, request: Any, received: Callable[[], int], wanted: int) -> None:
    """The measured phase: wait on *request* until ``received() >= wanted``.

    However slow the machine, the client takes in at least that much of the
    flood before the memory it holds is judged.
    """
    deadline = time.monotonic() + FLOOD_DEADLINE
    while received() < wanted:
        assert time.monotonic() < deadline, f"only {received()} updates in {FLOOD_DEADLINE} s"
        client.wait_until_jobs_completed([request], poll_timeout=0.5)


# ------------------------------------------------------------------ client


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0RSE\xff\xfe garbage \x00\x01\x02\x03", "bad magic"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "unexpected text"),
    ],
    ids=["bad-magic", "text"],
)
def test_garbage_is_a_protocol_error(
    runtime: types.ModuleType, timer: list[float], data: bytes, message: str
) -> None:
    with FakeServer(fakeserver.garbage(data)) as server:
        client = runtime.GearmanClient([server.address])
        with pytest.raises(runtime.errors.ProtocolError, match=message):
            timed(timer, client.submit_job, "t", b"x", poll_timeout=5.0)
    assert timer[0] < 5.0 + SLACK


@pytest.mark.parametrize("trickle", [None, 0.01], ids=["then-nothing", "then-trickle"])
def test_a_4gib_header_is_refused_from_the_header_alone(
    runtime: types.ModuleType, timer: list[float], trickle: float | None
) -> None:
    with FakeServer(fakeserver.huge_header(trickle=trickle)) as server:
        client = runtime.GearmanClient([server.address])
        with Memory() as memory, pytest.raises(runtime.errors.ProtocolError, match="4294967295"):
            timed(timer, client.submit_job, "t", b"x", poll_timeout=5.0)
    report(
        runtime,
        "4 GiB header" + (", then a trickle" if trickle else ", then nothing"),
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert timer[0] < 5.0 + SLACK
    assert memory.heap < 64 * MiB


def test_a_drip_that_completes_in_time_gives_the_answer(runtime: types.ModuleType) -> None:
    with FakeServer(fakeserver.drip(ANSWER, 0.002, after="SUBMIT_JOB")) as server:
        client = runtime.GearmanClient([server.address])
        request = client.submit_job("t", b"x", poll_timeout=30.0)
        assert server.stats().sent == len(ANSWER)
    assert request.complete
    assert request.result == b"result"


def test_a_drip_slower_than_poll_timeout_times_out(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    with FakeServer(fakeserver.drip(ANSWER, 0.2, after="SUBMIT_JOB")) as server:
        client = runtime.GearmanClient([server.address])
        request = timed(timer, client.submit_job, "t", b"x", poll_timeout=1.0)
        assert server.stats().sent < len(ANSWER)
    assert request.timed_out
    assert not request.complete
    assert timer[0] < 1.0 + SLACK


@pytest.mark.parametrize(
    ("payload_size", "max_update_bytes", "wanted"),
    [(65536, 16 * MiB, 4096), (0, 1 * MiB, 200_000)],
    ids=["64KiB-updates", "empty-updates"],
)
def test_a_work_data_flood_keeps_memory_bounded(
    runtime: types.ModuleType,
    timer: list[float],
    payload_size: int,
    max_update_bytes: int,
    wanted: int,
) -> None:
    """The flood runs through each poll_timeout; the request keeps at most
    max_update_bytes of it, the Python objects that hold it counted.

    *wanted* more updates (256 MiB of 64 KiB ones; 200,000 empty ones,
    about 14 MiB if all were kept) arrive while the memory is measured.
    """
    with FakeServer(fakeserver.work_data_flood(payload_size)) as server:
        client = runtime.GearmanClient([server.address], max_update_bytes=max_update_bytes)
        request = timed(timer, client.submit_job, "t", b"x", poll_timeout=1.0)
        assert request.timed_out
        assert request.state == runtime.JOB_CREATED
        flood(client, request, timer)

        def received() -> int:
            return int(request.dropped_updates + len(request.data_updates))

        with Memory() as memory:
            flood_until(client, request, received, received() + wanted)
        kept = sum(len(update) for update in request.data_updates)
        sent = server.stats().sent
        client.shutdown()
    report(
        runtime,
        f"WORK_DATA flood of {payload_size}-byte updates",
        longest_wait=f"{max(timer):.2f} s",
        received=received(),
        server_sent_bytes=sent,
        kept=len(request.data_updates),
        kept_payload_bytes=kept,
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert max(timer) < 1.0 + SLACK
    assert request.dropped_updates > 0
    assert kept <= max_update_bytes
    assert memory.heap < max_update_bytes + HEAP_SLACK


def test_a_work_status_flood_keeps_memory_bounded(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    """WORK_STATUS counts against max_update_bytes too (status_updates)."""
    max_update_bytes = 1 * MiB
    with FakeServer(fakeserver.work_status_flood()) as server:
        client = runtime.GearmanClient([server.address], max_update_bytes=max_update_bytes)
        request = timed(timer, client.submit_job, "t", b"x", poll_timeout=1.0)
        flood(client, request, timer)

        def received() -> int:
            return int(request.dropped_updates + len(request.status_updates))

        with Memory() as memory:
            flood_until(client, request, received, received() + 200_000)
        client.shutdown()
    report(
        runtime,
        "WORK_STATUS flood",
        longest_wait=f"{max(timer):.2f} s",
        received=received(),
        kept=len(request.status_updates),
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert max(timer) < 1.0 + SLACK
    assert request.status["numerator"] == 1
    assert request.dropped_updates > 0
    assert len(request.status_updates) * UPDATE_OVERHEAD <= max_update_bytes
    assert memory.heap < max_update_bytes + HEAP_SLACK


def test_a_work_data_flood_through_on_update_keeps_nothing(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    seen = [0, 0]  # updates, bytes

    def on_update(request: Any, kind: str, value: bytes) -> None:
        seen[0] += 1
        seen[1] += len(value)

    with FakeServer(fakeserver.work_data_flood(65536)) as server:
        client = runtime.GearmanClient([server.address], on_update=on_update)
        request = timed(timer, client.submit_job, "t", b"x", poll_timeout=1.0)
        flood(client, request, timer)
        with Memory() as memory:
            flood_until(client, request, lambda: seen[0], seen[0] + 4096)
        client.shutdown()
    report(
        runtime,
        "WORK_DATA flood to on_update",
        longest_wait=f"{max(timer):.2f} s",
        received=seen[0],
        received_payload_bytes=seen[1],
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert max(timer) < 1.0 + SLACK
    assert request.timed_out
    assert not request.data_updates
    assert request.dropped_updates == 0
    assert memory.heap < HEAP_SLACK


def test_an_unexpected_packet_is_a_protocol_error(runtime: types.ModuleType) -> None:
    with FakeServer(fakeserver.unexpected_packet(PacketType.NOOP)) as server:
        client = runtime.GearmanClient([server.address])
        with pytest.raises(runtime.errors.ProtocolError, match="unexpected NOOP"):
            client.submit_job("t", b"x", poll_timeout=5.0)


def test_an_unknown_packet_type_is_skipped(runtime: types.ModuleType) -> None:
    unknown = RES + (99).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"new"
    with FakeServer(Behaviour(after="SUBMIT_JOB", reply=unknown + ANSWER)) as server:
        client = runtime.GearmanClient([server.address])
        request = client.submit_job("t", b"x", poll_timeout=10.0)
    assert request.complete
    assert request.result == b"result"


def test_an_unsolicited_job_created_loses_the_accepted_request(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    with FakeServer(fakeserver.unsolicited_job_created()) as server:
        client = runtime.GearmanClient([server.address])
        request = timed(timer, client.submit_job, "t", b"x", poll_timeout=5.0)
    assert request.lost
    assert not request.complete
    assert timer[0] < 5.0 + SLACK


def test_a_request_cut_off_by_a_protocol_error_goes_to_another_server(
    runtime: types.ModuleType,
) -> None:
    """With an attempt left, the request not yet accepted is sent to the next
    server; the broken one is in back-off."""
    answering = Behaviour(after="SUBMIT_JOB", reply=ANSWER)
    with FakeServer(fakeserver.garbage()) as broken, FakeServer(answering) as good:
        client = runtime.GearmanClient([broken.address, good.address])
        request = client.submit_job("t", b"x", poll_timeout=10.0, max_retries=1)
        assert client.submit_job("t", b"y", poll_timeout=10.0).complete  # not the broken one
        cut, served = broken.stats(), good.stats()
    assert request.complete
    assert request.result == b"result"
    assert cut.requests.count("SUBMIT_JOB") == 1
    assert served.requests.count("SUBMIT_JOB") == 2


def test_a_protocol_error_with_no_other_server_raises_it(runtime: types.ModuleType) -> None:
    """Attempts left, but the only server broke the protocol: its error, not a retry."""
    with FakeServer(fakeserver.garbage()) as server:
        client = runtime.GearmanClient([server.address])
        with pytest.raises(runtime.errors.ProtocolError, match="bad magic"):
            client.submit_job("t", b"x", poll_timeout=10.0, max_retries=3)
        stats = server.stats()
    assert stats.requests.count("SUBMIT_JOB") == 1


# ------------------------------------------------------------------- admin


@pytest.mark.timeout(300)
def test_an_endless_status_reply_is_cut_at_the_block_limit(runtime: types.ModuleType) -> None:
    """Lines without end: the core stops at the block limit (64 MiB, each line
    counted with what keeping it costs).  No poll_timeout: only the limit
    ends the call, however slow the machine."""
    with FakeServer(fakeserver.endless_block()) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=None)
        with (
            Memory() as memory,
            pytest.raises(runtime.errors.InvalidAdminClientState, match="block reply above"),
        ):
            admin.get_status()
        sent = server.stats().sent
    report(
        runtime,
        "endless status block",
        server_sent_bytes=sent,
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert memory.heap < DEFAULT_MAX_PACKET_SIZE + HEAP_SLACK


def test_an_endless_status_reply_ends_at_poll_timeout(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    with FakeServer(fakeserver.endless_block()) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=1.0)
        with pytest.raises(runtime.errors.InvalidAdminClientState, match="no reply"):
            timed(timer, admin.get_status)
    assert timer[0] < 1.0 + SLACK


def test_an_endless_admin_line_is_an_admin_error(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    with FakeServer(fakeserver.endless_line()) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=30.0)
        with (
            Memory() as memory,
            pytest.raises(runtime.errors.InvalidAdminClientState, match="line longer"),
        ):
            timed(timer, admin.get_status)
        sent = server.stats().sent
    report(
        runtime,
        "endless admin line",
        server_sent_bytes=sent,
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert timer[0] < 30.0 + SLACK
    assert memory.heap < HEAP_SLACK


def test_a_4gib_header_on_an_admin_connection_is_an_admin_error(
    runtime: types.ModuleType,
) -> None:
    with FakeServer(fakeserver.huge_header(PacketType.ECHO_RES)) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=5.0)
        with pytest.raises(runtime.errors.InvalidAdminClientState, match="4294967295"):
            admin.ping_server()


@pytest.mark.parametrize(
    ("method", "reply", "message"),
    [
        ("get_status", b"OK\n.\n", "columns"),
        ("get_pid", b"OK not-a-pid\n", "pid"),
        ("get_version", packet(PacketType.JOB_CREATED, HANDLE), "unexpected JOB_CREATED"),
        ("ping_server", b"OK\n", "answers no admin command"),
        ("send_maxqueue", b"fn\t1\t0\t1\n.\n", "expected OK or ERR"),
        ("get_workers", packet(PacketType.ECHO_RES, b"x"), "ECHO_RES"),
    ],
)
def test_an_admin_reply_of_the_wrong_kind_is_an_admin_error(
    runtime: types.ModuleType, method: str, reply: bytes, message: str
) -> None:
    arguments = ("fn", 1) if method == "send_maxqueue" else ()
    with FakeServer(fakeserver.wrong_kind_admin(reply)) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=5.0)
        with pytest.raises(runtime.errors.InvalidAdminClientState, match=re.escape(message)):
            getattr(admin, method)(*arguments)


def test_an_admin_drip_slower_than_poll_timeout_is_an_admin_error(
    runtime: types.ModuleType, timer: list[float]
) -> None:
    with FakeServer(fakeserver.drip(b"OK 1.1.20\n", 0.5)) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=1.0)
        with pytest.raises(runtime.errors.InvalidAdminClientState, match="no reply"):
            timed(timer, admin.get_version)
    assert timer[0] < 1.0 + SLACK


def test_an_admin_drip_in_time_is_read_whole(runtime: types.ModuleType) -> None:
    with FakeServer(fakeserver.drip(b"fn\t3\t1\t2\n.\n", 0.002)) as server:
        admin = runtime.GearmanAdminClient([server.address], poll_timeout=30.0)
        rows = admin.get_status()
    assert rows == ({"task": "fn", "queued": 3, "running": 1, "workers": 2},)


# ------------------------------------------------------------------ worker

#: how many connections a worker must have made to count as reconnecting.
RECONNECTS = 3


@pytest.mark.parametrize(
    "behaviour",
    [
        fakeserver.assign_garbage(),
        fakeserver.huge_header(PacketType.JOB_ASSIGN_UNIQ, after="GRAB_JOB_UNIQ"),
        fakeserver.unexpected_packet(PacketType.JOB_CREATED, HANDLE, after="GRAB_JOB_UNIQ"),
        fakeserver.garbage(),
    ],
    ids=["job-assign-without-fields", "4GiB-job-assign", "job-created", "garbage"],
)
def test_a_worker_drops_a_link_that_breaks_the_protocol_and_reconnects(
    runtime: types.ModuleType, behaviour: Behaviour
) -> None:
    ran: list[Any] = []
    with FakeServer(behaviour) as server:

        class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
            polls = 0

            def after_poll(self, any_activity: bool) -> bool:
                self.polls += 1
                assert self.polls < 200, f"{server.stats()}"
                return server.stats().accepted < RECONNECTS

        worker = Worker([server.address])
        worker.register_task("t", lambda worker, job: ran.append(job))
        worker.work(poll_timeout=0.2)
        stats = server.stats()
    assert not ran
    assert stats.accepted >= RECONNECTS
    assert stats.requests.count("CAN_DO") >= RECONNECTS - 1  # it registers on every link


def test_a_noop_flood_keeps_the_worker_working_and_bounded(runtime: types.ModuleType) -> None:
    """NOOPs are legal: the link is kept, each wait still ends by its
    poll_timeout (after_poll runs), memory stays flat.

    Two ``work()`` calls: ten timed polls first, then, with memory measured
    (tracemalloc would stretch the timing), polls until 16 MiB more came
    (1.4 million NOOPs).
    """
    poll_timeout = 0.2
    polls: list[float] = []  # when each wait ended
    until: list[Callable[[], bool]] = []

    with FakeServer(fakeserver.noop_flood()) as server:

        class Worker(runtime.GearmanWorker):  # type: ignore[name-defined, misc]
            def after_poll(self, any_activity: bool) -> bool:
                polls.append(time.monotonic())
                return not until[-1]()

        worker = Worker([server.address])
        worker.register_task("t", lambda worker, job: None)
        until.append(lambda: len(polls) > 10)
        polls.append(time.monotonic())
        worker.work(poll_timeout=poll_timeout)
        longest = max(after - before for before, after in itertools.pairwise(polls))
        volume = server.stats().sent + 16 * MiB
        until.append(lambda: server.stats().sent >= volume)
        with Memory() as memory:
            worker.work(poll_timeout=poll_timeout)
        stats = server.stats()
    report(
        runtime,
        "NOOP flood",
        longest_poll=f"{longest:.2f} s",
        server_sent_bytes=stats.sent,
        heap_peak_bytes=memory.heap,
        rss_growth_bytes=memory.rss,
    )
    assert longest < poll_timeout + SLACK
    assert stats.sent >= volume
    assert stats.accepted <= 2  # NOOPs are legal: no link is dropped for them
    assert memory.heap < HEAP_SLACK
