"""What every Python contender shares: the command line, payloads, clocks, the report.

Standard library only, and kept importable by any Python >= 3.8: the same
file is imported by contenders that run in the project's ``.venv`` and by
those that run in ``benchmarks/.peers-venv``.

The contract with the harness (``benchmarks/harness.py``):

* arguments: ``--role client|worker --scenario fg|pipe|conc|bg|drain|large|fill
  --n N --address host:port --payload-size S --timeout SECONDS``;
* output: exactly one JSON line on stdout, the last line printed, with
  ``elapsed`` (wall seconds of the measured window), ``utime`` and
  ``stime`` (CPU seconds of this process, all threads, in the same window)
  and ``jobs`` (jobs in the window); or a line with ``error`` and a
  non-zero exit status.

Measured windows:

* client fg/pipe/large: one untimed warm-up job first, with the 16-byte
  payload (it also waits for the worker to come up and checks its answer),
  then N jobs;
* client conc: the warm-up job, then CONC_TASKS submitters (tasks of the
  library, greenlets or threads) share the one client and submit N jobs in
  all, each one job at a time; every job has a payload of its own, so a
  result handed to the wrong submitter is told from a wrong result;
* client bg: one untimed warm-up submission, then N submissions;
* worker fg/pipe/conc/large: serves N + 1 jobs (the client's warm-up included) and
  measures from the end of the first one to the end of the last one; in
  conc, a worker that can runs CONC_WORKER_JOBS at once;
* worker drain: serves N queued background jobs, measured from just before
  it connects and registers to the end of the N-th job;
* fill (helper, not a measurement): queue N background jobs quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

ROLES = ("client", "worker")
SCENARIOS = ("fg", "pipe", "conc", "bg", "drain", "large", "fill")

#: The function name of the small-job scenarios and of the large one.
REVERSE = "reverse"
ECHO = "echo"

SMALL_PAYLOAD = b"0123456789abcdef"  # 16 bytes


def function_for(scenario: str) -> str:
    """The Gearman function a scenario's jobs are submitted to."""
    return ECHO if scenario == "large" else REVERSE


def make_payload(size: int) -> bytes:
    """`size` bytes: the 16-byte small payload, or a byte ramp for larger sizes."""
    if size == len(SMALL_PAYLOAD):
        return SMALL_PAYLOAD
    ramp = bytes(range(256))
    return (ramp * (size // 256 + 1))[:size]


def expected_result(scenario: str, payload: bytes) -> bytes:
    """What the worker answers: the payload reversed, or echoed for "large"."""
    return payload if scenario == "large" else payload[::-1]


class Options(argparse.Namespace):
    role: str
    scenario: str
    n: int
    address: str
    payload_size: int
    timeout: float

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="one Gearman benchmark contender")
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--n", type=int, required=True, help="jobs in the measured window")
    parser.add_argument("--address", required=True, help="gearmand as host:port")
    parser.add_argument("--payload-size", type=int, default=len(SMALL_PAYLOAD))
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up (exit 3) after this many seconds"
    )
    options = parser.parse_args(argv, namespace=Options())
    if options.n < 1:
        parser.error("--n must be at least 1")
    return options


class Window:
    """Wall clock and CPU time (all threads of this process) between `start` and `stop`."""

    def __init__(self) -> None:
        self._wall = 0.0
        self._usage: resource.struct_rusage | None = None
        self.elapsed = 0.0
        self.utime = 0.0
        self.stime = 0.0

    def start(self) -> None:
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        self._wall = time.perf_counter()

    def stop(self) -> None:
        wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        if self._usage is None:
            raise RuntimeError("Window.stop() before start()")
        self.elapsed = wall - self._wall
        self.utime = usage.ru_utime - self._usage.ru_utime
        self.stime = usage.ru_stime - self._usage.ru_stime


def report(options: Options, window: Window, jobs: int, **extra: Any) -> None:
    """Print the one JSON line the harness reads."""
    line = {
        "role": options.role,
        "scenario": options.scenario,
        "jobs": jobs,
        "payload_size": options.payload_size,
        "elapsed": window.elapsed,
        "utime": window.utime,
        "stime": window.stime,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "pid": os.getpid(),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def fail(message: str, status: int = 1) -> NoReturn:
    """Print an error line for the harness and leave at once (threads included)."""
    print(json.dumps({"error": message}), flush=True)
    sys.stderr.flush()
    os._exit(status)


def start_watchdog(timeout: float, what: str) -> None:
    """End the process with an error line if it is still running after `timeout` s."""

    def expire() -> None:
        fail(f"{what}: timed out after {timeout:g} s", status=3)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


# --- the scenario drivers, the same for every Python library ---------------------
#
# The client drivers are coroutines, written once for every library. An async
# library's adapter awaits for real, inside its event loop (main_async). A
# blocking library's adapter is wrapped in Blocking, whose coroutines return
# without ever suspending, and `drive` runs a driver through without any loop.


class ClientAdapter(Protocol):
    """How one blocking library submits jobs; results come back as bytes."""

    def submit(self, function: str, payload: bytes) -> bytes:
        """One foreground job, waited for; returns its result."""

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        """`count` foreground jobs sent at once, all waited for; returns the results."""

    def submit_background(self, function: str, payload: bytes) -> None:
        """One background job, waited for until the server accepted it."""

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        """`count` background jobs, as fast as the library allows (the drain's filler)."""


class AsyncClientAdapter(Protocol):
    """How one library submits jobs, as the drivers see it: ClientAdapter's calls awaited.

    One adapter (one client object of the library) serves every submitter of
    the conc scenario: `run_concurrently` runs them as the library's tasks
    (trio or asyncio tasks, greenlets; threads for a blocking library).
    """

    async def submit(self, function: str, payload: bytes) -> bytes:
        """One foreground job, waited for; returns its result."""

    async def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        """`count` foreground jobs sent at once, all waited for; returns the results."""

    async def submit_background(self, function: str, payload: bytes) -> None:
        """One background job, waited for until the server accepted it."""

    async def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        """`count` background jobs, as fast as the library allows (the drain's filler)."""

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        """Run `count` instances of `task` at once; return when all have ended."""


T = TypeVar("T")


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a driver over Blocking) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a blocking adapter's coroutine suspended: it needs an event loop")


class RunAll(Protocol):
    """How a blocking library's conc submitters run: threads, or greenlets for gevent."""

    def __call__(self, functions: Sequence[Callable[[], None]]) -> None:
        """Run `functions` at once; return when all have ended; raise the first error."""


def run_in_threads(functions: Sequence[Callable[[], None]]) -> None:
    """RunAll with a thread per function (the default of a blocking library)."""
    errors: list[BaseException] = []

    def run(function: Callable[[], None]) -> None:
        try:
            function()
        except BaseException as error:  # raised again in the calling thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f,), daemon=True) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class Blocking:
    """A blocking library's ClientAdapter as an AsyncClientAdapter.

    Each call returns when the library's call does, so nothing suspends;
    `run_concurrently` runs the tasks with `run_all`, all sharing the one
    adapter: in a thread each by default (so the library's client must be
    thread-safe), or as greenlets where the contender passes a gevent RunAll.
    """

    def __init__(self, adapter: ClientAdapter, run_all: RunAll = run_in_threads) -> None:
        self.adapter = adapter
        self.run_all = run_all

    async def submit(self, function: str, payload: bytes) -> bytes:
        return self.adapter.submit(function, payload)

    async def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        return self.adapter.submit_many(function, payload, count)

    async def submit_background(self, function: str, payload: bytes) -> None:
        self.adapter.submit_background(function, payload)

    async def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        self.adapter.submit_background_many(function, payload, count)

    async def run_concurrently(self, task: Callable[[], Awaitable[None]], count: int) -> None:
        def run() -> None:
            drive(task())  # type: ignore[arg-type]

        self.run_all([run] * count)


class WorkerAdapter(Protocol):
    """How one library serves jobs (an async library runs its event loop inside `serve`)."""

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        """Answer `count` jobs of `function` with `handler(payload)`, then return.

        `after_job(done)` is called after each job's result has been sent.
        Up to `worker_slots(scenario)` jobs may run at once, if the library
        can run several.
        """


#: The conc scenario: submitters sharing one client, and jobs a worker runs at once.
CONC_TASKS = 100
CONC_WORKER_JOBS = 8


def worker_slots(scenario: str) -> int:
    """How many jobs a worker that can run several at once runs in `scenario`."""
    return CONC_WORKER_JOBS if scenario == "conc" else 1


class Jobs:
    """What a client measurement submits: n jobs of one function, and their answer."""

    def __init__(self, options: Options) -> None:
        self.scenario = options.scenario
        self.function = function_for(options.scenario)
        self.payload = make_payload(options.payload_size)
        self.expected = expected_result(options.scenario, self.payload)
        self.n = options.n


def numbered_payloads(count: int, size: int) -> list[bytes]:
    """`count` distinct payloads of `size` ASCII digits (more if `count` needs them).

    One per conc job, so that every answer names the job it belongs to;
    ASCII, so that a library that decodes payloads as text takes them too.
    """
    return [b"%0*d" % (size, index) for index in range(count)]


class Tally:
    """The conc scenario's shared count: submitters claim jobs until all are claimed.

    Each answer is checked against the expected result of the job it was
    submitted for; one that is another job's expected result was delivered
    to the wrong submitter. Locked, so threads may share it as well as tasks.
    """

    def __init__(self, expected: Sequence[bytes]) -> None:
        self.expected = list(expected)
        self._owners = {result: index for index, result in enumerate(self.expected)}
        self._claimed = 0
        self._lock = threading.Lock()
        self.answered = 0
        self.misdelivered = 0  # another job's result
        self.wrong = 0  # no job's result

    def claim(self) -> int | None:
        """Take the next job: its index, or None once all are taken."""
        with self._lock:
            if self._claimed == len(self.expected):
                return None
            self._claimed += 1
            return self._claimed - 1

    def answer(self, index: int, result: bytes) -> None:
        """Count the answer `result` to job `index`."""
        with self._lock:
            self.answered += 1
            if result == self.expected[index]:
                return
            if self._owners.get(result, index) != index:
                self.misdelivered += 1
            else:
                self.wrong += 1

    def problems(self) -> list[str]:
        """What went wrong, as the report says it ([] when every job got its own result)."""
        n = len(self.expected)
        found = []
        if self.answered != n:
            found.append(f"{self.answered} answers for {n} jobs")
        if self.misdelivered:
            found.append(f"{self.misdelivered} of {n} results belonged to another job")
        if self.wrong:
            found.append(f"{self.wrong} of {n} results were no job's answer")
        return found


async def _fill(jobs: Jobs, adapter: AsyncClientAdapter, window: Window) -> None:
    window.start()
    await adapter.submit_background_many(jobs.function, jobs.payload, jobs.n)
    window.stop()


async def _background(jobs: Jobs, adapter: AsyncClientAdapter, window: Window) -> None:
    await adapter.submit_background(jobs.function, jobs.payload)  # warm-up
    window.start()
    for _ in range(jobs.n):
        await adapter.submit_background(jobs.function, jobs.payload)
    window.stop()


async def _warm_up(jobs: Jobs, adapter: AsyncClientAdapter) -> None:
    """One small job: waits for the worker and checks its answer.

    Small in every scenario: big payloads are for the measured jobs.
    """
    small = make_payload(len(SMALL_PAYLOAD))
    answer = await adapter.submit(jobs.function, small)
    wanted = expected_result(jobs.scenario, small)
    check(answer == wanted, f"warm-up job answered {answer[:40]!r}, not the expected")


async def _pipelined(jobs: Jobs, adapter: AsyncClientAdapter, window: Window) -> None:
    await _warm_up(jobs, adapter)
    window.start()
    results = await adapter.submit_many(jobs.function, jobs.payload, jobs.n)
    window.stop()
    check(len(results) == jobs.n, f"{len(results)} results for {jobs.n} jobs")
    check(all(result == jobs.expected for result in results), "a job answered wrongly")


async def _one_at_a_time(jobs: Jobs, adapter: AsyncClientAdapter, window: Window) -> None:
    await _warm_up(jobs, adapter)
    wrong = 0
    window.start()
    for _ in range(jobs.n):
        if await adapter.submit(jobs.function, jobs.payload) != jobs.expected:
            wrong += 1
    window.stop()
    check(wrong == 0, f"{wrong} jobs answered wrongly")


async def _concurrent(jobs: Jobs, adapter: AsyncClientAdapter, window: Window) -> None:
    """CONC_TASKS submitters share the adapter, each one job at a time, n jobs in all.

    Every job has its own payload (`numbered_payloads`), so the check tells
    a result delivered to the wrong submitter from a wrong one. The window
    includes starting the submitters (for 100 threads a few ms, which a
    measurement sized to --target-seconds amortises).
    """
    await _warm_up(jobs, adapter)
    payloads = numbered_payloads(jobs.n, len(jobs.payload))
    tally = Tally([expected_result(jobs.scenario, payload) for payload in payloads])

    async def submitter() -> None:
        index = tally.claim()
        while index is not None:
            tally.answer(index, await adapter.submit(jobs.function, payloads[index]))
            index = tally.claim()

    window.start()
    await adapter.run_concurrently(submitter, CONC_TASKS)
    window.stop()
    problems = tally.problems()
    check(not problems, "; ".join(problems))


#: The client side of each scenario (drain has none).
_CLIENT_DRIVERS = {
    "fill": _fill,
    "bg": _background,
    "pipe": _pipelined,
    "conc": _concurrent,
    "fg": _one_at_a_time,
    "large": _one_at_a_time,
}


async def run_client(options: Options, adapter: AsyncClientAdapter) -> None:
    """The client side of `options.scenario`, measured and reported."""
    driver = _CLIENT_DRIVERS.get(options.scenario)
    if driver is None:
        fail(f"the {options.scenario} scenario has no client side (fill queues its jobs)")
    window = Window()
    await driver(Jobs(options), adapter, window)
    report(options, window, options.n)


def reverse(payload: bytes) -> bytes:
    return payload[::-1]


def echo(payload: bytes) -> bytes:
    return payload


def run_worker(options: Options, adapter: WorkerAdapter) -> None:
    if options.scenario in ("bg", "fill"):
        fail(f"the {options.scenario} scenario has no worker side")
    function = function_for(options.scenario)
    handler = echo if options.scenario == "large" else reverse
    window = Window()
    if options.scenario == "drain":
        count = options.n
        window.start()
    else:
        count = options.n + 1  # the client's warm-up job first

    def after_job(done: int) -> None:
        if done == 1 and options.scenario != "drain":
            window.start()
        if done == count:
            window.stop()

    adapter.serve(function, handler, count, after_job)
    report(options, window, options.n)


def main(
    client: Callable[[Options], ClientAdapter],
    worker: Callable[[Options], WorkerAdapter],
    argv: list[str] | None = None,
    run_all: RunAll = run_in_threads,
) -> None:
    """Run one side of one scenario with a blocking library's adapters.

    `run_all` runs the conc submitters (threads unless the contender says otherwise).
    """

    def client_side(options: Options) -> None:
        drive(run_client(options, Blocking(client(options), run_all)))

    _run_side(client_side, worker, argv)


def main_async(
    client: Callable[[Options], AsyncClientAdapter | Awaitable[AsyncClientAdapter]],
    worker: Callable[[Options], WorkerAdapter],
    run: Callable[[Callable[[], Awaitable[None]]], object],
    argv: list[str] | None = None,
) -> None:
    """Run one side of one scenario with an async library's adapters.

    The client side runs in `run(async_function)` (``trio.run``, say), and
    `client(options)` is called inside it (a coroutine function, such as one
    that connects first, is awaited); the worker adapter's `serve` runs its
    own event loop.
    """

    async def client_task(options: Options) -> None:
        adapter = client(options)
        if inspect.isawaitable(adapter):
            adapter = await adapter
        await run_client(options, adapter)

    _run_side(lambda options: run(lambda: client_task(options)), worker, argv)


def run_asyncio(main: Callable[[], Awaitable[None]]) -> None:
    """``asyncio.run(main())``: main_async's `run` for an asyncio library."""
    asyncio.run(main())  # type: ignore[arg-type]


def _run_side(
    client_side: Callable[[Options], object],
    worker: Callable[[Options], WorkerAdapter],
    argv: list[str] | None,
) -> None:
    """Parse the command line and run one side of one scenario; leave the process."""
    options = parse_options(argv)
    start_watchdog(options.timeout, f"{options.role} {options.scenario}")
    # BENCH_PROFILE=prefix: write cProfile statistics to prefix.<role>.prof.
    profile_prefix = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_prefix else None
    try:
        if profiler is not None:
            profiler.enable()
        if options.role == "client":
            client_side(options)
        else:
            run_worker(options, worker(options))
    except Exception as error:  # report it as the harness expects, then leave
        traceback.print_exc()
        fail(f"{type(error).__name__}: {error}")
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_prefix}.{options.role}.prof")
    sys.stdout.flush()
    os._exit(0)  # do not wait for a library's non-daemon threads
