"""One private gearmand process on a loopback port: `Gearmand`.

Owns: finding the gearmand executable, choosing a free port, starting the
server with its log, pid file and (empty) config file in a private temporary
directory (so it never touches ``/var`` or a system server on 4730), knowing
it is ours, and stopping it by its pid (SIGTERM, then SIGKILL), at
interpreter exit at the latest. Does not own: several servers at once
(`gearman.testing._group`) or pytest (the ``pytest_gearman`` plugin).

Standard library only, and no import of the rest of the package (not even a
relative one): the project's scripts load this file by its path
(``devtools/gearmand.py``), also in environments where another distribution
owns the top-level name ``gearman``.

Port choice (PROTOCOL.md 9.1): gearmand retries ``bind()`` on EADDRINUSE for
about 20 s and ignores SIGTERM meanwhile, and a port inside the kernel's
ephemeral range (32768-60999) can be held by an unrelated client socket. So
ports are drawn at random below that range and probed first; readiness is
confirmed with the admin ``getpid`` command, which also proves that the
listener on the port is *our* process and not a stranger that won a race.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEFAULT_HOST",
    "GEARMAND_PATH_VARIABLE",
    "PORT_RANGE",
    "Gearmand",
    "GearmandError",
    "GearmandNotFound",
    "find_gearmand",
    "pick_free_port",
    "port_is_free",
]

DEFAULT_HOST = "127.0.0.1"
#: Inclusive range of ports tried; kept below the ephemeral range (see module docstring).
PORT_RANGE = (10000, 32000)
#: Seconds `Gearmand.start` waits for the server to answer on its port.
STARTUP_TIMEOUT = 10.0
#: Seconds `Gearmand.stop` waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT = 10.0
#: How often `Gearmand.start` draws a new port when the drawn one was taken meanwhile.
_PORT_ATTEMPTS = 5

#: The environment variable that names the gearmand to run (a path, or a name on ``PATH``).
GEARMAND_PATH_VARIABLE = "GEARMAND_PATH"

_KNOWN_LOCATIONS = ("/usr/sbin/gearmand", "/usr/local/sbin/gearmand")
_INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install gearman-job-server) "
    f"or name it in ${GEARMAND_PATH_VARIABLE}"
)


class GearmandError(RuntimeError):
    """gearmand could not be started or is not in the state an operation needs."""


class GearmandNotFound(GearmandError):
    """No gearmand executable is installed, or the one named is not an executable."""


class _PortTaken(GearmandError):
    """Another process answers on the port this gearmand was meant to own."""


def find_gearmand(configured: str | None = None) -> str | None:
    """Return the path of the gearmand executable, or None if it is not installed.

    *configured* (a path, or a name looked up on ``PATH``), else the
    ``GEARMAND_PATH`` environment variable, names the executable outright:
    if it names none, that is a mistake to report, so `GearmandNotFound` is
    raised instead of returning None. Otherwise ``PATH`` is searched, then
    the usual locations (``/usr/sbin`` is often missing from a non-root
    ``PATH``).
    """
    origin = "the configured gearmand"
    if not configured:
        configured = os.environ.get(GEARMAND_PATH_VARIABLE) or None
        origin = f"${GEARMAND_PATH_VARIABLE}"
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise GearmandNotFound(f"{origin} ({configured!r}) is not an executable")
        return found
    found = shutil.which("gearmand")
    if found:
        return found
    for candidate in _KNOWN_LOCATIONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def port_is_free(host: str, port: int) -> bool:
    """Tell whether *port* on *host* can be bound right now.

    The probe deliberately does not set SO_REUSEADDR, so it also refuses ports
    that still have TIME_WAIT leftovers: stricter than gearmand's own bind.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = DEFAULT_HOST, *, attempts: int = 200) -> int:
    """Return a random port in `PORT_RANGE` that `port_is_free` accepts."""
    low, high = PORT_RANGE
    for _ in range(attempts):
        port = random.randint(low, high)
        if port_is_free(host, port):
            return port
    raise GearmandError(f"no free port on {host} in {low}..{high} after {attempts} tries")


def _probe(host: str, port: int, timeout: float) -> bytes | None:
    """Ask whoever listens on *port* for its pid with the admin ``getpid`` command.

    Returns None if nothing accepts the connection, otherwise the first reply
    line without its line end (b"" if the peer closed or stayed silent).
    """
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    reply = b""
    with conn:
        try:
            conn.sendall(b"getpid\n")
            while not reply.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
    return reply.rstrip(b"\r\n")


class Gearmand:
    """One gearmand server process on a loopback port, owned by this Python process.

    Nothing happens until `start` (or ``with Gearmand() as server:``). The
    port is chosen on the first start and kept by `restart`. Every process
    started here is stopped at interpreter exit at the latest.

    Args:
        host: address to listen on.
        port: port to listen on; by default a free one from `PORT_RANGE`.
        verbose: gearmand's ``--verbose`` level (``"INFO"``, ``"DEBUG"``, ...),
            or None for gearmand's default (errors only).
        extra_args: further command-line arguments, e.g. ``["-j", "2"]`` or
            ``["--exceptions"]``.
        executable: path of gearmand; by default `find_gearmand`'s answer.
        startup_timeout: seconds `start` waits for the server to answer.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        verbose: str | None = "INFO",
        extra_args: Sequence[str] = (),
        executable: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self._host = host
        self._port = port
        self._port_is_ours = port is None  # we may pick another one if it is taken
        self._verbose = verbose
        self._extra_args = tuple(extra_args)
        self._executable = executable
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._argv: list[str] = []
        self._workdir: Path | None = None
        self._remove_workdir: weakref.finalize[..., Gearmand] | None = None

    # -- properties ---------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (known once it has been started)."""
        if self._port is None:
            raise GearmandError("gearmand has not been started, so it has no port yet")
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"`` (``"[v6]:port"`` for IPv6), as python-gearman takes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        if self._process is None:
            raise GearmandError("gearmand is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """True while the server process exists and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        """The file gearmand logs to (``-l``); kept after `stop` until `close`."""
        return self._dir() / "gearmand.log"

    # -- life cycle ---------------------------------------------------------

    def start(self) -> Gearmand:
        """Start the server and wait until it answers on its port.

        Returns self. Raises `GearmandNotFound` if gearmand is not installed
        and `GearmandError` (with the server's output) if it exits or does not
        answer within the startup timeout.
        """
        if self.running:
            raise GearmandError(f"gearmand is already running on {self.address}")
        self._forget_process()  # a process that died on its own
        executable = self._executable or find_gearmand()
        if executable is None:
            raise GearmandNotFound(f"gearmand is not installed: {_INSTALL_HINT}")
        for attempt in range(_PORT_ATTEMPTS):
            if self._port is None or (attempt and self._port_is_ours):
                self._port = pick_free_port(self._host)
            try:
                self._spawn(executable)
            except _PortTaken:
                if not self._port_is_ours or attempt == _PORT_ATTEMPTS - 1:
                    raise
                continue
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server with SIGTERM, and SIGKILL if it is still alive after *timeout*.

        Does nothing if it is not running. The log stays readable.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._forget_process()

    def kill(self) -> None:
        """Kill the server abruptly with SIGKILL (a crash, as clients see it)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self._forget_process()

    def restart(self) -> Gearmand:
        """Stop the server (if running) and start a fresh one on the same port.

        gearmand sets SO_REUSEADDR, so connections of the old process left in
        TIME_WAIT or FIN_WAIT do not block the new bind. Returns self.
        """
        self.stop()
        if self._port is not None:
            self._port_is_ours = False  # clients know this port now: keep it
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its temporary directory (log included)."""
        self.stop()
        if self._remove_workdir is not None:
            self._remove_workdir()
        self._workdir = self._remove_workdir = None

    def log_text(self) -> str:
        """Return what gearmand has written to its log file so far ("" if nothing)."""
        if self._workdir is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Gearmand:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"{self._host}:{self._port}" if self._port is not None else self._host
        state = f"pid={self._process.pid}" if self._process is not None else "stopped"
        return f"<Gearmand {where} {state}>"

    # -- internals ----------------------------------------------------------

    def _dir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="gearmand-"))
            # Removed by close(), or when this object is collected or Python exits.
            self._remove_workdir = weakref.finalize(
                self, shutil.rmtree, self._workdir, ignore_errors=True
            )
            # An empty config file keeps a system-wide /etc/gearmand.conf out.
            (self._workdir / "gearmand.conf").touch()
        return self._workdir

    def _command(self, executable: str) -> list[str]:
        workdir = self._dir()
        command = [
            executable,
            "--listen",
            self._host,
            "--port",
            str(self.port),
            "--log-file",
            str(self.log_path),
            "--pid-file",
            str(workdir / "gearmand.pid"),
            "--config-file",
            str(workdir / "gearmand.conf"),
        ]
        if self._verbose is not None:
            command += ["--verbose", self._verbose]
        return command + list(self._extra_args)

    def _spawn(self, executable: str) -> None:
        """Run one gearmand process and wait until it answers; clean up on failure."""
        self._argv = self._command(executable)
        with (self._dir() / "output.txt").open("ab") as output:
            try:
                process = subprocess.Popen(
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            except OSError as error:
                raise GearmandNotFound(f"cannot run {executable!r}: {error}") from error
        self._process = process
        _LIVE.add(self)
        try:
            self._wait_until_ready(process)
        except BaseException:
            # Not SIGTERM: gearmand ignores it while it is still retrying bind().
            self.kill()
            raise

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        expected = f"OK {process.pid}".encode()
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if process.poll() is not None:
                raise GearmandError(
                    f"gearmand exited with status {process.returncode} during startup "
                    f"on {self.address}\n{self._diagnostics()}"
                )
            reply = _probe(self._host, self.port, timeout=2.0)
            if reply == expected:
                return
            if reply is not None:
                raise _PortTaken(
                    f"{self.address} is answered by another process ({reply!r}, "
                    f"expected {expected!r})"
                )
            if time.monotonic() >= deadline:
                raise GearmandError(
                    f"gearmand did not answer on {self.address} within "
                    f"{self._startup_timeout} s\n{self._diagnostics()}"
                )
            time.sleep(0.02)

    def _diagnostics(self) -> str:
        try:
            output = (self._dir() / "output.txt").read_text(errors="replace")
        except FileNotFoundError:
            output = ""
        return (
            f"command: {' '.join(self._argv)}\n"
            f"--- output ---\n{output}--- log ---\n{self.log_text()}"
        )

    def _forget_process(self) -> None:
        self._process = None
        _LIVE.discard(self)


#: Instances with a running process; the atexit hook below stops them all.
_LIVE: set[Gearmand] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()
