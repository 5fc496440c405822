"""Helpers for the binding tests against real peers, for every runtime.

- `Threads`, `Greenlets`: how a runtime's tests run something in the
  background, wait for an event, pause and run a command: OS threads,
  ``threading.Event``, ``time.sleep`` and ``subprocess.run`` for the
  runtimes whose test code runs in threads (blocking, and the sync facades
  of trio and asyncio, whose loops run in threads of their own); greenlets
  of the test's thread, ``gevent.event.Event``, ``gevent.sleep`` and
  ``gevent.subprocess.run`` for gevent, whose waits only let other
  greenlets run while the hub runs; ``wait_readable`` waits for a file
  descriptor the same way (``select.select`` or gevent's), which is what a
  `devtools.faultproxy.FaultProxy` of the test waits with.  Each runtime offers its own as
  ``runtime.concurrency``; tests reach them only that way, so they are
  written once.  Under ``gevent.monkey.patch_all()`` the two behave alike.
- `unique_name`: a fresh function name per test, so tests sharing the
  session gearmand never see each other's jobs.
- `wait_until`: poll a condition until it holds or a deadline passes (the
  only kind of waiting these tests do; no bare sleeps).
- `BackgroundWorker`: runs ``worker.work(poll_timeout=0.1)`` in the
  background (the runtime's thread or greenlet) until
  `BackgroundWorker.stop` (a flag makes ``after_poll`` return False), and
  re-raises in the test whatever escaped ``work()``.
- `wait_for_workers`: wait until gearmand lists N workers for a function.
- `sockets_connected_to`, `tcp_info`: this process's sockets connected to a
  server, and what Linux counted on them (what the OS says, whichever
  runtime opened them).
- `stopped`: SIGSTOP a gearmand for a block (it accepts connections but
  never answers).
- `selected_runtimes`, `sync_runtimes_only`: the runtimes
  ``GEARMAN_TEST_RUNTIMES`` selects, and a mark that runs a test that takes
  ``runtime`` on the sync runtimes only (``blocking``, ``gevent``): for
  what python-gearman code does in the caller's own thread (signal
  handlers, its ``poll_connections_*`` loop, patching the sync classes).

Helpers that make binding objects, or run or wait in the background, take
the ``runtime`` (the module, or the sync facade, the ``runtime`` fixture
gives) as their first argument.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar

import pytest

from devtools.gearmand import Gearmand
from gearman import GearmanJob, GearmanWorker

__all__ = [
    "SYNC_RUNTIMES",
    "Background",
    "BackgroundWorker",
    "Concurrency",
    "Greenlets",
    "OurSocket",
    "TcpInfo",
    "Threads",
    "admin_status",
    "reverse",
    "selected_runtimes",
    "serving",
    "sockets_connected_to",
    "stopped",
    "sync_runtimes_only",
    "tcp_info",
    "unique_name",
    "wait_for_workers",
    "wait_until",
]

T = TypeVar("T")

#: default seconds a test waits for something that should happen at once.
DEADLINE = 10.0

#: the runtimes whose API is sync code running in the caller's thread.
SYNC_RUNTIMES = ("blocking", "gevent")


# --------------------------------------------------------------- runtimes


def _chosen_runtimes() -> set[str] | None:
    """The names ``GEARMAN_TEST_RUNTIMES`` lists, or None when it is unset."""
    chosen = os.environ.get("GEARMAN_TEST_RUNTIMES", "").strip()
    if not chosen:
        return None
    return {name.strip() for name in chosen.split(",") if name.strip()}


def selected_runtimes(known: Iterable[str]) -> list[str]:
    """The runtimes to run, of *known*: all, or those ``GEARMAN_TEST_RUNTIMES`` names.

    Raises pytest.UsageError when that variable names an unknown runtime.
    """
    chosen = _chosen_runtimes()
    if chosen is None:
        return sorted(known)
    unknown = sorted(chosen - set(known))
    if unknown:
        raise pytest.UsageError(f"GEARMAN_TEST_RUNTIMES names unknown runtimes: {unknown}")
    return sorted(chosen)


def sync_runtimes_only() -> pytest.MarkDecorator:
    """Run a test taking ``runtime`` on the selected sync runtimes only.

    Overrides the ``runtime`` fixture's parametrisation (indirectly: the
    fixture still opens each runtime); with no sync runtime selected the
    test is skipped as having no parameters.
    """
    chosen = _chosen_runtimes()
    names = [name for name in SYNC_RUNTIMES if chosen is None or name in chosen]
    return pytest.mark.parametrize("runtime", names, indirect=True)


# ------------------------------------------------------------ concurrency


class Background(Protocol):
    """Something running in the background: a thread or a greenlet."""

    def join(self, timeout: float | None = None) -> None:
        """Wait at most *timeout* s for it to end (it may still run afterwards)."""

    def is_alive(self) -> bool:
        """Whether it is still running."""


class Concurrency(Protocol):
    """How a runtime's tests wait and run things besides the test itself."""

    #: "threads" or "greenlets".
    name: str

    def Event(self) -> Any:
        """A new event (``set``, ``is_set``, ``wait(timeout)``) waiters of this kind can share."""

    def start(self, function: Callable[..., object], *args: Any, name: str = "") -> Background:
        """Run ``function(*args)`` in the background; its errors are its own to catch."""

    def sleep(self, seconds: float) -> None:
        """Pause the caller, letting the background run."""

    def run_process(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        """``subprocess.run(args, **kwargs)``, letting the background run meanwhile."""

    def wait_readable(self, fileno: int, timeout: float | None) -> bool:
        """Wait up to *timeout* s until *fileno* is readable (True), letting the background run."""


class Threads:
    """`Concurrency` of OS threads: the test's code blocks its own thread only."""

    name = "threads"

    def Event(self) -> threading.Event:
        return threading.Event()

    def start(self, function: Callable[..., object], *args: Any, name: str = "") -> Background:
        thread = threading.Thread(target=function, args=args, name=name or None, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def run_process(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, **kwargs)  # noqa: PLW1510 -- check is the caller's

    def wait_readable(self, fileno: int, timeout: float | None) -> bool:
        readable, _, _ = select.select([fileno], [], [], timeout)
        return bool(readable)


class _Greenlet:
    """A `Background` greenlet."""

    def __init__(self, greenlet: Any) -> None:
        self.greenlet = greenlet

    def join(self, timeout: float | None = None) -> None:
        self.greenlet.join(timeout)

    def is_alive(self) -> bool:
        return not self.greenlet.dead


class Greenlets:
    """`Concurrency` of greenlets in the test's thread: every wait runs the hub."""

    name = "greenlets"

    def __init__(self) -> None:
        import gevent  # noqa: PLC0415 -- only the gevent runtime needs it
        import gevent.event  # noqa: PLC0415
        import gevent.select  # noqa: PLC0415
        import gevent.subprocess  # noqa: PLC0415

        self._gevent = gevent

    def Event(self) -> Any:
        return self._gevent.event.Event()

    def start(self, function: Callable[..., object], *args: Any, name: str = "") -> Background:
        greenlet = self._gevent.spawn(function, *args)
        if name:
            greenlet.name = name
        return _Greenlet(greenlet)

    def sleep(self, seconds: float) -> None:
        self._gevent.sleep(seconds)

    def run_process(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if kwargs.get("input") is not None and kwargs.get("stdin", ...) is None:
            del kwargs["stdin"]  # subprocess.run ignores stdin=None with input; gevent's refuses it
        result: subprocess.CompletedProcess[bytes] = self._gevent.subprocess.run(args, **kwargs)
        return result

    def wait_readable(self, fileno: int, timeout: float | None) -> bool:
        readable, _, _ = self._gevent.select.select([fileno], [], [], timeout)
        return bool(readable)


# ------------------------------------------------------------------ waiting


def unique_name(prefix: str = "t") -> str:
    """A function name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(
    runtime: types.ModuleType,
    condition: Callable[[], T],
    timeout: float = DEADLINE,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Call *condition* until it returns something truthy; return that.

    Pauses between calls with the *runtime*'s ``concurrency.sleep``, so
    what runs in its background goes on meanwhile.  Raises AssertionError
    when *timeout* seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout} s (last: {value!r})")
        runtime.concurrency.sleep(interval)


def admin_status(runtime: types.ModuleType, address: str, task: str) -> dict[str, Any] | None:
    """gearmand's ``status`` line for *task* on *address*, or None."""
    with runtime.GearmanAdminClient([address], poll_timeout=5.0) as admin:
        line: dict[str, Any]
        for line in admin.get_status():
            if line["task"] == task:
                return line
    return None


def wait_for_workers(
    runtime: types.ModuleType, address: str, task: str, count: int = 1, timeout: float = DEADLINE
) -> None:
    """Wait until gearmand on *address* counts *count* workers for *task*."""

    def registered() -> bool:
        line = admin_status(runtime, address, task)
        return line is not None and line["workers"] == count

    wait_until(
        runtime, registered, timeout, interval=0.02, message=f"{count} worker(s) for {task!r}"
    )


class BackgroundWorker:
    """Run ``worker.work()`` in the background (the *runtime*'s thread or
    greenlet); stop it with a flag.

    The worker's own ``after_poll`` (a subclass override included) is kept
    and combined with the flag.  Use as a context manager: leaving the
    block stops the worker, joins it and re-raises an exception that
    escaped ``work()``.
    """

    def __init__(
        self, runtime: types.ModuleType, worker: GearmanWorker, poll_timeout: float | None = 0.1
    ) -> None:
        self.worker = worker
        self.poll_timeout = poll_timeout
        self.concurrency: Concurrency = runtime.concurrency
        self.stopping = False
        self.error: BaseException | None = None
        self.background: Background | None = None
        own_after_poll = worker.after_poll

        def after_poll(any_activity: bool) -> bool:
            keep_going = own_after_poll(any_activity)
            return bool(keep_going) and not self.stopping

        worker.after_poll = after_poll  # type: ignore[method-assign]

    def _run(self) -> None:
        try:
            self.worker.work(poll_timeout=self.poll_timeout)
        except BaseException as error:
            self.error = error

    def start(self) -> BackgroundWorker:
        """Start ``work()`` in the background; returns self."""
        self.background = self.concurrency.start(self._run, name="gearman-worker")
        return self

    def is_alive(self) -> bool:
        """Whether ``work()`` is still running."""
        return self.background is not None and self.background.is_alive()

    def join(self, timeout: float = DEADLINE) -> None:
        """Wait for ``work()`` to return on its own; fail if it does not."""
        assert self.background is not None, "not started"
        self.background.join(timeout)
        if self.background.is_alive():
            raise AssertionError(f"worker did not leave work() within {timeout} s")
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = DEADLINE) -> None:
        """Make ``after_poll`` return False, then join (see `join`)."""
        self.stopping = True
        self.join(timeout)

    def __enter__(self) -> BackgroundWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:  # do not hide the test's own failure behind a worker error
            self.stopping = True
            if self.background is not None:
                self.background.join(DEADLINE)


def reverse(worker: GearmanWorker, job: GearmanJob) -> Any:
    """A task: the job's data reversed."""
    return job.data[::-1]


def serving(
    runtime: types.ModuleType,
    hosts: Any,
    tasks: dict[str | bytes, Callable[[GearmanWorker, GearmanJob], Any]],
    worker_class: type[GearmanWorker] | None = None,
    poll_timeout: float | None = 0.1,
    **kwargs: Any,
) -> BackgroundWorker:
    """A `BackgroundWorker` (not started yet: use ``with``) serving *tasks* on *hosts*
    with a *worker_class* (default: the runtime's ``GearmanWorker``)."""
    worker = (worker_class or runtime.GearmanWorker)(hosts, **kwargs)
    for name, function in tasks.items():
        worker.register_task(name, function)
    return BackgroundWorker(runtime, worker, poll_timeout=poll_timeout)


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of process *pid* is in the stopped state (Linux /proc)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            if state not in ("T", "t"):
                return False
    return True


@contextlib.contextmanager
def stopped(server: Gearmand) -> Iterator[None]:
    """SIGSTOP *server* for the block: it accepts connections but never answers.

    The block starts once every thread of the server has stopped (the signal
    is delivered asynchronously: a server still running could answer).
    """
    os.kill(server.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + DEADLINE
        while not _all_threads_stopped(server.pid):
            if time.monotonic() >= deadline:
                raise AssertionError(f"{server!r} did not stop within {DEADLINE} s")
            time.sleep(0.001)
        yield
    finally:
        if server.running:
            os.kill(server.pid, signal.SIGCONT)


def _peer(sock: socket.socket) -> tuple[str, int] | None:
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):  # not connected, or not an inet socket
        return None
    return host, port


#: ``tcpi_state`` of an established connection (linux/tcp_states.h).
TCP_ESTABLISHED = 1


def _tcp_state(sock: socket.socket) -> int:
    """The TCP state of *sock* (the first byte of ``TCP_INFO``)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


class OurSocket(NamedTuple):
    """One socket of this process: every descriptor it has, and a duplicate of one."""

    #: the descriptors open on it (a runtime may hold more than one).
    fds: tuple[int, ...]
    #: a duplicate descriptor, to read socket options from.
    sock: socket.socket


@contextlib.contextmanager
def sockets_connected_to(host: str, port: int) -> Iterator[list[OurSocket]]:
    """This process's established TCP connections to *host*:*port*, one entry
    per socket (descriptors duplicated from one another count once).

    A socket whose peer has closed (CLOSE_WAIT) is not counted: a server
    that ran on the same port earlier may have left such sockets behind, in
    a runtime whose readers have not run since to take in the end (gevent's
    run only while its hub does).  The duplicates are closed when the block
    ends.  Linux: /proc/self/fd.
    """
    by_socket: dict[str, list[int]] = {}  # 'socket:[inode]' -> descriptors
    for name in os.listdir("/proc/self/fd"):  # all read before the first dup takes a number
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith("socket:"):
                by_socket.setdefault(target, []).append(int(name))
    found: list[OurSocket] = []
    try:
        for fds in by_socket.values():
            try:
                duplicate = socket.socket(fileno=os.dup(fds[0]))
            except OSError:  # closed meanwhile
                continue
            if (
                duplicate.type == socket.SOCK_STREAM
                and _peer(duplicate) == (host, port)
                and _tcp_state(duplicate) == TCP_ESTABLISHED
            ):
                found.append(OurSocket(tuple(sorted(fds)), duplicate))
            else:
                duplicate.close()
        yield found
    finally:
        for ours in found:
            ours.sock.close()


class TcpInfo(NamedTuple):
    """What Linux counted on a TCP socket (``TCP_INFO``) that the tests read."""

    #: segments sent that carried data: with TCP_NODELAY, one per write that
    #: fits in a segment (the kernel never splits such a write, and never
    #: merges two writes unless the first is still queued on the device).
    data_segs_out: int
    #: payload bytes sent (Linux >= 4.19).
    bytes_sent: int


def tcp_info(sock: socket.socket) -> TcpInfo:
    """``TCP_INFO`` of *sock* (struct tcp_info of linux/tcp.h)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(raw) >= 208, f"struct tcp_info of {len(raw)} bytes: Linux >= 4.19 needed"
    (data_segs_out,) = struct.unpack_from("I", raw, 156)
    (bytes_sent,) = struct.unpack_from("Q", raw, 200)
    return TcpInfo(data_segs_out, bytes_sent)
