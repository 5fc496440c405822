"""TLS for every runtime: what each link is checked with, and what a failed handshake says.

Owns: applying :class:`gearman._runtime.TlsSettings` (the caller's
``ssl.SSLContext``, or one built from a python-gearman host dict's files),
the name a server's certificate is checked against and sent as SNI, and
the one :class:`gearman.errors.TlsError` a failed handshake becomes, with
the TLS library's reason.  Does not own the handshake: each runtime does
it its own way within the connect deadline (non-blocking SSL sockets and
poll(2), gevent's SSL socket, ``trio.SSLStream``, asyncio's TLS transport),
and none of them ever falls back to plaintext.
"""

from __future__ import annotations

import ssl
from typing import NamedTuple

import gearman_proto as proto

from . import errors
from ._runtime import CertFiles, TlsSettings

__all__ = ["Target", "Tls", "connect_timed_out", "context_from_files", "handshake_failed"]


class Target(NamedTuple):
    """How one link is made TLS."""

    #: the context the handshake follows (versions, CAs, client certificate).
    context: ssl.SSLContext
    #: the name the certificate must carry, sent as SNI unless it is an IP address.
    server_hostname: str


class Tls:
    """The TLS of one runtime's links, from the facade's :class:`TlsSettings`.

    Contexts for host dicts are built at once, so unusable files fail the
    facade's constructor, not a connect later.

    Raises:
        gearman.errors.TlsError: *settings* has something other than an
            ``ssl.SSLContext``, or a host dict's files cannot be loaded.
    """

    __slots__ = ("_by_server", "_context", "_name")

    def __init__(self, settings: TlsSettings | None) -> None:
        self._context: ssl.SSLContext | None = None
        self._name: str | None = None
        self._by_server: dict[proto.ServerAddress, ssl.SSLContext] = {}
        if settings is None:
            return
        if settings.context is not None and not isinstance(settings.context, ssl.SSLContext):
            raise errors.TlsError(
                f"ssl_context= takes an ssl.SSLContext, not {type(settings.context).__name__}"
            )
        self._context = settings.context
        self._name = settings.server_hostname
        self._by_server = {
            server: context_from_files(server, files) for server, files in settings.files.items()
        }

    def target(self, server: proto.ServerAddress) -> Target | None:
        """How the link to *server* is made TLS (None: plaintext)."""
        context = self._by_server.get(server, self._context)
        if context is None:
            return None
        return Target(context, self._name or server.host)


def context_from_files(server: proto.ServerAddress, files: CertFiles) -> ssl.SSLContext:
    """A verifying client context from python-gearman's host dict files: the
    server's certificate must chain to *ca_certs* and name the server; the
    client presents *certfile* with *keyfile*.

    Raises:
        gearman.errors.TlsError: a file is missing or unusable.
    """
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca_certs)
        context.load_cert_chain(files.certfile, files.keyfile)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise errors.TlsError(
            f"the TLS files given for {server} cannot be used: {error}"
        ) from error
    return context


def handshake_failed(
    server: proto.ServerAddress, target: Target, error: BaseException | None
) -> errors.TlsError:
    """The error of a TLS handshake with *server* that failed with *error*
    (None: the connect's deadline passed first); raise it ``from`` *error*."""
    return errors.TlsError(
        f"cannot connect to {server} over TLS (checked as {target.server_hostname!r}): "
        f"{_reason(error)}"
    )


def connect_timed_out(
    server: proto.ServerAddress, handshaking: Target | None
) -> errors.ConnectionError:
    """The error of a connect whose deadline passed, *handshaking* or not yet."""
    if handshaking is not None:
        return handshake_failed(server, handshaking, None)
    return errors.ConnectionError(f"cannot connect to {server}: timed out")


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "the TLS handshake did not end in time"
    cause = _tls_cause(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"the server's certificate is refused: {cause.verify_message}"
    if isinstance(cause, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError, EOFError)):
        told = str(cause) or type(cause).__name__
        return f"the server ended the connection during the TLS handshake ({told})"
    if isinstance(cause, ssl.SSLError):
        return f"the TLS handshake failed: {cause.reason or cause}"
    return f"the TLS handshake failed: {str(cause) or type(cause).__name__}"


def _tls_cause(error: BaseException) -> BaseException:
    """*error*, or what it wraps (trio's ``BrokenResourceError``, ...) if that
    says more: the first ``ssl.SSLError`` or ``OSError`` in its chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, OSError, EOFError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return error
