"""Helpers shared by every binding; no I/O library is imported here.

Owns: payload encoders and what their output must be, the str/bytes rules
for names, the python-gearman priority spelling, request status
dictionaries, the host list (with which links are TLS), and the one table
that maps core errors to python-gearman error classes (with their
``ValueError`` / ``TypeError`` flavours).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gearman_proto as proto

from . import errors
from ._runtime import CertFiles, TlsSettings
from .constants import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NONE

if TYPE_CHECKING:  # the type only: no TLS is done here
    import ssl

__all__ = [
    "TEXT",
    "DataEncoder",
    "NoopEncoder",
    "encode_payload",
    "from_priority",
    "host_entries",
    "invalid_type",
    "invalid_value",
    "job_status",
    "map_error",
    "name_bytes",
    "parse_host_list",
    "random_unique",
    "text",
    "tls_settings",
    "to_priority",
]

Name = str | bytes

#: a role's error class: ``InvalidClientState``, ``InvalidWorkerState`` or
#: ``InvalidAdminClientState`` (``GearmanError`` where no role applies).
Misuse = type[errors.GearmanError]

#: each role's class -> its ValueError and TypeError flavours.
_FLAVOURS: dict[Misuse, tuple[Misuse, Misuse]] = {
    errors.InvalidClientState: (errors.InvalidClientValue, errors.InvalidClientType),
    errors.InvalidWorkerState: (errors.InvalidWorkerValue, errors.InvalidWorkerType),
    errors.InvalidAdminClientState: (errors.InvalidAdminValue, errors.InvalidAdminType),
}
_NO_ROLE = (errors.InvalidValue, errors.InvalidType)


def invalid_value(misuse: Misuse, message: str) -> errors.GearmanError:
    """*misuse*'s ``ValueError`` flavour (e.g. ``InvalidClientValue``) with *message*."""
    return _FLAVOURS.get(misuse, _NO_ROLE)[0](message)


def invalid_type(misuse: Misuse, message: str) -> errors.GearmanError:
    """*misuse*'s ``TypeError`` flavour (e.g. ``InvalidClientType``) with *message*."""
    return _FLAVOURS.get(misuse, _NO_ROLE)[1](message)


class DataEncoder:
    """How payloads become bytes and back; subclass and set ``data_encoder``.

    Applied only to opaque job data: submitted payloads, WORK_DATA,
    WORK_WARNING, WORK_COMPLETE and WORK_EXCEPTION payloads, and the data a
    worker receives.  Never to names, uniques, handles or status numbers.
    """

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        """Turn a user object into the bytes that travel."""
        raise NotImplementedError

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        """Turn received bytes into a user object."""
        raise NotImplementedError


class NoopEncoder(DataEncoder):
    """The default: payloads are bytes; ``str`` is sent UTF-8 encoded.

    Anything else raises ``TypeError`` (python-gearman's behaviour, minus its
    refusal of ``str``).  Received payloads stay ``bytes``.
    """

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        """bytes-like objects pass through; ``str`` is UTF-8 encoded."""
        if isinstance(encodable_object, bytes):
            return encodable_object
        if isinstance(encodable_object, str):
            return encodable_object.encode("utf-8")
        if isinstance(encodable_object, (bytearray, memoryview)):
            return bytes(encodable_object)
        raise TypeError(
            f"payload must be bytes or str, not {type(encodable_object).__name__} "
            "(set a data_encoder to send other objects)"
        )

    @classmethod
    def decode(cls, decodable_string: bytes) -> bytes:
        """Received payloads are returned as they came."""
        return decodable_string


def encode_payload(encoder: type[DataEncoder], data: Any, misuse: Misuse) -> bytes:
    """*data* through *encoder*, as the bytes that travel.

    An encoder may return ``str`` (python-gearman's documented
    ``json.dumps`` encoder does): it is sent UTF-8 encoded.  Anything but
    bytes-like or ``str`` raises *misuse*, the role's ``Invalid*Type``, as
    does a ``TypeError`` of the encoder itself (the default encoder's for
    an int, a dict, a list).
    """
    try:
        payload: Any = encoder.encode(data)
    except TypeError as error:
        if isinstance(error, errors.GearmanError):
            raise
        raise misuse(f"{encoder.__name__}.encode: {error}") from error
    if type(payload) is bytes:  # the usual case, without a call
        return payload
    try:
        return NoopEncoder.encode(payload)  # the same bytes-like and str rules
    except TypeError:
        raise misuse(
            f"{encoder.__name__}.encode returned {type(payload).__name__}, not bytes"
        ) from None


def unreachable(servers: Sequence[proto.ServerAddress]) -> errors.ServerUnavailable:
    """The error for a connection that none of *servers* (the candidates) gave."""
    if not servers:
        return errors.ServerUnavailable("the host list names no server")
    return errors.ServerUnavailable(f"cannot reach any of {', '.join(map(str, servers))}")


def name_bytes(name: Name, what: str = "name", misuse: Misuse = errors.InvalidClientState) -> bytes:
    """A function name, unique or client id as bytes (``str`` is UTF-8 encoded).

    Anything else raises *misuse*'s ``TypeError`` flavour; what the bytes
    may hold is the core's rule.
    """
    if isinstance(name, str):  # first: task names and generated uniques are str
        return name.encode("utf-8")
    if isinstance(name, bytes):
        return name
    raise invalid_type(misuse, f"{what} must be str or bytes, not {type(name).__name__}")


#: how bytes from the server become ``str``: ``value.decode(*TEXT)`` where a
#: call to :func:`text` per job would show.
TEXT = ("utf-8", "surrogateescape")


def text(value: bytes) -> str:
    """Bytes from the server as ``str``: UTF-8, undecodable bytes kept as escapes."""
    return value.decode(*TEXT)


#: random source for unique ids, seeded from the OS once: a system call per
#: job (os.urandom) cost more than the rest of a small submission.
_unique_source = random.Random(os.urandom(32))


def random_unique(size: int) -> str:
    """A fresh unique id: *size* random bytes as hex (python-gearman's rule)."""
    return _unique_source.getrandbits(size * 8).to_bytes(size, "big").hex()


_TO_PRIORITY = {
    PRIORITY_NONE: proto.Priority.NORMAL,
    PRIORITY_LOW: proto.Priority.LOW,
    PRIORITY_HIGH: proto.Priority.HIGH,
}
_FROM_PRIORITY = {value: key for key, value in _TO_PRIORITY.items()}


def to_priority(priority: str | None) -> proto.Priority:
    """python-gearman's ``PRIORITY_*`` value as a core :class:`~gearman_proto.Priority`."""
    try:
        return _TO_PRIORITY[priority]
    except (KeyError, TypeError):  # TypeError: unhashable
        raise invalid_value(errors.InvalidClientState, f"unknown priority {priority!r}") from None


def from_priority(priority: proto.Priority) -> str | None:
    """A core priority as python-gearman's ``PRIORITY_*`` value."""
    return _FROM_PRIORITY[priority]


#: python-gearman master's TLS keys of a host dict: all of them, or none.
TLS_KEYS = ("keyfile", "certfile", "ca_certs")


def host_entries(
    host_list: str | tuple[str, int] | list[Any] | None, misuse: Misuse = errors.GearmanError
) -> list[Any]:
    """The entries of python-gearman's ``host_list`` (see :func:`parse_host_list`),
    as a list: read once, also when it is an iterator.

    Raises:
        GearmanError: *misuse*'s ``TypeError`` flavour: not a list of entries.
    """
    if host_list is None:
        return ["localhost"]
    if isinstance(host_list, (str, tuple)):
        return [host_list]
    try:
        return list(host_list)
    except TypeError:
        raise invalid_type(misuse, f"bad host_list {host_list!r}") from None


def _address(entry: Any, misuse: Misuse = errors.GearmanError) -> proto.ServerAddress:
    if isinstance(entry, dict):
        if "host" not in entry:
            raise invalid_value(misuse, f"host_list entry {entry!r} has no 'host'")
        spec = (entry["host"], entry.get("port", proto.DEFAULT_PORT))
    else:
        spec = entry
    try:
        return proto.parse_server(spec)
    except proto.LocalValueError as error:
        raise map_error(error, misuse) from error


def parse_host_list(
    host_list: str | tuple[str, int] | list[Any] | None,
    misuse: Misuse = errors.GearmanError,
) -> list[proto.ServerAddress]:
    """Server addresses from python-gearman's ``host_list``.

    Entries: ``"host"``, ``"host:port"``, ``"[v6]:port"``, ``(host, port)``
    or a dict with ``host`` and ``port`` (and python-gearman master's TLS
    keys, see :func:`tls_settings`).  A single string is one server;
    None is ``localhost:4730``; an empty list is no server at all (accepted,
    as python-gearman did: using the object then raises ``ServerUnavailable``).
    Ports are 1 to 65535 in ASCII digits (the core's rule).

    Raises:
        GearmanError: *misuse*'s ``ValueError`` flavour (``InvalidValue``
            without a role) for an entry that names no server.
    """
    servers = []
    for entry in host_entries(host_list, misuse):
        address = _address(entry, misuse)
        if address not in servers:
            servers.append(address)
    return servers


def tls_settings(
    host_list: str | tuple[str, int] | list[Any] | None,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    open_stream: object = None,
) -> TlsSettings | None:
    """The TLS a facade's arguments ask for (None: every link in plaintext).

    *ssl_context* makes every link TLS; a host dict that names
    ``keyfile``, ``certfile`` and ``ca_certs`` (python-gearman master's
    entry) makes its server's link TLS with a context built from those
    files, which verifies the server's certificate and host name.

    Raises:
        TlsError: a host dict with only some of the TLS keys (python-gearman
            master then fell back to plaintext); *server_hostname* without
            any TLS link; TLS with *open_stream* (a custom transport does
            its own TLS).
    """
    files: dict[proto.ServerAddress, CertFiles] = {}
    for entry in host_entries(host_list):
        if not isinstance(entry, dict) or not any(entry.get(key) for key in TLS_KEYS):
            continue
        if not all(entry.get(key) for key in TLS_KEYS):
            raise errors.TlsError(
                f"host entry {entry!r}: TLS needs all of keyfile, certfile and ca_certs"
            )
        files[_address(entry)] = CertFiles(*(os.fspath(entry[key]) for key in TLS_KEYS))
    if ssl_context is None and not files:
        if server_hostname is not None:
            raise errors.TlsError("server_hostname= names a certificate: give ssl_context= too")
        return None
    if open_stream is not None:
        raise errors.TlsError(
            "open_stream= makes the whole transport: do the TLS there, or leave it out"
        )
    return TlsSettings(ssl_context, server_hostname, files)


def job_status(numerator: bytes | None) -> int:
    """A WORK_STATUS field as an int, read like gearmand does (C ``atoi``)."""
    if not numerator:
        return 0
    digits = numerator.lstrip()
    sign = -1 if digits[:1] == b"-" else 1
    digits = digits.lstrip(b"+-")
    end = 0
    while end < len(digits) and 0x30 <= digits[end] <= 0x39:
        end += 1
    return sign * int(digits[:end]) if end else 0


def map_error(
    error: proto.ProtocolError, misuse: Misuse = errors.InvalidClientState
) -> errors.GearmanError:
    """The python-gearman error for a core error (raise it ``from`` it), keeping
    the core's message.

    The one table of the bindings: AttemptsExceeded -> ExceededConnectionAttempts,
    NoServerAvailable -> ServerUnavailable, RemoteProtocolError and
    RequestIgnored (the server does not support a request) -> ProtocolError,
    and a LocalProtocolError (a move or a value the protocol forbids) -> *misuse*,
    the role's ``Invalid*State`` class: its ``Invalid*Value`` flavour for a
    LocalValueError, its ``Invalid*Type`` flavour for a LocalTypeError.
    """
    if isinstance(error, proto.AttemptsExceeded):
        return errors.ExceededConnectionAttempts(str(error))
    if isinstance(error, proto.NoServerAvailable):
        return errors.ServerUnavailable(str(error))
    if isinstance(error, (proto.RemoteProtocolError, proto.RequestIgnored)):
        return errors.ProtocolError(str(error))
    if isinstance(error, proto.LocalValueError):
        return invalid_value(misuse, str(error))
    if isinstance(error, proto.LocalTypeError):
        return invalid_type(misuse, str(error))
    return misuse(str(error))
