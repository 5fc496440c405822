"""Events to packet bytes: which packet type each outgoing event becomes.

Owns: the mapping from an outgoing event (one class per packet family) to
its exact packet type and argument tuple.  Does not own: whether the event
may be sent now (the connections), or the byte layout (``_wire``).
"""

from __future__ import annotations

from collections.abc import Callable

from ._admin import encode_admin_request
from ._errors import LocalProtocolError
from ._events import (
    AdminRequest,
    CanDo,
    CantDo,
    EchoRequest,
    Event,
    GetStatus,
    GetStatusUnique,
    Priority,
    ResetAbilities,
    SetClientId,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
)
from ._wire import HEADER, HEADER_SIZE, REQ, SERVER_FIELD_REGION, PacketType, encode_packet

__all__ = ["SUBMIT_TYPES", "encode_event"]

_T = PacketType

#: (priority, background) -> packet type of the SUBMIT_JOB family.
SUBMIT_TYPES: dict[tuple[Priority, bool], PacketType] = {
    (Priority.NORMAL, False): _T.SUBMIT_JOB,
    (Priority.NORMAL, True): _T.SUBMIT_JOB_BG,
    (Priority.HIGH, False): _T.SUBMIT_JOB_HIGH,
    (Priority.HIGH, True): _T.SUBMIT_JOB_HIGH_BG,
    (Priority.LOW, False): _T.SUBMIT_JOB_LOW,
    (Priority.LOW, True): _T.SUBMIT_JOB_LOW_BG,
}


# The hot packets (submissions, job results) are built in one join, without
# ``encode_packet``'s checks: their events were validated when built (no NUL
# in fields, bytes only), so only the server's field-region limit is left,
# and a packet over it goes the slow way, which raises.
_PACK_HEADER = HEADER.pack
_NUL = b"\0"
_SUBMIT_FIELDS_LIMIT = SERVER_FIELD_REGION - HEADER_SIZE - 2
_HANDLE_LIMIT = SERVER_FIELD_REGION - HEADER_SIZE - 1
#: Priority -> (foreground type, background type), as plain ints.
_SUBMIT_BY_PRIORITY = {
    priority: (int(SUBMIT_TYPES[priority, False]), int(SUBMIT_TYPES[priority, True]))
    for priority in Priority
}
_NORMAL_TYPES = _SUBMIT_BY_PRIORITY[Priority.NORMAL]


def _submit(e: SubmitJob) -> bytes:
    function, unique, payload = e.function, e.unique, e.payload
    priority = e.priority
    # `is` first: hashing an Enum member runs Python code.
    types = _NORMAL_TYPES if priority is Priority.NORMAL else _SUBMIT_BY_PRIORITY[priority]
    packet_type = types[e.background]
    fields = len(function) + len(unique)
    if fields > _SUBMIT_FIELDS_LIMIT:
        return encode_packet(REQ, PacketType(packet_type), (function, unique, payload))
    header = _PACK_HEADER(REQ, packet_type, fields + 2 + len(payload))
    return b"".join((header, function, _NUL, unique, _NUL, payload))


def _handle_and_payload(packet_type: PacketType) -> Callable[[Event], bytes]:
    number = int(packet_type)

    def encode(e: Event) -> bytes:
        handle: bytes = e.handle  # type: ignore[attr-defined]
        payload: bytes = e.payload  # type: ignore[attr-defined]
        if len(handle) > _HANDLE_LIMIT:
            return encode_packet(REQ, packet_type, (handle, payload))
        header = _PACK_HEADER(REQ, number, len(handle) + 1 + len(payload))
        return b"".join((header, handle, _NUL, payload))

    return encode


def _submit_epoch(e: SubmitJobEpoch) -> bytes:
    arguments = (e.function, e.unique, b"%d" % e.epoch, e.payload)
    return encode_packet(REQ, _T.SUBMIT_JOB_EPOCH, arguments)


def _submit_reduce(e: SubmitReduceJob) -> bytes:
    packet_type = _T.SUBMIT_REDUCE_JOB_BACKGROUND if e.background else _T.SUBMIT_REDUCE_JOB
    return encode_packet(REQ, packet_type, (e.function, e.unique, e.reducer, b"", e.payload))


def _can_do(e: CanDo) -> bytes:
    if e.timeout is None:
        return encode_packet(REQ, _T.CAN_DO, (e.function,))
    return encode_packet(REQ, _T.CAN_DO_TIMEOUT, (e.function, b"%d" % e.timeout))


def _one(packet_type: PacketType, attribute: str) -> Callable[[Event], bytes]:
    def encode(e: Event) -> bytes:
        return encode_packet(REQ, packet_type, (getattr(e, attribute),))

    return encode


def _work_status(e: WorkStatus) -> bytes:
    return encode_packet(REQ, _T.WORK_STATUS, (e.handle, e.numerator, e.denominator))


def _reset(e: ResetAbilities) -> bytes:
    return encode_packet(REQ, _T.RESET_ABILITIES, ())


_ENCODERS: dict[type[Event], Callable[[Event], bytes]] = {
    SubmitJob: _submit,  # type: ignore[dict-item]
    SubmitJobEpoch: _submit_epoch,  # type: ignore[dict-item]
    SubmitReduceJob: _submit_reduce,  # type: ignore[dict-item]
    GetStatus: _one(_T.GET_STATUS, "handle"),
    GetStatusUnique: _one(_T.GET_STATUS_UNIQUE, "unique"),
    SetOption: _one(_T.OPTION_REQ, "option"),
    EchoRequest: _one(_T.ECHO_REQ, "payload"),
    SetClientId: _one(_T.SET_CLIENT_ID, "client_id"),
    CanDo: _can_do,  # type: ignore[dict-item]
    CantDo: _one(_T.CANT_DO, "function"),
    ResetAbilities: _reset,  # type: ignore[dict-item]
    WorkData: _handle_and_payload(_T.WORK_DATA),
    WorkWarning: _handle_and_payload(_T.WORK_WARNING),
    WorkStatus: _work_status,  # type: ignore[dict-item]
    WorkComplete: _handle_and_payload(_T.WORK_COMPLETE),
    WorkFail: _one(_T.WORK_FAIL, "handle"),
    WorkException: _handle_and_payload(_T.WORK_EXCEPTION),
    AdminRequest: encode_admin_request,  # type: ignore[dict-item]
}


def encode_event(event: Event) -> bytes:
    """The bytes that carry *event* to the server.

    Raises:
        LocalProtocolError: *event* is not something a peer sends to a server.
    """
    encoder = _ENCODERS.get(type(event))
    if encoder is None:
        raise LocalProtocolError(f"{type(event).__name__} is not sent to a server")
    return encoder(event)
