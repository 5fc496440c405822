"""TLS test fixtures: certificates made at test time, and stunnel in front of gearmand.

Debian's gearmand is built without a TLS library, so the TLS tests talk to
a real TLS terminator, Debian's ``stunnel4``, forwarding to a real gearmand.
A pytest plugin (``pytest_plugins`` in ``tests/conftest.py``):

- `tls_files` (session): a private directory with a test CA, a server
  certificate for ``localhost`` and ``127.0.0.1`` (subject alternative
  names), a client certificate from the same CA, and a second CA that
  signed nothing of the server's (an "unknown" CA).  Made with the
  ``openssl`` command line (the ``cryptography`` package is not a project
  dependency); EC P-256 keys, valid for two days, with the extensions a
  strict verifier (Python 3.13's ``VERIFY_X509_STRICT``) wants.
- `stunnel_path` (session): the stunnel executable; skips the test when it
  is missing, and fails it under CI (``scripts/setup`` installs it).
- `tls_gearmand` (session): stunnel on a free loopback port below 32768
  (as `devtools.gearmand` picks them), TLS 1.2 and 1.3 allowed, no client
  certificate asked, forwarding to the session's `gearmand`.
- `tls_gearmand_mutual` (session): the same, but stunnel requires a client
  certificate from the test CA.
- `stunnel_factory`: stunnels of a test's own (`Stunnel`'s keywords), each
  stopped at teardown.

A `Stunnel` runs in the foreground with its own config and log in a private
temporary directory; it is ready once a TLS handshake with it verifies
against the test CA (so the port is ours, not a stranger's), and it is
stopped by its pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from devtools.gearmand import DEFAULT_HOST, Gearmand, pick_free_port

__all__ = ["Stunnel", "StunnelFactory", "TlsFiles", "find_stunnel", "make_tls_files"]

#: seconds `Stunnel.start` waits for a verified handshake.
STARTUP_TIMEOUT = 10.0
#: seconds `Stunnel.stop` waits after SIGTERM before SIGKILL.
STOP_TIMEOUT = 10.0
#: how often `Stunnel.start` draws another port when stunnel could not bind.
PORT_ATTEMPTS = 5

#: the name and address the server certificate is valid for.
SERVER_NAMES = ("localhost", "127.0.0.1")

#: extensions of a CA, and of a certificate it signs (what a strict verifier wants).
_CA_EXTENSIONS = """\
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
_LEAF_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def find_stunnel() -> str | None:
    """The stunnel executable (Debian's ``stunnel4`` package), or None."""
    return shutil.which("stunnel4") or shutil.which("stunnel")


# ------------------------------------------------------------ certificates


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """The certificate files of the TLS tests (PEM), all in one directory."""

    directory: Path

    @property
    def ca(self) -> Path:
        """The test CA's certificate: what clients trust."""
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        """The server's certificate (``localhost``, ``127.0.0.1``), from the test CA."""
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        """The server's private key."""
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        """A client certificate from the test CA."""
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        """The client certificate's private key."""
        return self.directory / "client.key"

    @property
    def unknown_ca(self) -> Path:
        """A CA that signed none of the server's certificates."""
        return self.directory / "unknown-ca.pem"

    def client_context(self, *, certificate: bool = False) -> ssl.SSLContext:
        """A verifying client context trusting the test CA only, with the client
        certificate loaded if *certificate*."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if certificate:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *args], cwd=cwd, check=True, stdin=subprocess.DEVNULL, capture_output=True
    )


def _request_config(cwd: Path, name: str, common_name: str, extensions: str = "") -> str:
    """An ``openssl req`` config of our own (no system openssl.cnf); its name."""
    config = (
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n"
        f"[dn]\nCN = {common_name}\n[ext]\n{extensions}"
    )
    (cwd / f"{name}.cnf").write_text(config)
    return f"{name}.cnf"


def _ca(cwd: Path, name: str, common_name: str) -> None:
    config = _request_config(cwd, name, common_name, _CA_EXTENSIONS)
    _openssl(
        "req", "-x509", "-config", config, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        cwd=cwd,
    )  # fmt: skip


def _leaf(cwd: Path, name: str, common_name: str, extensions: str) -> None:
    config = _request_config(cwd, name, common_name)
    (cwd / f"{name}.ext").write_text(_LEAF_EXTENSIONS + extensions)
    _openssl(
        "req", "-new", "-config", config, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=cwd,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
        "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


def make_tls_files(directory: Path) -> TlsFiles:
    """Make the test CA, the server and client certificates and the unknown CA
    in *directory* (``openssl`` command line)."""
    _ca(directory, "ca", "gearman-proto test CA")
    _ca(directory, "unknown-ca", "gearman-proto unknown CA")
    dns, ip = SERVER_NAMES
    _leaf(
        directory,
        "server",
        dns,
        f"subjectAltName = DNS:{dns},IP:{ip}\nextendedKeyUsage = serverAuth\n",
    )
    _leaf(directory, "client", "gearman-proto test client", "extendedKeyUsage = clientAuth\n")
    return TlsFiles(directory)


# ----------------------------------------------------------------- stunnel


class StunnelError(RuntimeError):
    """stunnel could not be started."""


class Stunnel:
    """One stunnel process: TLS on a loopback port, forwarded to *backend* in plaintext.

    Args:
        files: the certificates (the server's is presented).
        backend: ``(host, port)`` of the plaintext server, a gearmand.
        executable: stunnel's path (default: `find_stunnel`).
        require_client_certificate: refuse clients without a certificate
            from the test CA.
        max_version: stunnel's ``sslVersionMax`` (e.g. ``"TLSv1.2"``;
            None: up to TLS 1.3).
    """

    def __init__(
        self,
        files: TlsFiles,
        backend: tuple[str, int],
        *,
        executable: str | None = None,
        require_client_certificate: bool = False,
        max_version: str | None = None,
    ) -> None:
        self.files = files
        self.backend = backend
        self.executable = executable or find_stunnel() or "stunnel4"
        self.require_client_certificate = require_client_certificate
        self.max_version = max_version
        self.host = DEFAULT_HOST
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="stunnel-"))

    @property
    def address(self) -> str:
        """``"host:port"`` of the TLS side."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """stunnel's log (``debug = info``: one line per handshake's TLS version)."""
        return self._workdir / "stunnel.log"

    def log_text(self) -> str:
        """What stunnel logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _config(self) -> str:
        lines = [
            "foreground = yes",
            "pid =",
            "syslog = no",
            "debug = info",
            f"output = {self.log_path}",
            "[gearman]",
            f"accept = {self.host}:{self.port}",
            f"connect = {self.backend[0]}:{self.backend[1]}",
            f"cert = {self.files.server_cert}",
            f"key = {self.files.server_key}",
        ]
        if self.max_version is not None:
            lines.append(f"sslVersionMax = {self.max_version}")
        if self.require_client_certificate:
            lines += [f"CAfile = {self.files.ca}", "verifyChain = yes", "requireCert = yes"]
        return "\n".join(lines) + "\n"

    def start(self) -> Stunnel:
        """Start stunnel on a free port and wait until it answers; returns self."""
        for _ in range(PORT_ATTEMPTS):
            self.port = pick_free_port(self.host)
            config = self._workdir / "stunnel.conf"
            config.write_text(self._config())
            with (self._workdir / "output.txt").open("ab") as output:
                self._process = subprocess.Popen(
                    [self.executable, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            try:
                if self._wait_until_ready(self._process):
                    return self
            except BaseException:
                self.stop()
                raise
            self.stop()  # it exited: the port was taken meanwhile; draw another
        raise StunnelError(f"stunnel did not start after {PORT_ATTEMPTS} ports\n{self.log_text()}")

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """True once a handshake verifies against the test CA; False if stunnel exited."""
        probe = self.files.client_context(certificate=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.poll() is None:
            try:
                with (
                    socket.create_connection((self.host, self.port), timeout=2.0) as raw,
                    probe.wrap_socket(raw, server_hostname=SERVER_NAMES[0]),
                ):
                    return True
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() >= deadline:
                raise StunnelError(f"stunnel did not answer on {self.address}\n{self.log_text()}")
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop stunnel by its pid: SIGTERM, then SIGKILL if it is still alive."""
        process = self._process
        self._process = None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop stunnel and remove its directory."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Stunnel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: what `stunnel_factory` hands out: `Stunnel`'s keywords in, a started one out.
StunnelFactory = Callable[..., Stunnel]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The test certificates (see the module docstring)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def stunnel_path() -> str:
    """The stunnel executable; skips the test (fails it under CI) if there is none."""
    path = find_stunnel()
    if path is None:
        message = "stunnel is not installed: run scripts/setup (apt package stunnel4)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must not skip the TLS tests", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def tls_gearmand(tls_files: TlsFiles, stunnel_path: str, gearmand: Gearmand) -> Iterator[Stunnel]:
    """stunnel in front of the session gearmand: TLS 1.2 or 1.3, no client certificate."""
    with Stunnel(tls_files, (gearmand.host, gearmand.port), executable=stunnel_path) as tunnel:
        yield tunnel


@pytest.fixture(scope="session")
def tls_gearmand_mutual(
    tls_files: TlsFiles, stunnel_path: str, gearmand: Gearmand
) -> Iterator[Stunnel]:
    """stunnel in front of the session gearmand that requires a client certificate."""
    with Stunnel(
        tls_files,
        (gearmand.host, gearmand.port),
        executable=stunnel_path,
        require_client_certificate=True,
    ) as tunnel:
        yield tunnel


@pytest.fixture
def stunnel_factory(
    tls_files: TlsFiles, stunnel_path: str, gearmand: Gearmand
) -> Iterator[StunnelFactory]:
    """Start stunnels of the test's own in front of the session gearmand; each is
    stopped at teardown."""
    with contextlib.ExitStack() as cleanup:

        def start(**kwargs: Any) -> Stunnel:
            tunnel = Stunnel(
                tls_files, (gearmand.host, gearmand.port), executable=stunnel_path, **kwargs
            )
            cleanup.callback(tunnel.close)
            return tunnel.start()

        yield start
