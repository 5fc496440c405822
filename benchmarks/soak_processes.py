"""What the soak's child processes run (`benchmarks/soak.py` starts them).

- The jobs: connection ``c`` runs its jobs ``s = 0, 1, ...`` one after
  another; each has the id ``b"c-s"`` (also its unique, so gearmand never
  coalesces two of them) and a payload made of that id (`make_payload`).
  The worker answers `answer(payload)`: the payload reversed, then ``#``
  and its CRC-32 in hex. The client compares every result with the answer
  it works out itself, so a result delivered to the wrong request, cut,
  or mixed up in the worker counts as ``mismatched``.
- `client_process`: one process holding several connections, a
  ``GearmanClient`` each, driven by a thread each (``blocking``), a greenlet
  each (``gevent``) or a task each (``trio``, ``asyncio``), all at once.
  It counts every ending in a `Tally`, and each connection publishes how
  many of its jobs have ended in its own slot of a shared array, which the
  parent reads to sample memory at job-count marks.
- `worker_process`: one ``GearmanWorker`` of the runtime's binding, one job
  at a time, counting the jobs it ran in its slot of a shared array; it
  leaves ``work()`` when the parent sets the stop flag.

A child tells the parent through one queue of ``(what, kind, index, data)``
tuples: ``"ready"`` when it is up, ``"report"`` with its figures at the end,
``"failed"`` with a traceback if it broke.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import os
import threading
import traceback
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import Any

import gearman

#: The runtimes, each a module with GearmanClient and GearmanWorker.
BINDINGS = {
    "blocking": "gearman",
    "gevent": "gearman.gevent",
    "trio": "gearman.trio",
    "asyncio": "gearman.asyncio",
}
RUNTIMES = tuple(BINDINGS)
#: The one Gearman function of the soak.
FUNCTION = "soak"
#: Seconds a worker's wait lasts at most: how soon it sees the stop flag.
WORKER_POLL_TIMEOUT = 0.25
#: How many error messages a client keeps (the counts are kept in full).
KEPT_ERRORS = 5


def binding(runtime: str) -> ModuleType:
    """The module of *runtime*'s GearmanClient and GearmanWorker."""
    return importlib.import_module(BINDINGS[runtime])


# ------------------------------------------------------------------ the jobs


def job_id(connection: int, seq: int) -> bytes:
    """The id (and unique) of job *seq* of *connection*: ``b"connection-seq"``."""
    return b"%d-%d" % (connection, seq)


def make_payload(ident: bytes, size: int) -> bytes:
    """A payload of at least *size* bytes made of ``ident|`` repeated; never another job's."""
    unit = ident + b"|"  # the payload starts with the id and its end mark
    return (unit * (size // len(unit) + 1))[: max(size, len(unit))]


def answer(payload: bytes) -> bytes:
    """The worker's result for *payload*: reversed, ``#``, its CRC-32 in 8 hex digits."""
    return payload[::-1] + b"#%08x" % zlib.crc32(payload)


# ------------------------------------------------------------------ a client process


@dataclasses.dataclass
class ClientPlan:
    """What one client process does.

    Attributes:
        index: the process's number (its slot in the progress array).
        address: gearmand as ``host:port``.
        runtime: one of `RUNTIMES`.
        connections: (connection number, jobs to run on it) per connection.
        payload_size: bytes per payload (at least the id and its end mark).
        job_timeout: ``poll_timeout`` of each submission, seconds.
        wait_timeout: seconds to wait for the parent's go and release at most
            (a process whose parent is gone does not linger).
    """

    index: int
    address: str
    runtime: str
    connections: list[tuple[int, int]]
    payload_size: int
    job_timeout: float
    wait_timeout: float


class Tally:
    """How the jobs of one client process ended, counted as they end.

    Every ending is one of: ``correct`` (COMPLETE, the expected result),
    ``mismatched`` (COMPLETE, another result), an outcome that is not
    COMPLETE (``lost``, by state and flags: ``"FAILED"``, ``"CREATED
    timed_out"``, ...) or an exception from ``submit_job`` (by type).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the blocking runtime's threads share it
        self.ended = 0
        self.correct = 0
        self.mismatched = 0
        self.lost: Counter[str] = Counter()
        self.exceptions: Counter[str] = Counter()
        self.errors: list[str] = []

    def result(self, expected: bytes, request: Any) -> None:
        """Count a request that ended (its state says how)."""
        with self._lock:
            if request.state != gearman.JOB_COMPLETE:
                flags = [flag for flag in ("timed_out", "lost") if getattr(request, flag, False)]
                self.lost[" ".join([str(request.state), *flags])] += 1
                self._keep(f"{request.job.unique}: ended {request.state} {flags}")
            elif request.result == expected:
                self.correct += 1
            else:
                self.mismatched += 1
                self._keep(f"{request.job.unique}: result {request.result!r}, not {expected!r}")
            self.ended += 1

    def exception(self, ident: bytes, error: BaseException) -> None:
        """Count a submission that raised *error*."""
        with self._lock:
            self.exceptions[type(error).__name__] += 1
            self._keep(f"{ident.decode()}: {type(error).__name__}: {error}")
            self.ended += 1

    def report(self) -> dict[str, Any]:
        """The counts, as the parent reads them."""
        return {
            "ended": self.ended,
            "correct": self.correct,
            "mismatched": self.mismatched,
            "lost": dict(self.lost),
            "exceptions": dict(self.exceptions),
            "errors": self.errors,
        }

    def _keep(self, message: str) -> None:
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(message)


def _job(number: int, seq: int, payload_size: int) -> tuple[bytes, bytes, bytes]:
    """(id, payload, expected result) of job *seq* of connection *number*."""
    ident = job_id(number, seq)
    payload = make_payload(ident, payload_size)
    return ident, payload, answer(payload)


@dataclasses.dataclass
class _Connection:
    """One connection's share: its client, number and job count, and where it counts."""

    client: Any
    number: int
    count: int
    plan: ClientPlan
    tally: Tally
    progress: Any  # progress[number]: jobs of this connection ended so far


def _drive(connection: _Connection) -> None:
    """Run a connection's jobs on its sync client, one at a time."""
    c = connection
    for seq in range(c.count):
        ident, payload, expected = _job(c.number, seq, c.plan.payload_size)
        try:
            request = c.client.submit_job(
                FUNCTION, payload, unique=ident, poll_timeout=c.plan.job_timeout
            )
        except Exception as error:  # every exception is counted and reported
            c.tally.exception(ident, error)
        else:
            c.tally.result(expected, request)
        c.progress[c.number] = seq + 1


async def _drive_async(connection: _Connection) -> None:
    """`_drive` on an async client."""
    c = connection
    for seq in range(c.count):
        ident, payload, expected = _job(c.number, seq, c.plan.payload_size)
        try:
            request = await c.client.submit_job(
                FUNCTION, payload, unique=ident, poll_timeout=c.plan.job_timeout
            )
        except Exception as error:  # every exception is counted and reported
            c.tally.exception(ident, error)
        else:
            c.tally.result(expected, request)
        c.progress[c.number] = seq + 1


def _connections(plan: ClientPlan, tally: Tally, progress: Any) -> list[_Connection]:
    """A client of *plan*'s runtime for each of its connections."""
    module = binding(plan.runtime)
    return [
        _Connection(module.GearmanClient([plan.address]), number, count, plan, tally, progress)
        for number, count in plan.connections
    ]


def _in_threads(functions: Sequence[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=function, daemon=True) for function in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _in_greenlets(functions: Sequence[Callable[[], None]]) -> None:
    import gevent  # noqa: PLC0415 -- only the gevent runtime needs it

    gevent.joinall([gevent.spawn(function) for function in functions], raise_error=True)


def _run_sync(plan: ClientPlan, tally: Tally, progress: Any, release: Any) -> None:
    """The blocking and gevent runtimes: a thread or a greenlet per connection."""
    connections = _connections(plan, tally, progress)
    run_all = _in_greenlets if plan.runtime == "gevent" else _in_threads
    run_all([functools.partial(_drive, connection) for connection in connections])
    release.wait(plan.wait_timeout)  # the parent's last memory sample is taken meanwhile
    for connection in connections:
        connection.client.shutdown()


async def _run_async(
    plan: ClientPlan,
    tally: Tally,
    progress: Any,
    release: Any,
    run_all: Callable[[list[Awaitable[None]]], Awaitable[None]],
    in_thread: Callable[[Callable[[], object]], Awaitable[object]],
) -> None:
    """The trio and asyncio runtimes: a task per connection (*run_all* runs them)."""
    connections = _connections(plan, tally, progress)
    await run_all([_drive_async(connection) for connection in connections])
    # The parent's last memory sample is taken meanwhile.
    await in_thread(lambda: release.wait(plan.wait_timeout))
    for connection in connections:
        await connection.client.shutdown()


def _run_trio(plan: ClientPlan, tally: Tally, progress: Any, release: Any) -> None:
    import trio  # noqa: PLC0415 -- only the trio runtime needs it

    async def run_all(coroutines: list[Awaitable[None]]) -> None:
        async def wait(coroutine: Awaitable[None]) -> None:
            await coroutine

        async with trio.open_nursery() as nursery:
            for coroutine in coroutines:
                nursery.start_soon(wait, coroutine)

    async def in_thread(function: Callable[[], object]) -> object:
        return await trio.to_thread.run_sync(function)

    trio.run(_run_async, plan, tally, progress, release, run_all, in_thread)


def _run_asyncio(plan: ClientPlan, tally: Tally, progress: Any, release: Any) -> None:
    async def run_all(coroutines: list[Awaitable[None]]) -> None:
        await asyncio.gather(*coroutines)

    asyncio.run(_run_async(plan, tally, progress, release, run_all, asyncio.to_thread))


_CLIENT_RUNNERS: dict[str, Callable[[ClientPlan, Tally, Any, Any], None]] = {
    "blocking": _run_sync,
    "gevent": _run_sync,
    "trio": _run_trio,
    "asyncio": _run_asyncio,
}


def client_process(plan: ClientPlan, progress: Any, go: Any, release: Any, messages: Any) -> None:
    """A client process: wait for *go*, run every connection's jobs, wait for *release*.

    Connection ``n`` keeps ``progress[n]`` at the number of its jobs ended so
    far. At the end the process closes its connections and puts the
    `Tally`'s report on *messages*.
    """
    try:
        tally = Tally()
        binding(plan.runtime)  # imported before the first memory sample
        messages.put(("ready", "client", plan.index, None))
        if not go.wait(plan.wait_timeout):
            raise RuntimeError(f"no go from the parent within {plan.wait_timeout:g} s")
        _CLIENT_RUNNERS[plan.runtime](plan, tally, progress, release)
        messages.put(("report", "client", plan.index, tally.report()))
    except BaseException:
        messages.put(("failed", "client", plan.index, traceback.format_exc()))
        raise


# ------------------------------------------------------------------ a worker process


class _StopsOnFlag:
    """A worker mixin: ``work()`` ends once the shared ``stop_flag`` is set,
    or once the parent process (``parent_pid``) is gone."""

    stop_flag: Any = None
    parent_pid = 0

    def after_poll(self, any_activity: bool) -> bool:
        return not self.stop_flag.value and os.getppid() == self.parent_pid


def _make_worker(runtime: str, address: str, index: int, executed: Any, stop: Any) -> Any:
    module = binding(runtime)
    attributes = {"stop_flag": stop, "parent_pid": os.getppid()}
    worker_class = type("SoakWorker", (_StopsOnFlag, module.GearmanWorker), attributes)
    worker = worker_class([address])

    def run(_worker: Any, job: Any) -> bytes:
        executed[index] += 1  # one job at a time: no other writer
        return answer(job.data)

    worker.register_task(FUNCTION, run)
    return worker


def worker_process(
    runtime: str, address: str, index: int, executed: Any, stop: Any, messages: Any
) -> None:
    """A worker process: serve `FUNCTION` one job at a time until *stop* is set."""
    try:
        binding(runtime)  # imported before the first memory sample
        messages.put(("ready", "worker", index, None))
        if runtime in ("blocking", "gevent"):
            _make_worker(runtime, address, index, executed, stop).work(WORKER_POLL_TIMEOUT)
        else:

            async def work() -> None:
                await _make_worker(runtime, address, index, executed, stop).work(
                    WORKER_POLL_TIMEOUT
                )

            if runtime == "trio":
                import trio  # noqa: PLC0415 -- only the trio runtime needs it

                trio.run(work)
            else:
                asyncio.run(work())
        messages.put(("report", "worker", index, {"executed": executed[index]}))
    except BaseException:
        messages.put(("failed", "worker", index, traceback.format_exc()))
        raise
