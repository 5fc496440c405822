"""TLS in every runtime, against stunnel in front of a real gearmand (tests/_tls.py).

A good certificate connects (jobs, admin commands, client certificates,
TLS 1.3); a wrong host name, an unknown CA, a plaintext server, a server
that never answers the handshake and a refused TLS version each fail with
a ``GearmanError`` that says why, within the caller's timeout, and nothing
is ever sent in plaintext instead.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import types
from collections.abc import Iterator

import pytest
from _binding_helpers import admin_status, reverse, serving, unique_name, wait_until
from _tls import Stunnel, StunnelFactory, TlsFiles

from devtools.gearmand import Gearmand, pick_free_port
from gearman import JOB_COMPLETE, JOB_CREATED, errors

#: seconds every wait of these tests may take (a failure comes much sooner).
TIMEOUT = 10.0


def _tls_failure(error: BaseException) -> errors.TlsError:
    """The TlsError behind what a call raised (an admin client's or a client's
    ``ServerUnavailable``, or the TlsError itself)."""
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, errors.TlsError):
        seen = seen.__cause__
    assert isinstance(seen, errors.TlsError), f"no TlsError behind {error!r}"
    return seen


def _admin_failure(runtime: types.ModuleType, address: str, **kwargs: object) -> str:
    """What an admin command to *address* fails with; checks it is a
    ``ServerUnavailable`` raised from a ``TlsError``, and returns its message."""
    with (
        pytest.raises(errors.ServerUnavailable) as raised,
        runtime.GearmanAdminClient([address], poll_timeout=TIMEOUT, **kwargs) as admin,
    ):
        admin.get_pid()
    failure = _tls_failure(raised.value)
    assert str(failure) == str(raised.value)
    return str(failure)


def _client_failure(runtime: types.ModuleType, address: str, **kwargs: object) -> str:
    """What a client's submission to *address* fails with (``ServerUnavailable``
    saying why the connect failed); returns its message."""
    with (
        runtime.GearmanClient([address], **kwargs) as client,
        pytest.raises(errors.ServerUnavailable) as raised,
    ):
        client.submit_job(unique_name("tls"), b"x", background=True, poll_timeout=TIMEOUT)
    return str(raised.value)


@pytest.fixture
def silent_address() -> Iterator[str]:
    """A loopback port that completes TCP connects (its backlog) and never says
    a word: a TLS handshake with it can only time out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", pick_free_port()))
        listener.listen(16)
        host, port = listener.getsockname()
        yield f"{host}:{port}"


# ------------------------------------------------------------ what works


def test_jobs_go_round_trip_over_tls(
    runtime: types.ModuleType, tls_gearmand: Stunnel, tls_files: TlsFiles
) -> None:
    task = unique_name("tls")
    large = os.urandom(8 * 1024 * 1024 + 7)  # more than the socket buffers take at once
    hosts = [tls_gearmand.address]
    with (
        serving(runtime, hosts, {task: reverse}, ssl_context=tls_files.client_context()),
        runtime.GearmanClient(hosts, ssl_context=tls_files.client_context()) as client,
    ):
        request = client.submit_job(task, large, poll_timeout=TIMEOUT)
        batch = client.submit_multiple_jobs(
            [{"task": task, "data": b"job %d" % number} for number in range(100)],
            poll_timeout=TIMEOUT,
        )
    assert (request.state, request.result == large[::-1]) == (JOB_COMPLETE, True)
    assert [r.state for r in batch] == [JOB_COMPLETE] * 100
    assert [r.result for r in batch] == [(b"job %d" % number)[::-1] for number in range(100)]


def test_admin_commands_over_tls(
    runtime: types.ModuleType, tls_gearmand: Stunnel, tls_files: TlsFiles, gearmand: Gearmand
) -> None:
    task = unique_name("tls")
    context = tls_files.client_context()
    with runtime.GearmanAdminClient([tls_gearmand.address], ssl_context=context) as admin:
        assert admin.get_pid() == str(gearmand.pid)  # the gearmand behind the terminator
        assert admin.get_version().startswith("1.")
        assert isinstance(admin.ping_server(), float)
        assert admin.create_function(task) == "OK"
        assert any(line["task"] == task for line in admin.get_status())
        assert admin.drop_function(task) == "OK"


def test_the_certificate_is_checked_against_the_host_or_server_hostname(
    runtime: types.ModuleType, tls_gearmand: Stunnel, tls_files: TlsFiles, gearmand: Gearmand
) -> None:
    context = tls_files.client_context()
    by_name = f"localhost:{tls_gearmand.port}"  # the certificate's DNS name
    with runtime.GearmanAdminClient([by_name], ssl_context=context) as admin:
        assert admin.get_pid() == str(gearmand.pid)
    # By address, checked against the name the certificate carries.
    with runtime.GearmanAdminClient(
        [tls_gearmand.address], ssl_context=context, server_hostname="localhost"
    ) as admin:
        assert admin.get_pid() == str(gearmand.pid)


def test_tls_1_3_is_negotiated_and_a_minimum_version_is_kept(
    runtime: types.ModuleType, stunnel_factory: StunnelFactory, tls_files: TlsFiles
) -> None:
    modern = stunnel_factory()
    context = tls_files.client_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with runtime.GearmanAdminClient([modern.address], ssl_context=context) as admin:
        assert admin.get_pid()
    assert "TLSv1.3 ciphersuite" in modern.log_text()

    # A server that stops at TLS 1.2: the context's minimum refuses it ...
    older = stunnel_factory(max_version="TLSv1.2")
    message = _admin_failure(runtime, older.address, ssl_context=context)
    assert "version" in message.lower(), message
    # ... which a context without that minimum would have accepted.
    with runtime.GearmanAdminClient(
        [older.address], ssl_context=tls_files.client_context()
    ) as admin:
        assert admin.get_pid()
    assert "TLSv1.2 ciphersuite" in older.log_text()


def test_a_client_certificate_comes_from_the_context(
    runtime: types.ModuleType,
    tls_gearmand_mutual: Stunnel,
    tls_files: TlsFiles,
    gearmand: Gearmand,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hosts = [tls_gearmand_mutual.address]
    certified = tls_files.client_context(certificate=True)
    with runtime.GearmanAdminClient(hosts, ssl_context=certified) as admin:
        assert admin.get_pid() == str(gearmand.pid)
    task = unique_name("tls")
    with (
        serving(runtime, hosts, {task: reverse}, ssl_context=certified),
        runtime.GearmanClient(hosts, ssl_context=certified) as client,
    ):
        request = client.submit_job(task, b"mutual", poll_timeout=TIMEOUT)
    assert (request.state, request.result) == (JOB_COMPLETE, b"lautum")

    # Without one: under TLS 1.2 the handshake fails ...
    older = tls_files.client_context()
    older.maximum_version = ssl.TLSVersion.TLSv1_2
    assert "handshake" in _admin_failure(runtime, hosts[0], ssl_context=older)
    # ... under TLS 1.3 the server says so after it: the link ends at its first
    # read (the alert: "certificate required") or write, and the command fails.
    caplog.set_level(logging.WARNING, logger="gearman.io")
    with (
        pytest.raises(errors.GearmanError),
        runtime.GearmanAdminClient(
            hosts, poll_timeout=TIMEOUT, ssl_context=tls_files.client_context()
        ) as admin,
    ):
        admin.get_pid()
    ends = [r.getMessage() for r in caplog.records if r.name == "gearman.io"]
    assert any(f"{hosts[0]}: read failed" in m or f"{hosts[0]}: write failed" in m for m in ends)


def test_python_gearman_host_dicts_make_a_verifying_tls_link(
    runtime: types.ModuleType, tls_gearmand_mutual: Stunnel, tls_files: TlsFiles, gearmand: Gearmand
) -> None:
    entry = {
        "host": tls_gearmand_mutual.host,
        "port": tls_gearmand_mutual.port,
        "keyfile": str(tls_files.client_key),
        "certfile": str(tls_files.client_cert),
        "ca_certs": str(tls_files.ca),
    }
    with runtime.GearmanAdminClient([entry]) as admin:
        assert admin.get_pid() == str(gearmand.pid)
    with runtime.GearmanClient([entry]) as client:
        request = client.submit_job(unique_name("tls"), b"x", background=True, poll_timeout=TIMEOUT)
    assert request.state == JOB_CREATED
    # The context verifies: another CA is refused.
    stranger = {**entry, "ca_certs": str(tls_files.unknown_ca)}
    with (
        pytest.raises(errors.ServerUnavailable) as raised,
        runtime.GearmanAdminClient([stranger], poll_timeout=TIMEOUT) as admin,
    ):
        admin.get_pid()
    assert "certificate is refused" in str(_tls_failure(raised.value))


# ------------------------------------------------------------- what fails


def test_a_wrong_server_name_fails(
    runtime: types.ModuleType, tls_gearmand: Stunnel, tls_files: TlsFiles
) -> None:
    wrong = {"ssl_context": tls_files.client_context(), "server_hostname": "gearman.invalid"}
    message = _admin_failure(runtime, tls_gearmand.address, **wrong)
    assert "Hostname mismatch" in message, message
    assert "'gearman.invalid'" in message, message
    assert "Hostname mismatch" in _client_failure(runtime, tls_gearmand.address, **wrong)


def test_an_unknown_ca_fails(
    runtime: types.ModuleType, tls_gearmand: Stunnel, tls_files: TlsFiles
) -> None:
    stranger = ssl.create_default_context(cafile=str(tls_files.unknown_ca))
    message = _admin_failure(runtime, tls_gearmand.address, ssl_context=stranger)
    assert "certificate is refused" in message, message
    assert "issuer" in message, message
    message = _client_failure(runtime, tls_gearmand.address, ssl_context=stranger)
    assert "certificate is refused" in message, message


def test_a_plaintext_server_fails_and_hears_nothing_in_plaintext(
    runtime: types.ModuleType,
    gearmand: Gearmand,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = tls_files.client_context()
    message = _admin_failure(runtime, gearmand.address, ssl_context=context)
    assert "TLS handshake" in message, message

    task = unique_name("tls")
    with (
        runtime.GearmanClient([gearmand.address], ssl_context=context) as client,
        pytest.raises(errors.ServerUnavailable) as raised,
    ):
        client.submit_job(task, b"x", background=True, poll_timeout=TIMEOUT)
    assert "TLS handshake" in str(raised.value)

    # A worker keeps trying TLS (back-off, each failure logged), never plaintext.
    caplog.set_level(logging.WARNING, logger="gearman.io")

    def tls_failures() -> int:
        return sum("over TLS" in record.getMessage() for record in caplog.records)

    with serving(runtime, [gearmand.address], {task: reverse}, ssl_context=context):
        wait_until(runtime, lambda: tls_failures() >= 2, message="two failed TLS connects")
        assert admin_status(runtime, gearmand.address, task) is None  # no job, no worker


def test_a_silent_server_fails_within_the_deadline(
    runtime: types.ModuleType, silent_address: str, tls_files: TlsFiles
) -> None:
    context = tls_files.client_context()
    with (
        pytest.raises(errors.ServerUnavailable) as raised,
        runtime.GearmanAdminClient([silent_address], poll_timeout=0.5, ssl_context=context) as a,
    ):
        a.get_pid()
    assert "did not end in time" in str(_tls_failure(raised.value))
    with (
        runtime.GearmanClient([silent_address], ssl_context=context) as client,
        pytest.raises(errors.ServerUnavailable) as raised,
    ):
        client.submit_job(unique_name("tls"), b"x", poll_timeout=0.5)
    assert "TLS handshake did not end in time" in str(raised.value)


def test_tls_settings_that_cannot_work_are_refused_at_once(
    runtime: types.ModuleType, tls_files: TlsFiles
) -> None:
    with pytest.raises(errors.TlsError, match="server_hostname"):
        runtime.GearmanClient(["localhost"], server_hostname="localhost")
    with pytest.raises(errors.TlsError, match="SSLContext"):
        runtime.GearmanWorker(["localhost"], ssl_context="yes please")
    partial = {"host": "localhost", "port": 4730, "ca_certs": str(tls_files.ca)}
    with pytest.raises(errors.TlsError, match="keyfile, certfile and ca_certs"):
        runtime.GearmanAdminClient([partial])
    missing = {**partial, "keyfile": "/nonexistent.key", "certfile": "/nonexistent.pem"}
    with pytest.raises(errors.TlsError, match="cannot be used"):
        runtime.GearmanClient([missing])


def test_open_stream_and_tls_do_not_mix(tls_files: TlsFiles) -> None:
    import gearman.asyncio  # noqa: PLC0415 -- the async facades take open_stream
    import gearman.trio  # noqa: PLC0415

    async def open_stream(server: object) -> object:
        raise AssertionError("never called")

    for binding in (gearman.trio, gearman.asyncio):
        with pytest.raises(errors.TlsError, match="open_stream"):
            binding.GearmanClient(
                ["localhost"], open_stream=open_stream, ssl_context=tls_files.client_context()
            )
