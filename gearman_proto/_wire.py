"""The binary packet grammar: packet types, the layout table, encode and decode.

Owns: the 12-byte header, the per-type table of magics and argument names,
and the two functions that turn argument tuples into packet bytes and packet
bodies back into argument tuples.  Does not own: buffering (``_buffer``),
what a packet means to a connection (the ``_*connection`` modules), or the
admin text protocol (``_admin``).

Facts from ../shared/PROTOCOL.md sections 1 and 2: a packet is
``magic (4) | type (u32 BE) | size (u32 BE) | body``; the body is the
arguments joined by single NULs, and only the last argument may contain NULs.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import LocalProtocolError, LocalValueError, RemoteProtocolError

__all__ = [
    "HEADER",
    "LAYOUTS",
    "MAX_DECIMAL_DIGITS",
    "REQ",
    "RES",
    "Layout",
    "PacketType",
    "decimal_field",
    "decode_body",
    "encode_packet",
]

#: magic, packet type, body size; network byte order (PROTOCOL.md 1.1).
HEADER = struct.Struct(">4sII")
HEADER_SIZE = HEADER.size
REQ = b"\0REQ"
RES = b"\0RES"

#: gearmand parses every field but a trailing data blob inside one 8 KiB
#: receive buffer and drops the connection when they do not fit
#: (PROTOCOL.md 1.1: 8000 bytes worked, 9000 closed the connection).
SERVER_FIELD_REGION = 8192


class PacketType(enum.IntEnum):
    """Every binary packet type of the Gearman protocol (PROTOCOL.md section 2)."""

    CAN_DO = 1
    CANT_DO = 2
    RESET_ABILITIES = 3
    PRE_SLEEP = 4
    UNUSED = 5
    NOOP = 6
    SUBMIT_JOB = 7
    JOB_CREATED = 8
    GRAB_JOB = 9
    NO_JOB = 10
    JOB_ASSIGN = 11
    WORK_STATUS = 12
    WORK_COMPLETE = 13
    WORK_FAIL = 14
    GET_STATUS = 15
    ECHO_REQ = 16
    ECHO_RES = 17
    SUBMIT_JOB_BG = 18
    ERROR = 19
    STATUS_RES = 20
    SUBMIT_JOB_HIGH = 21
    SET_CLIENT_ID = 22
    CAN_DO_TIMEOUT = 23
    ALL_YOURS = 24
    WORK_EXCEPTION = 25
    OPTION_REQ = 26
    OPTION_RES = 27
    WORK_DATA = 28
    WORK_WARNING = 29
    GRAB_JOB_UNIQ = 30
    JOB_ASSIGN_UNIQ = 31
    SUBMIT_JOB_HIGH_BG = 32
    SUBMIT_JOB_LOW = 33
    SUBMIT_JOB_LOW_BG = 34
    SUBMIT_JOB_SCHED = 35
    SUBMIT_JOB_EPOCH = 36
    SUBMIT_REDUCE_JOB = 37
    SUBMIT_REDUCE_JOB_BACKGROUND = 38
    GRAB_JOB_ALL = 39
    JOB_ASSIGN_ALL = 40
    GET_STATUS_UNIQUE = 41
    STATUS_RES_UNIQUE = 42


@dataclass(frozen=True, slots=True)
class Layout:
    """How one packet type looks on the wire.

    Attributes:
        magics: the magics the type may carry (``REQ`` towards the server,
            ``RES`` from it; ``WORK_*`` travel both ways).
        arguments: argument names in wire order; the last one is the rest of
            the body and may contain NULs.
        data_last: the last argument is an opaque data blob, which gearmand
            reads outside its 8 KiB field buffer.
    """

    magics: frozenset[bytes]
    arguments: tuple[str, ...]
    data_last: bool = False


def _layout(magic: str, *arguments: str, data_last: bool = False) -> Layout:
    magics = {"REQ": {REQ}, "RES": {RES}, "BOTH": {REQ, RES}, "NONE": set()}[magic]
    return Layout(frozenset(magics), arguments, data_last)


_SUBMIT = ("function", "unique", "data")
_T = PacketType

#: The grammar.  One row per packet type; encoding and decoding read it.
LAYOUTS: dict[PacketType, Layout] = {
    _T.CAN_DO: _layout("REQ", "function"),
    _T.CANT_DO: _layout("REQ", "function"),
    _T.RESET_ABILITIES: _layout("REQ"),
    _T.PRE_SLEEP: _layout("REQ"),
    _T.UNUSED: _layout("NONE"),
    _T.NOOP: _layout("RES"),
    _T.SUBMIT_JOB: _layout("REQ", *_SUBMIT, data_last=True),
    _T.JOB_CREATED: _layout("RES", "handle"),
    _T.GRAB_JOB: _layout("REQ"),
    _T.NO_JOB: _layout("RES"),
    _T.JOB_ASSIGN: _layout("RES", "handle", "function", "data", data_last=True),
    _T.WORK_STATUS: _layout("BOTH", "handle", "numerator", "denominator"),
    _T.WORK_COMPLETE: _layout("BOTH", "handle", "data", data_last=True),
    _T.WORK_FAIL: _layout("BOTH", "handle"),
    _T.GET_STATUS: _layout("REQ", "handle"),
    _T.ECHO_REQ: _layout("REQ", "data", data_last=True),
    _T.ECHO_RES: _layout("RES", "data", data_last=True),
    _T.SUBMIT_JOB_BG: _layout("REQ", *_SUBMIT, data_last=True),
    _T.ERROR: _layout("RES", "code", "text"),
    _T.STATUS_RES: _layout("RES", "handle", "known", "running", "numerator", "denominator"),
    _T.SUBMIT_JOB_HIGH: _layout("REQ", *_SUBMIT, data_last=True),
    _T.SET_CLIENT_ID: _layout("REQ", "client_id"),
    _T.CAN_DO_TIMEOUT: _layout("REQ", "function", "timeout"),
    _T.ALL_YOURS: _layout("REQ"),
    _T.WORK_EXCEPTION: _layout("BOTH", "handle", "data", data_last=True),
    _T.OPTION_REQ: _layout("REQ", "option"),
    _T.OPTION_RES: _layout("RES", "option"),
    _T.WORK_DATA: _layout("BOTH", "handle", "data", data_last=True),
    _T.WORK_WARNING: _layout("BOTH", "handle", "data", data_last=True),
    _T.GRAB_JOB_UNIQ: _layout("REQ"),
    _T.JOB_ASSIGN_UNIQ: _layout("RES", "handle", "function", "unique", "data", data_last=True),
    _T.SUBMIT_JOB_HIGH_BG: _layout("REQ", *_SUBMIT, data_last=True),
    _T.SUBMIT_JOB_LOW: _layout("REQ", *_SUBMIT, data_last=True),
    _T.SUBMIT_JOB_LOW_BG: _layout("REQ", *_SUBMIT, data_last=True),
    _T.SUBMIT_JOB_SCHED: _layout(
        "REQ",
        "function",
        "unique",
        "minute",
        "hour",
        "day_of_month",
        "month",
        "day_of_week",
        "data",
        data_last=True,
    ),
    _T.SUBMIT_JOB_EPOCH: _layout("REQ", "function", "unique", "epoch", "data", data_last=True),
    # Five fields, not the four of the PROTOCOL text (PROTOCOL.md 3, trap 7).
    _T.SUBMIT_REDUCE_JOB: _layout(
        "REQ", "function", "unique", "reducer", "aggregator", "data", data_last=True
    ),
    _T.SUBMIT_REDUCE_JOB_BACKGROUND: _layout(
        "REQ", "function", "unique", "reducer", "aggregator", "data", data_last=True
    ),
    _T.GRAB_JOB_ALL: _layout("REQ"),
    _T.JOB_ASSIGN_ALL: _layout(
        "RES", "handle", "function", "unique", "reducer", "data", data_last=True
    ),
    _T.GET_STATUS_UNIQUE: _layout("REQ", "unique"),
    _T.STATUS_RES_UNIQUE: _layout(
        "RES", "unique", "known", "running", "numerator", "denominator", "client_count"
    ),
}

#: argument count per type number, for the decoder's hot path.
ARGUMENT_COUNTS: dict[int, int] = {int(t): len(layout.arguments) for t, layout in LAYOUTS.items()}

_HEADER_PACK = HEADER.pack


def encode_packet(magic: bytes, packet_type: PacketType, arguments: Sequence[bytes]) -> bytes:
    """Return the bytes of one packet.

    Args:
        magic: ``REQ`` or ``RES``; must be one the type may carry.
        packet_type: the type.
        arguments: exactly as many byte strings as the layout names; only the
            last may contain NUL bytes.

    Raises:
        LocalProtocolError: wrong magic or wrong argument count.
        LocalValueError: a NUL inside a field that is not the last, or
            (towards the server) fields too long for gearmand's 8 KiB field
            buffer.
    """
    layout = LAYOUTS[packet_type]
    if magic not in layout.magics:
        raise LocalProtocolError(f"{packet_type.name} cannot be sent with magic {magic!r}")
    count = len(layout.arguments)
    if len(arguments) != count:
        raise LocalProtocolError(
            f"{packet_type.name} takes {count} arguments {layout.arguments}, got {len(arguments)}"
        )
    for name, value in zip(layout.arguments[:-1], arguments[:-1], strict=True):
        if b"\0" in value:
            raise LocalValueError(f"{packet_type.name} {name} must not contain a NUL byte")
    if count and magic == REQ:
        fields = arguments[:-1] if layout.data_last else arguments
        region = HEADER_SIZE + sum(len(value) + 1 for value in fields)
        if region > SERVER_FIELD_REGION:
            raise LocalValueError(
                f"{packet_type.name} fields take {region} bytes; gearmand closes the "
                f"connection above {SERVER_FIELD_REGION}"
            )
    body = b"\0".join(arguments) if count != 1 else arguments[0]
    return _HEADER_PACK(magic, packet_type, len(body)) + body


def decode_body(packet_type: int, body: bytes) -> list[bytes]:
    """Split a packet body into its arguments, as the layout table says.

    Raises:
        RemoteProtocolError: the body holds fewer arguments than the type
            has, or bytes for a type that has none.
    """
    count = ARGUMENT_COUNTS[packet_type]
    if count == 1:
        return [body]
    if count == 0:
        if body:
            raise RemoteProtocolError(
                f"{PacketType(packet_type).name} takes no arguments but carries "
                f"{len(body)} body bytes"
            )
        return []
    parts = body.split(b"\0", count - 1)
    if len(parts) != count:
        raise RemoteProtocolError(
            f"{PacketType(packet_type).name} needs {count} arguments, the body holds {len(parts)}"
        )
    return parts


#: numbers inside arguments are ASCII decimals; gearmand's are 32- or 64-bit
#: (status counts, pids), so 20 digits is plenty.  The cap also keeps a
#: hostile peer away from Python's slow (and, past 4300 digits, refused)
#: conversion of huge decimal strings.
MAX_DECIMAL_DIGITS = 20


def decimal_field(text: bytes, name: str) -> int:
    """Read an unsigned ASCII decimal sent by the server.

    Raises:
        RemoteProtocolError: not 1 to 20 digits.
    """
    if not text.isdigit() or len(text) > MAX_DECIMAL_DIGITS:
        raise RemoteProtocolError(f"{name} {text[:40]!r} is not a decimal number")
    return int(text)
