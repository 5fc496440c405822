"""Misuse refused before a byte is queued (issue 14, point 4), at the core.

Function names and client ids without NUL, TAB, LF or CR (they appear in
the admin text replies, where such a name forges lines); uniques of at most
63 bytes (gearmand's ``GEARMAN_MAX_UNIQUE_SIZE`` is 64 with the NUL); status
numbers that are ints within gearmand's ``uint32_t``; admin arguments that
cannot split the command line; ports in ASCII digits.  Each refusal is a
:class:`LocalValueError` or :class:`LocalTypeError` (so also a ``ValueError``
or ``TypeError``, and a :class:`LocalProtocolError`), and the connection has
nothing more to send.  Driven with plain bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gearman_proto as gp
from gearman_proto import PacketType as T
from gearman_proto._admin import encode_admin_request, parse_block_reply
from gearman_proto._events import UNIQUE_LIMIT, status_number

A = gp.ServerAddress("a", 1)

FORBIDDEN_IN_NAMES = [b"\0", b"\t", b"\n", b"\r"]

#: every event field that is a function name or a client id.
NAMED: list[tuple[str, Callable[[bytes], gp.Event]]] = [
    ("SubmitJob.function", lambda name: gp.SubmitJob(function=name)),
    ("SubmitJobEpoch.function", lambda name: gp.SubmitJobEpoch(function=name)),
    ("SubmitReduceJob.function", lambda name: gp.SubmitReduceJob(function=name, reducer=b"r")),
    ("SubmitReduceJob.reducer", lambda name: gp.SubmitReduceJob(function=b"f", reducer=name)),
    ("CanDo.function", lambda name: gp.CanDo(function=name)),
    ("CanDo.function+timeout", lambda name: gp.CanDo(function=name, timeout=5)),
    ("CantDo.function", lambda name: gp.CantDo(function=name)),
    ("SetClientId.client_id", lambda name: gp.SetClientId(client_id=name)),
]

#: every submission kind, by its unique.
SUBMISSIONS: list[tuple[str, Callable[[bytes], gp.Event]]] = [
    ("SubmitJob", lambda unique: gp.SubmitJob(function=b"f", unique=unique)),
    ("SubmitJob bg", lambda unique: gp.SubmitJob(function=b"f", unique=unique, background=True)),
    ("SubmitJobEpoch", lambda unique: gp.SubmitJobEpoch(function=b"f", unique=unique, epoch=1)),
    (
        "SubmitReduceJob",
        lambda unique: gp.SubmitReduceJob(function=b"f", reducer=b"r", unique=unique),
    ),
]


def req(packet_type: T, *arguments: bytes) -> bytes:
    """A request packet, built by hand (not with the encoder under test)."""
    body = b"\0".join(arguments)
    return b"\0REQ" + struct.pack(">II", packet_type, len(body)) + body


def res(packet_type: T, *arguments: bytes) -> bytes:
    body = b"\0".join(arguments)
    return b"\0RES" + struct.pack(">II", packet_type, len(body)) + body


def test_the_error_classes_are_also_the_builtin_kinds() -> None:
    assert issubclass(gp.LocalValueError, gp.LocalProtocolError)
    assert issubclass(gp.LocalValueError, ValueError)
    assert issubclass(gp.LocalTypeError, gp.LocalProtocolError)
    assert issubclass(gp.LocalTypeError, TypeError)
    assert not issubclass(gp.LocalValueError, TypeError)
    assert not issubclass(gp.LocalTypeError, ValueError)


# ------------------------------------------------------------------- names


@pytest.mark.parametrize("bad", FORBIDDEN_IN_NAMES, ids=repr)
@pytest.mark.parametrize(("field", "build"), NAMED, ids=[field for field, _ in NAMED])
def test_names_with_nul_tab_lf_or_cr_are_refused(
    field: str, build: Callable[[bytes], gp.Event], bad: bytes
) -> None:
    names = {b"\0": "NUL", b"\t": "TAB", b"\n": "LF", b"\r": "CR"}
    with pytest.raises(gp.LocalValueError, match=f"must not contain a {names[bad]}$"):
        build(b"name" + bad + b"more")


@pytest.mark.parametrize(("field", "build"), NAMED, ids=[field for field, _ in NAMED])
def test_names_of_the_wrong_type_are_type_errors(
    field: str, build: Callable[[bytes], gp.Event]
) -> None:
    with pytest.raises(gp.LocalTypeError, match="bytes"):
        build("name")  # type: ignore[arg-type]


@given(
    name=st.binary(max_size=40).filter(lambda b: not any(c in b for c in b"\0\t\n\r")),
    index=st.integers(0, len(NAMED) - 1),
)
def test_any_other_bytes_make_a_name(name: bytes, index: int) -> None:
    # Spaces and high bytes are allowed: gearmand and python-gearman take them.
    _, build = NAMED[index]
    build(name)


@given(
    head=st.binary(max_size=20),
    bad=st.sampled_from(FORBIDDEN_IN_NAMES),
    tail=st.binary(max_size=20),
    index=st.integers(0, len(NAMED) - 1),
)
def test_a_forbidden_byte_anywhere_refuses_the_name(
    head: bytes, bad: bytes, tail: bytes, index: int
) -> None:
    _, build = NAMED[index]
    with pytest.raises(gp.LocalValueError):
        build(head + bad + tail)


def test_a_name_with_tab_and_lf_would_forge_status_lines() -> None:
    """Why TAB and LF are refused: gearmand prints the name as it is, so the
    ``status`` reply would carry a line the worker wrote."""
    forged = b"real\t999\t0\t9\nfake"
    printed = forged + b"\t0\t0\t1"  # gearmand's line for it: no jobs, 1 worker
    reply = parse_block_reply(gp.AdminRequest(command=gp.AdminCommand.STATUS), printed.split(b"\n"))
    assert reply.functions == (  # type: ignore[attr-defined]
        gp.FunctionStatus(b"real", 999, 0, 9),
        gp.FunctionStatus(b"fake", 0, 0, 1),
    )
    with pytest.raises(gp.LocalValueError):
        gp.CanDo(function=forged)


def test_a_refused_registration_changes_nothing() -> None:
    session = gp.WorkerSession([A])
    session.register(b"f")
    session.connection_made(A)
    session.data_to_send()
    for bad in FORBIDDEN_IN_NAMES:
        with pytest.raises(gp.LocalValueError):
            session.register(b"g" + bad)
        with pytest.raises(gp.LocalValueError):
            session.set_client_id(b"me" + bad)
    assert session.abilities == {b"f": None}
    assert session.client_id is None
    assert session.data_to_send() == {}


@pytest.mark.parametrize("bad", FORBIDDEN_IN_NAMES, ids=repr)
def test_a_client_session_refuses_a_bad_client_id_when_made(bad: bytes) -> None:
    # Refused at construction, not when a connection comes up.
    with pytest.raises(gp.LocalValueError):
        gp.ClientSession([A], client_id=b"me" + bad)
    session = gp.ClientSession([A], client_id=b"me too")
    session.connection_made(A)
    assert session.data_to_send() == {A: req(T.SET_CLIENT_ID, b"me too")}


def test_a_refused_submission_leaves_the_session_idle() -> None:
    session = gp.ClientSession([A])
    session.connection_made(A)
    for bad in FORBIDDEN_IN_NAMES:
        with pytest.raises(gp.LocalValueError):
            gp.make_submission(b"f" + bad, b"payload")
        with pytest.raises(gp.LocalValueError):
            gp.make_submission(b"f", b"payload", reducer=b"r" + bad)
    with pytest.raises(gp.LocalValueError):
        gp.make_submission(b"f", b"payload", b"u" * 64, epoch=1)
    assert session.data_to_send() == {}
    assert session.connections[A].unanswered == ()


# ----------------------------------------------------------------- uniques


@pytest.mark.parametrize(("kind", "build"), SUBMISSIONS, ids=[kind for kind, _ in SUBMISSIONS])
def test_uniques_of_64_bytes_or_more_are_refused(
    kind: str, build: Callable[[bytes], gp.Event]
) -> None:
    # gearmand cuts a 64-byte unique to 63 and puts the NUL in front of the
    # worker's payload; longer ones it refuses (reduce jobs: it cuts them).
    event = build(b"u" * 63)
    assert event.unique == b"u" * 63  # type: ignore[attr-defined]
    client = gp.ClientConnection()
    sent = client.send(event)
    assert b"\0" + b"u" * 63 + b"\0" in sent
    for size in (64, 65, 1000):
        with pytest.raises(gp.LocalValueError, match=f"{size}-byte unique"):
            build(b"u" * size)


@given(unique=st.binary(max_size=200).map(lambda b: b.replace(b"\0", b"")))
def test_a_unique_is_taken_exactly_when_it_fits(unique: bytes) -> None:
    if len(unique) <= UNIQUE_LIMIT:
        assert gp.SubmitJob(function=b"f", unique=unique).unique == unique
    else:
        with pytest.raises(gp.LocalValueError):
            gp.SubmitJob(function=b"f", unique=unique)


def test_the_unique_limit_is_gearmands() -> None:
    # GEARMAN_MAX_UNIQUE_SIZE 64 (libgearman-1.0/limits.h), NUL included.
    assert UNIQUE_LIMIT == 64 - 1


# ---------------------------------------------------------- status numbers


def holding_worker() -> gp.WorkerSession:
    session = gp.WorkerSession([A])
    session.register(b"f")
    session.connection_made(A)
    connection = session.connections[A]
    connection.receive_data(res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
    for event in connection.events():
        session.receive(A, event, 0.0)
    session.data_to_send()
    return session


@pytest.mark.parametrize(
    ("numerator", "denominator", "error"),
    [
        (-1, 10, gp.LocalValueError),
        (1, -10, gp.LocalValueError),
        (2**32, 10, gp.LocalValueError),
        (1, 2**70, gp.LocalValueError),
        (1.5, 10, gp.LocalTypeError),
        (2.0, 10, gp.LocalTypeError),  # a float is refused, not truncated
        (1, 10.0, gp.LocalTypeError),
        (True, 10, gp.LocalTypeError),
        (1, False, gp.LocalTypeError),
        ("1", 10, gp.LocalTypeError),
        (b"1", 10, gp.LocalTypeError),
        (None, 10, gp.LocalTypeError),
    ],
)
def test_bad_status_numbers_are_refused_and_nothing_is_sent(
    numerator: object, denominator: object, error: type[Exception]
) -> None:
    session = holding_worker()
    with pytest.raises(error):
        session.status(A, b"H:1", numerator, denominator)  # type: ignore[arg-type]
    assert session.data_to_send() == {}
    assert session.held_jobs == 1  # the job is still held, and can be answered
    assert session.status(A, b"H:1", 1, 2)
    assert session.data_to_send() == {A: req(T.WORK_STATUS, b"H:1", b"1", b"2")}


@given(
    numerator=st.integers(0, 2**32 - 1),
    denominator=st.integers(0, 2**32 - 1),
)
def test_every_uint32_status_number_is_sent_in_decimal(numerator: int, denominator: int) -> None:
    session = holding_worker()
    session.status(A, b"H:1", numerator, denominator)
    assert session.data_to_send() == {
        A: req(T.WORK_STATUS, b"H:1", str(numerator).encode(), str(denominator).encode())
    }


@given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
def test_every_number_outside_uint32_is_refused(value: int) -> None:
    with pytest.raises(gp.LocalValueError):
        status_number(value, "numerator")


# ------------------------------------------------------------ admin arguments

ADMIN_WITH_ARGUMENTS = [
    gp.AdminCommand.CANCEL_JOB,
    gp.AdminCommand.CREATE_FUNCTION,
    gp.AdminCommand.DROP_FUNCTION,
    gp.AdminCommand.MAXQUEUE,
    gp.AdminCommand.SHUTDOWN,
]


@pytest.mark.parametrize("bad", [b" ", b"\t", b"\r", b"\n", b"\0", b"\r\n"], ids=repr)
@pytest.mark.parametrize("command", ADMIN_WITH_ARGUMENTS, ids=lambda c: c.name)
def test_admin_arguments_cannot_smuggle_a_second_command(
    command: gp.AdminCommand, bad: bytes
) -> None:
    admin = gp.AdminConnection()
    with pytest.raises(gp.LocalValueError, match="admin argument"):
        gp.AdminRequest(command=command, arguments=(b"f" + bad + b"shutdown",))
    assert admin.data_to_send() == b""


@given(
    command=st.sampled_from(ADMIN_WITH_ARGUMENTS),
    word=st.binary(min_size=1, max_size=30),
)
def test_an_admin_request_is_one_line_of_its_words_or_refused(
    command: gp.AdminCommand, word: bytes
) -> None:
    try:
        request = gp.AdminRequest(command=command, arguments=(word,))
    except gp.LocalValueError:
        assert any(c in word for c in b" \t\r\n\0")
        return
    line = encode_admin_request(request)
    assert line.endswith(b"\r\n")
    assert line.count(b"\n") == 1
    assert line.count(b"\r") == 1
    assert line[:-2].split(b" ") == [*command.value.split(b" "), word]


def test_admin_argument_types_are_type_errors() -> None:
    with pytest.raises(gp.LocalTypeError):
        gp.AdminRequest(command=gp.AdminCommand.CANCEL_JOB, arguments=("H:1",))  # type: ignore[arg-type]
    with pytest.raises(gp.LocalTypeError):
        gp.AdminRequest(command="status")  # type: ignore[arg-type]
    with pytest.raises(gp.LocalValueError, match="arguments"):
        gp.AdminRequest(command=gp.AdminCommand.CANCEL_JOB)


# ------------------------------------------------------------------- ports

NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@pytest.mark.parametrize(
    "spec",
    [
        "localhost:\u0664\u0667\u0663\u0660",  # Arabic-Indic 4730
        "[::1]:\u0664\u0667\u0663\u0660",
        "localhost:\uff14\uff17\uff13\uff10",  # fullwidth 4730
        ("localhost", "\u0664\u0667\u0663\u0660"),
        ("localhost", 0),
        ("localhost", 65536),
        ("localhost", True),
        ("localhost", 4730.0),
        ("localhost", 4730, 1),
        "localhost:65536",
        "localhost:-1",
        "localhost:+4730",
        "localhost: 4730",
    ],
    ids=repr,
)
def test_ports_are_ascii_digits_in_range(spec: object) -> None:
    with pytest.raises(gp.LocalValueError, match="bad"):
        gp.parse_server(spec)  # type: ignore[arg-type]


@given(digits=st.lists(NON_ASCII_DIGITS, min_size=1, max_size=5).map("".join))
def test_no_port_of_non_ascii_digits_is_read(digits: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        gp.parse_server(f"localhost:{digits}")


@given(port=st.integers(1, 65535))
def test_every_port_in_range_is_read(port: int) -> None:
    assert gp.parse_server(f"h:{port}") == gp.ServerAddress("h", port)
    assert gp.parse_server(("h", port)) == gp.ServerAddress("h", port)
