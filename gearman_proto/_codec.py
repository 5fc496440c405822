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
from ._wire import REQ, PacketType, encode_packet

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


def _submit(e: SubmitJob) -> bytes:
    return encode_packet(
        REQ, SUBMIT_TYPES[e.priority, e.background], (e.function, e.unique, e.payload)
    )


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


def _two(packet_type: PacketType, first: str, second: str) -> Callable[[Event], bytes]:
    def encode(e: Event) -> bytes:
        return encode_packet(REQ, packet_type, (getattr(e, first), getattr(e, second)))

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
    WorkData: _two(_T.WORK_DATA, "handle", "payload"),
    WorkWarning: _two(_T.WORK_WARNING, "handle", "payload"),
    WorkStatus: _work_status,  # type: ignore[dict-item]
    WorkComplete: _two(_T.WORK_COMPLETE, "handle", "payload"),
    WorkFail: _one(_T.WORK_FAIL, "handle"),
    WorkException: _two(_T.WORK_EXCEPTION, "handle", "payload"),
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
