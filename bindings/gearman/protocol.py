"""python-gearman's ``protocol`` module: the packet numbers, names and fields.

The numbers come from the core's :class:`gearman_proto.PacketType` (every
packet, 1-42, including those python-gearman never knew) and the field
names per packet from the core's :data:`gearman_proto.LAYOUTS`, spelled the
way python-gearman spelled them (``task``, ``job_handle``, ``data``...).
Encoding and decoding belong to the core: use
:class:`gearman_proto.ClientConnection` and friends, or
:func:`gearman_proto.encode_packet` and :func:`gearman_proto.decode_body`.
"""

from __future__ import annotations

import gearman_proto as proto

from .constants import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NONE

# python-gearman 2.0.2 had this in this module, and code imports it from here.
from .errors import ProtocolError

__all__ = ["ProtocolError", "get_command_name", "submit_cmd_for_background_priority"]

_T = proto.PacketType

NULL_CHAR = b"\0"
MAGIC_RES_STRING = proto.RES
MAGIC_REQ_STRING = proto.REQ
COMMAND_HEADER_SIZE = 12

GEARMAN_COMMAND_CAN_DO = int(_T.CAN_DO)
GEARMAN_COMMAND_CANT_DO = int(_T.CANT_DO)
GEARMAN_COMMAND_RESET_ABILITIES = int(_T.RESET_ABILITIES)
GEARMAN_COMMAND_PRE_SLEEP = int(_T.PRE_SLEEP)
GEARMAN_COMMAND_NOOP = int(_T.NOOP)
GEARMAN_COMMAND_SUBMIT_JOB = int(_T.SUBMIT_JOB)
GEARMAN_COMMAND_JOB_CREATED = int(_T.JOB_CREATED)
GEARMAN_COMMAND_GRAB_JOB = int(_T.GRAB_JOB)
GEARMAN_COMMAND_NO_JOB = int(_T.NO_JOB)
GEARMAN_COMMAND_JOB_ASSIGN = int(_T.JOB_ASSIGN)
GEARMAN_COMMAND_WORK_STATUS = int(_T.WORK_STATUS)
GEARMAN_COMMAND_WORK_COMPLETE = int(_T.WORK_COMPLETE)
GEARMAN_COMMAND_WORK_FAIL = int(_T.WORK_FAIL)
GEARMAN_COMMAND_GET_STATUS = int(_T.GET_STATUS)
GEARMAN_COMMAND_ECHO_REQ = int(_T.ECHO_REQ)
GEARMAN_COMMAND_ECHO_RES = int(_T.ECHO_RES)
GEARMAN_COMMAND_SUBMIT_JOB_BG = int(_T.SUBMIT_JOB_BG)
GEARMAN_COMMAND_ERROR = int(_T.ERROR)
GEARMAN_COMMAND_STATUS_RES = int(_T.STATUS_RES)
GEARMAN_COMMAND_SUBMIT_JOB_HIGH = int(_T.SUBMIT_JOB_HIGH)
GEARMAN_COMMAND_SET_CLIENT_ID = int(_T.SET_CLIENT_ID)
GEARMAN_COMMAND_CAN_DO_TIMEOUT = int(_T.CAN_DO_TIMEOUT)
GEARMAN_COMMAND_ALL_YOURS = int(_T.ALL_YOURS)
GEARMAN_COMMAND_WORK_EXCEPTION = int(_T.WORK_EXCEPTION)
GEARMAN_COMMAND_OPTION_REQ = int(_T.OPTION_REQ)
GEARMAN_COMMAND_OPTION_RES = int(_T.OPTION_RES)
GEARMAN_COMMAND_WORK_DATA = int(_T.WORK_DATA)
GEARMAN_COMMAND_WORK_WARNING = int(_T.WORK_WARNING)
GEARMAN_COMMAND_GRAB_JOB_UNIQ = int(_T.GRAB_JOB_UNIQ)
GEARMAN_COMMAND_JOB_ASSIGN_UNIQ = int(_T.JOB_ASSIGN_UNIQ)
GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG = int(_T.SUBMIT_JOB_HIGH_BG)
GEARMAN_COMMAND_SUBMIT_JOB_LOW = int(_T.SUBMIT_JOB_LOW)
GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG = int(_T.SUBMIT_JOB_LOW_BG)
GEARMAN_COMMAND_SUBMIT_JOB_SCHED = int(_T.SUBMIT_JOB_SCHED)
GEARMAN_COMMAND_SUBMIT_JOB_EPOCH = int(_T.SUBMIT_JOB_EPOCH)
GEARMAN_COMMAND_SUBMIT_REDUCE_JOB = int(_T.SUBMIT_REDUCE_JOB)
GEARMAN_COMMAND_SUBMIT_REDUCE_JOB_BACKGROUND = int(_T.SUBMIT_REDUCE_JOB_BACKGROUND)
GEARMAN_COMMAND_GRAB_JOB_ALL = int(_T.GRAB_JOB_ALL)
GEARMAN_COMMAND_JOB_ASSIGN_ALL = int(_T.JOB_ASSIGN_ALL)
GEARMAN_COMMAND_GET_STATUS_UNIQUE = int(_T.GET_STATUS_UNIQUE)
GEARMAN_COMMAND_STATUS_RES_UNIQUE = int(_T.STATUS_RES_UNIQUE)

#: python-gearman's pseudo packet number for an admin text command.
GEARMAN_COMMAND_TEXT_COMMAND = 9999

#: how python-gearman named the core's fields.
_FIELD_NAMES = {
    "function": "task",
    "handle": "job_handle",
    "code": "error_code",
    "text": "error_text",
    "option": "option_name",
}

#: the fields of each packet, in wire order, by python-gearman's names.
GEARMAN_PARAMS_FOR_COMMAND: dict[int, list[str]] = {
    int(packet): [_FIELD_NAMES.get(name, name) for name in layout.arguments]
    for packet, layout in proto.LAYOUTS.items()
    if packet is not _T.UNUSED
}
GEARMAN_PARAMS_FOR_COMMAND[GEARMAN_COMMAND_TEXT_COMMAND] = ["raw_text"]

#: ``GEARMAN_COMMAND_CAN_DO`` and so on, by number.
GEARMAN_COMMAND_TO_NAME: dict[int, str] = {
    int(packet): f"GEARMAN_COMMAND_{packet.name}" for packet in _T if packet is not _T.UNUSED
}
GEARMAN_COMMAND_TO_NAME[GEARMAN_COMMAND_TEXT_COMMAND] = "GEARMAN_COMMAND_TEXT_COMMAND"

GEARMAN_SERVER_COMMAND_STATUS = "status"
GEARMAN_SERVER_COMMAND_VERSION = "version"
GEARMAN_SERVER_COMMAND_WORKERS = "workers"
GEARMAN_SERVER_COMMAND_MAXQUEUE = "maxqueue"
GEARMAN_SERVER_COMMAND_SHUTDOWN = "shutdown"
GEARMAN_SERVER_COMMAND_GETPID = "getpid"
GEARMAN_SERVER_COMMAND_SHOW_JOBS = "show jobs"
GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS = "show unique jobs"
GEARMAN_SERVER_COMMAND_CANCEL_JOB = "cancel job"

_SUBMIT = {
    (False, PRIORITY_NONE): GEARMAN_COMMAND_SUBMIT_JOB,
    (True, PRIORITY_NONE): GEARMAN_COMMAND_SUBMIT_JOB_BG,
    (False, PRIORITY_LOW): GEARMAN_COMMAND_SUBMIT_JOB_LOW,
    (True, PRIORITY_LOW): GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG,
    (False, PRIORITY_HIGH): GEARMAN_COMMAND_SUBMIT_JOB_HIGH,
    (True, PRIORITY_HIGH): GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG,
}


def get_command_name(cmd_type: int) -> str | int:
    """``"GEARMAN_COMMAND_CAN_DO"`` for 1, and so on; an unknown number is
    returned as it is (python-gearman's behaviour)."""
    return GEARMAN_COMMAND_TO_NAME.get(cmd_type, cmd_type)


def submit_cmd_for_background_priority(background: bool, priority: str | None) -> int:
    """The SUBMIT_JOB packet number for a background flag and a ``PRIORITY_*``.

    Raises:
        ValueError: an unknown priority.
    """
    try:
        return _SUBMIT[bool(background), priority]
    except KeyError:
        raise ValueError(f"unknown priority {priority!r}") from None
