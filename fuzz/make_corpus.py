#!/usr/bin/env python3
"""Seed the fuzz corpora with the server traffic of the protocol transcripts.

Reads the transcripts of ../shared/PROTOCOL.md (section 9) and
../shared/protocol/capture_output.txt, splits them into one conversation per
socket, and writes per-target seeds to ``fuzz/corpus/<target>/doc-<sha1>``:
what the server sent, with the local moves that preceded it where the
target has them.  Rerun after the transcripts change::

    python fuzz/make_corpus.py [--shared DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import _harness as h

from gearman_proto import AdminCommand, GrabMode

FUZZ = Path(__file__).resolve().parent
PACKET = re.compile(
    r"(?P<name>\S+)\s+\\0(?P<magic>[A-Z]{3})\s+(?P<type>[0-9a-f]{8})\s+(?P<size>[0-9a-f]{8})"
    r" \| ?(?P<body>.*)$"
)
ARROW = re.compile(r"^\s*(?P<src>[A-Z][A-Z0-9]*)\s+->\s+(?P<dst>[A-Z][A-Z0-9]*)\s+(?P<rest>.*)$")
ESCAPE = re.compile(rb"\\(x[0-9a-f]{2}|.)")
SIMPLE_ESCAPES = {b"0": b"\0", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"\\": b"\\"}
SUBMITS = {  # packet name -> submit move argument (see ClientDriver.move_submit)
    "SUBMIT_JOB": 0,
    "SUBMIT_JOB_BG": 4,
    "SUBMIT_JOB_HIGH": 1,
    "SUBMIT_JOB_HIGH_BG": 5,
    "SUBMIT_JOB_LOW": 2,
    "SUBMIT_JOB_LOW_BG": 6,
    "SUBMIT_JOB_EPOCH": 2 << 3,
    "SUBMIT_JOB_SCHED": 2 << 3,
    "SUBMIT_REDUCE_JOB": 3 << 3,
    "SUBMIT_REDUCE_JOB_BACKGROUND": 3 << 3 | 4,
}
WORK = {cls.__name__: i for i, cls in enumerate(h.WorkerDriver.WORK)}
WORK_PACKETS = {
    "WORK_DATA": "WorkData",
    "WORK_WARNING": "WorkWarning",
    "WORK_STATUS": "WorkStatus",
    "WORK_COMPLETE": "WorkComplete",
    "WORK_FAIL": "WorkFail",
    "WORK_EXCEPTION": "WorkException",
}
GRABS = {
    "GRAB_JOB": GrabMode.PLAIN,
    "GRAB_JOB_UNIQ": GrabMode.UNIQ,
    "GRAB_JOB_ALL": GrabMode.ALL,
}
#: packets that only a worker sends, or receives
WORKER_SENDS = {"CAN_DO", "CAN_DO_TIMEOUT", "CANT_DO", "RESET_ABILITIES", "PRE_SLEEP"}
WORKER_SENDS |= set(GRABS) | set(WORK_PACKETS)
WORKER_GETS = {"NOOP", "NO_JOB", "JOB_ASSIGN", "JOB_ASSIGN_UNIQ", "JOB_ASSIGN_ALL"}


def unescape(text: str) -> bytes:
    """Undo the transcripts' escapes (PROTOCOL.md 9.2)."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        return bytes([int(code[1:], 16)]) if code[:1] == b"x" else SIMPLE_ESCAPES.get(code, code)

    return ESCAPE.sub(one, text.encode("latin-1"))


@dataclass
class Item:
    """One transcript line of a conversation: sent ("out"), received ("in") or EOF."""

    direction: str
    name: str = ""  # packet name, or TEXT / RAW
    data: bytes = b""  # the packet body, or the text bytes


@dataclass
class Conversation:
    items: list[Item] = field(default_factory=list)

    def names(self, direction: str) -> set[str]:
        return {item.name for item in self.items if item.direction == direction}

    def received(self) -> list[bytes]:
        return [item.data for item in self.items if item.direction == "in"]


def packet_line(rest: str) -> tuple[str, bytes] | None:
    """(name, wire bytes) of a ``NAME \\0RES TYPE SIZE | body`` line, if complete."""
    match = PACKET.match(rest)
    if match is None:
        return None
    size = int(match["size"], 16)
    body = unescape(match["body"].split("   # ")[0])
    if "...(+" in match["body"] or len(body) != size:
        return None  # truncated in the transcript
    header = struct.pack(">4sII", b"\0" + match["magic"].encode(), int(match["type"], 16), size)
    return match["name"], header + body


def conversations(lines: Iterable[str]) -> Iterator[Conversation]:
    """Split a transcript into per-socket conversations."""
    open_: dict[str, Conversation] = {}
    last: tuple[Item, bool] | None = None  # the item a following hex: line belongs to

    def close(name: str) -> Iterator[Conversation]:
        if name in open_:
            yield open_.pop(name)

    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("```", "###", "=====")):
            for name in list(open_):
                yield from close(name)
            continue
        if stripped.startswith("hex:") and last is not None:
            item, packet = last
            data = bytes.fromhex(stripped[4:])
            item.data = data[12:] if packet and item.direction == "out" else data
            continue
        last = None
        if stripped.startswith("[") and (" connects" in stripped or ":" in stripped):
            yield from close(stripped[1:].split()[0].rstrip(":"))
            continue
        match = ARROW.match(line)
        if match is None:
            continue
        outgoing = match["dst"] == "S"
        peer = match["src"] if outgoing else match["dst"]
        rest = match["rest"]
        conversation = open_.setdefault(peer, Conversation())
        if rest.startswith(("[EOF", "[connection reset")):
            conversation.items.append(Item("eof"))
            yield from close(peer)
        elif rest.startswith('TEXT "'):
            text = unescape(rest[6 : rest.rindex('"')])
            conversation.items.append(Item("out" if outgoing else "in", "TEXT", text))
        elif rest.startswith("RAW ") and outgoing:
            raw = re.sub(r" \(\d+ bytes\)(   # .*)?$", "", rest[4:])
            item = Item("out", "RAW", b"?\n" if "...(+" in raw else unescape(raw))
            conversation.items.append(item)
            last = (item, False)
        elif (parsed := packet_line(rest)) is not None:
            name, wire = parsed
            item = Item("out", name, wire[12:]) if outgoing else Item("in", name, wire)
            conversation.items.append(item)
            last = (item, True)
    yield from open_.values()


# ------------------------------------------------------------------ seeds


def admin_command(line: bytes) -> tuple[int, bytes] | None:
    """(command index, words) of an admin line the harness can send, or None."""
    words = line.strip(b"\r\n").split(b" ")
    for index, command in sorted(
        enumerate(h.COMMANDS), key=lambda pair: -len(pair[1].value.split())
    ):
        size = len(command.value.split())
        if [w.lower() for w in words[:size]] == command.value.split():
            arguments = words[size:]
            low, high = h.ADMIN_ARITY[command]
            if low <= len(arguments) <= high and all(arguments):
                return index, b" ".join(arguments)
            return None
    return None


def client_seed(conversation: Conversation, script: h.Script) -> None:
    literal_moves = {
        "GET_STATUS": "status",
        "GET_STATUS_UNIQUE": "status_unique",
        "ECHO_REQ": "echo",
        "OPTION_REQ": "option",
        "SET_CLIENT_ID": "client_id",
    }
    for item in conversation.items:
        if item.direction == "in":
            script.feed(item.data)
            script.op("drain")
        elif item.direction == "eof":
            script.op("eof")
        elif item.name in SUBMITS:
            script.move("submit", SUBMITS[item.name])
        elif item.name in literal_moves and len(item.data) < 0x80:
            script.move(literal_moves[item.name], 0, item.data)


def worker_seed(conversation: Conversation) -> h.Script:
    grabs = [GRABS[item.name] for item in conversation.items if item.name in GRABS]
    held: set[bytes] = set()
    most = 1
    for item in conversation.items:
        if item.direction == "in" and item.name.startswith("JOB_ASSIGN"):
            held.add(item.data[12:].split(b"\0")[0])
            most = max(most, len(held))
        elif item.name in ("WORK_COMPLETE", "WORK_FAIL", "WORK_EXCEPTION"):
            held.discard(item.data.split(b"\0")[0])
    config = h.WorkerDriver.config(grabs[0] if grabs else GrabMode.PLAIN, min(most, 3))
    script = h.Script(h.WorkerDriver, config)
    functions: dict[bytes, int] = {}
    for item in conversation.items:
        if item.name in ("CAN_DO", "CAN_DO_TIMEOUT", "CANT_DO"):
            function = functions.setdefault(item.data.split(b"\0")[0], len(functions) % 4)
        if item.direction == "in":
            script.feed(item.data)
            script.op("drain")
        elif item.direction == "eof":
            script.op("eof")
        elif item.name in ("CAN_DO", "CAN_DO_TIMEOUT"):
            script.move("can_do", function | (8 if item.name == "CAN_DO_TIMEOUT" else 0))
        elif item.name == "CANT_DO":
            script.move("cant_do", function)
        elif item.name == "RESET_ABILITIES":
            script.move("reset", 0)
        elif item.name in WORK_PACKETS:
            handle = item.data.split(b"\0")[0]
            if len(handle) < 0x80:
                script.move("work", WORK[WORK_PACKETS[item.name]], handle)
        elif item.name in ("ECHO_REQ", "OPTION_REQ") and len(item.data) < 0x80:
            script.move("echo" if item.name == "ECHO_REQ" else "option", 0, item.data)
    return script


def admin_seeds(conversation: Conversation) -> tuple[h.Script, list[bytes]]:
    """The admin op script, and admin_replies seeds (up to 8 requests each)."""
    script = h.Script(h.AdminDriver)
    exchanges: list[tuple[int, bytes]] = []  # (admin_request index, reply bytes)
    for item in conversation.items:
        if item.direction == "in":
            script.feed(item.data)
            script.op("drain")
            if exchanges:
                exchanges[-1] = (exchanges[-1][0], exchanges[-1][1] + item.data)
        elif item.direction == "eof":
            script.op("eof")
        elif item.name == "ECHO_REQ" and len(item.data) < 0x80:
            script.move("echo", 0, item.data)
            exchanges.append((len(h.COMMANDS), b""))
        elif item.name in ("TEXT", "RAW") and not item.data.startswith(b"\0"):
            for line in item.data.splitlines():
                index, words = admin_command(line) or (
                    h.COMMANDS.index(AdminCommand.CANCEL_JOB),
                    b"x",
                )
                script.op("command", bytes([0x80, index, len(words)]) + words)
                exchanges.append((index, b""))
    return script, admin_replies_seeds(exchanges)


def admin_replies_seeds(exchanges: list[tuple[int, bytes]]) -> list[bytes]:
    """admin_replies inputs: (request index, reply bytes) pairs, up to 8 per input."""
    found = []
    for start in range(0, len(exchanges), 8):
        window = exchanges[start : start + 8]
        head = bytes([len(window), *(index for index, _ in window)])
        stream = b"".join(reply for _, reply in window)
        found += [head + bytes([step]) + stream for step in (0, 3)]
    return found


def packets_seeds(stream: bytes) -> list[bytes]:
    return [bytes([step]) + stream for step in (0, 5)]


def seeds(conversation: Conversation) -> dict[str, list[bytes]]:
    """Seeds per target for one conversation."""
    received = conversation.received()
    if not received:
        return {}
    outgoing = conversation.names("out")
    if outgoing & {"TEXT", "RAW"}:
        script, replies = admin_seeds(conversation)
        return {"admin": [bytes(script.data)], "admin_replies": replies}
    found = {"packets": packets_seeds(b"".join(received))}
    if outgoing & WORKER_SENDS or conversation.names("in") & WORKER_GETS:
        found["worker"] = [bytes(worker_seed(conversation).data)]
    else:
        script = h.Script(h.ClientDriver)
        client_seed(conversation, script)
        found["client"] = [bytes(script.data)]
    return found


def write(corpus: Path, target: str, data: bytes, prefix: str) -> bool:
    """Write one seed named by its SHA-1; replay it first (a failure is a finding)."""
    try:
        h.TARGETS[target](data)
    except Exception as error:
        print(f"FINDING in {target} seed {data!r}: {error!r}", file=sys.stderr)
    path = corpus / target / f"{prefix}-{hashlib.sha1(data).hexdigest()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=FUZZ.parent.parent / "shared")
    parser.add_argument("--corpus", type=Path, default=FUZZ / "corpus")
    options = parser.parse_args()
    sources = [options.shared / "PROTOCOL.md", options.shared / "protocol" / "capture_output.txt"]
    for old in options.corpus.glob("*/doc-*"):
        old.unlink()
    written: dict[str, int] = {}
    for source in sources:
        for conversation in conversations(source.read_text(encoding="utf-8").splitlines()):
            for target, datas in seeds(conversation).items():
                for data in datas:
                    written[target] = written.get(target, 0) + write(
                        options.corpus, target, data, "doc"
                    )
    print(", ".join(f"{target}: {count} seeds" for target, count in sorted(written.items())))


if __name__ == "__main__":
    main()
