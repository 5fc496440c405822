"""The admin text protocol: command lines out, typed replies in.

Owns: how an :class:`AdminRequest` is written, which commands answer with a
block ending in ``.`` and which with one line, and parsing those replies
into typed events.  Does not own: splitting the byte stream into lines
(``_buffer``) or matching replies to commands (``_admin_connection``).

Facts from ../shared/PROTOCOL.md section 8: commands end in CRLF (a bare LF
makes ``create function`` lose the name's last character); replies mix
``\\n`` and ``\\r\\n`` (the buffer strips one CR); ``version``, ``getpid``
and ``verbose`` answer ``OK <value>``; errors are ``ERR <CODE> <message>``
with ``+`` for spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._errors import RemoteProtocolError
from ._events import (
    AdminCommand,
    AdminError,
    AdminOk,
    AdminRequest,
    Event,
    FunctionPriorityStatus,
    FunctionStatus,
    JobInfo,
    JobsReply,
    PidReply,
    PriorityStatusReply,
    StatusReply,
    UniqueJobsReply,
    VerboseReply,
    VersionReply,
    WorkerInfo,
    WorkersReply,
)
from ._wire import decimal_field

__all__ = [
    "BLOCK_COMMANDS",
    "BLOCK_END",
    "encode_admin_request",
    "parse_block_reply",
    "parse_error_line",
    "parse_line_reply",
]

#: commands whose reply is a list of lines ending with a line ``.``.
BLOCK_COMMANDS = frozenset(
    {
        AdminCommand.STATUS,
        AdminCommand.PRIORITY_STATUS,
        AdminCommand.WORKERS,
        AdminCommand.SHOW_JOBS,
        AdminCommand.SHOW_UNIQUE_JOBS,
    }
)
BLOCK_END = b"."


def encode_admin_request(request: AdminRequest) -> bytes:
    """The command line for *request*, CRLF-terminated as gearadmin sends it."""
    return b" ".join((request.command.value, *request.arguments)) + b"\r\n"


def _number(text: bytes, what: str) -> int:
    return decimal_field(text, f"admin reply: {what}")


def _columns(line: bytes, count: int, what: str) -> list[bytes]:
    """Split a tab-separated line whose first column may itself hold tabs."""
    parts = line.rsplit(b"\t", count - 1)
    if len(parts) != count:
        raise RemoteProtocolError(f"admin reply: {what} line {line!r} needs {count} columns")
    return parts


def _status(lines: Sequence[bytes], request: AdminRequest) -> Event:
    rows = []
    for line in lines:
        function, total, running, workers = _columns(line, 4, "status")
        rows.append(
            FunctionStatus(
                function,
                _number(total, "total"),
                _number(running, "running"),
                _number(workers, "workers"),
            )
        )
    return StatusReply(functions=tuple(rows), request=request)


def _priority_status(lines: Sequence[bytes], request: AdminRequest) -> Event:
    rows = []
    for line in lines:
        function, high, normal, low, workers = _columns(line, 5, "prioritystatus")
        rows.append(
            FunctionPriorityStatus(
                function,
                _number(high, "high"),
                _number(normal, "normal"),
                _number(low, "low"),
                _number(workers, "workers"),
            )
        )
    return PriorityStatusReply(functions=tuple(rows), request=request)


def _worker(line: bytes) -> WorkerInfo:
    # "FD IP ID : F1 F2"; the id may contain spaces, so find the " :" that
    # ends it: the first one followed by the end of the line or a space.
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        raise RemoteProtocolError(f"admin reply: workers line {line!r} is malformed")
    fd, ip, rest = parts
    if rest == b":" or rest.startswith(b": "):
        # gearmand always prints an id ("-" when unset); tolerate none.
        client_id, functions = b"", rest[1:]
    else:
        cut = rest.find(b" :")
        while cut >= 0 and not (cut + 2 == len(rest) or rest[cut + 2] == 0x20):
            cut = rest.find(b" :", cut + 1)
        if cut < 0:
            raise RemoteProtocolError(f"admin reply: workers line {line!r} has no ':'")
        client_id, functions = rest[:cut], rest[cut + 2 :]
    return WorkerInfo(fd, ip, client_id, tuple(functions.split()))


def _workers(lines: Sequence[bytes], request: AdminRequest) -> Event:
    return WorkersReply(workers=tuple(_worker(line) for line in lines), request=request)


def _flag(text: bytes, what: str) -> bool:
    if text not in (b"0", b"1"):
        raise RemoteProtocolError(f"admin reply: {what} {text!r} is not 0 or 1")
    return text == b"1"


def _jobs(lines: Sequence[bytes], request: AdminRequest) -> Event:
    rows = []
    for line in lines:
        handle, retries, ignored, background = _columns(line, 4, "show jobs")
        rows.append(
            JobInfo(
                handle,
                _number(retries, "retries"),
                _flag(ignored, "ignore"),
                _flag(background, "queued"),
            )
        )
    return JobsReply(jobs=tuple(rows), request=request)


def _unique_jobs(lines: Sequence[bytes], request: AdminRequest) -> Event:
    return UniqueJobsReply(uniques=tuple(lines), request=request)


_BLOCK_PARSERS: dict[AdminCommand, Callable[[Sequence[bytes], AdminRequest], Event]] = {
    AdminCommand.STATUS: _status,
    AdminCommand.PRIORITY_STATUS: _priority_status,
    AdminCommand.WORKERS: _workers,
    AdminCommand.SHOW_JOBS: _jobs,
    AdminCommand.SHOW_UNIQUE_JOBS: _unique_jobs,
}


def parse_block_reply(request: AdminRequest, lines: Sequence[bytes]) -> Event:
    """Turn the lines of a block reply (without the final ``.``) into an event."""
    return _BLOCK_PARSERS[request.command](lines, request)


def parse_error_line(request: AdminRequest, line: bytes) -> AdminError | None:
    """An :class:`AdminError` if *line* is an ``ERR`` reply, else None.

    Block replies never start with ``ERR `` for these commands: their list
    lines hold tabs (status, show jobs) or ``" :"`` (workers).  A unique id
    may be anything, so ``show unique jobs`` lines are never taken as errors.
    """
    if request.command is AdminCommand.SHOW_UNIQUE_JOBS:
        return None
    if line != b"ERR" and not line.startswith(b"ERR "):
        return None
    if request.command in BLOCK_COMMANDS and b"\t" in line:
        return None
    code, _, message = line[4:].partition(b" ")
    return AdminError(code=code, message=message.replace(b"+", b" "), request=request)


def _ok_value(line: bytes) -> bytes | None:
    if line == b"OK":
        return b""
    if line.startswith(b"OK "):
        return line[3:]
    return None


def parse_line_reply(request: AdminRequest, line: bytes) -> Event:
    """Turn the one-line reply to a non-block command into an event.

    Raises:
        RemoteProtocolError: the line is neither ``OK...`` nor ``ERR...``
            (``version`` alone also accepts a bare version string, as older
            servers send).
    """
    error = parse_error_line(request, line)
    if error is not None:
        return error
    value = _ok_value(line)
    command = request.command
    if command is AdminCommand.VERSION:
        return VersionReply(version=line if value is None else value, request=request)
    if value is None:
        raise RemoteProtocolError(
            f"admin reply to {command.name}: expected OK or ERR, got {line!r}"
        )
    if command is AdminCommand.GETPID:
        return PidReply(pid=_number(value, "pid"), request=request)
    if command is AdminCommand.VERBOSE:
        return VerboseReply(level=value, request=request)
    return AdminOk(text=value.strip(), request=request)
