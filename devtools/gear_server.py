"""gear's ``Server`` (OpenStack's Python Gearman server) as a private test peer.

`GearServer` runs ``devtools/run_gear_server.py`` in a subprocess of this
Python (``sys.executable``, which must have the ``gear`` package: the
``test`` extra) on a free loopback port below the ephemeral range, and stops
it by pid. It is `devtools.gearmand.Gearmand` with another program: the same
port choice, start, stop (SIGTERM, then SIGKILL), restart, temporary
directory and clean-up at interpreter exit; only the command and the
readiness check differ.

Readiness: the child writes its pid to a file once gear's constructor has
bound and is listening (so the listener on the port is ours: a port another
process holds makes the child exit with `run_gear_server.PORT_TAKEN`, and
another port is drawn), then the ``status`` admin command must be answered
(gear's poll thread serves).

Standard library only in this module; ``gear`` is imported by the child.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools.gearmand import DEFAULT_HOST, STARTUP_TIMEOUT, Gearmand, GearmandError, _PortTaken
from devtools.run_gear_server import PORT_TAKEN

__all__ = ["GearServer", "gear_available"]

_CHILD = Path(__file__).with_name("run_gear_server.py")


def gear_available() -> bool:
    """Whether this Python can import ``gear`` (``pip install gear``, in the ``test`` extra)."""
    return importlib.util.find_spec("gear") is not None


class GearServer(Gearmand):
    """One gear ``Server`` process on a loopback port, owned by this Python process.

    Used like `devtools.gearmand.Gearmand` (``with GearServer() as server:``,
    ``address``, ``pid``, ``stop``, ``kill``, ``restart``, ``log_text``).

    Args:
        host: address to listen on.
        port: port to listen on; by default a free one from ``PORT_RANGE``.
        python: the interpreter that runs gear (default: this one).
        startup_timeout: seconds `start` waits for the server to answer.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        python: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            verbose=None,
            executable=python or sys.executable,
            startup_timeout=startup_timeout,
        )

    @property
    def log_path(self) -> Path:
        """The file gear logs every packet to; kept after `stop` until `close`."""
        return self._dir() / "gear.log"

    def __repr__(self) -> str:
        return super().__repr__().replace("<Gearmand", "<GearServer", 1)

    # -- what differs from gearmand ----------------------------------------

    def _ready_path(self) -> Path:
        return self._dir() / "ready"

    def _command(self, executable: str) -> list[str]:
        self._ready_path().unlink(missing_ok=True)  # a restart waits for the new process
        return [
            executable,
            str(_CHILD),
            self.host,
            str(self.port),
            str(self.log_path),
            str(self._ready_path()),
        ]

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        expected = f"{process.pid}\n"
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if process.poll() is not None:
                if process.returncode == PORT_TAKEN:
                    raise _PortTaken(f"{self.address} is taken by another process")
                raise GearmandError(
                    f"gear's Server exited with status {process.returncode} during startup "
                    f"on {self.address}\n{self._diagnostics()}"
                )
            if _read(self._ready_path()) == expected and _answers_status(self.host, self.port):
                return
            if time.monotonic() >= deadline:
                raise GearmandError(
                    f"gear's Server did not answer on {self.address} within "
                    f"{self._startup_timeout} s\n{self._diagnostics()}"
                )
            time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return ""


def _answers_status(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether the server on *port* answers the ``status`` admin command (a block ending ``.``)."""
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    reply = b""
    with conn:
        try:
            conn.sendall(b"status\n")
            while not (reply == b".\n" or reply.endswith(b"\n.\n")):
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                reply += chunk
        except OSError:
            return False
    return True
