"""The login's hand-written LDAP decoder (``auth_ldap.wire``) against answers no honest server sends.

Whatever arrives, ``receive`` either returns the replies or raises ``ServerFailure`` (which
makes the pool drop the connection); it never hangs past the socket's timeout, never raises
anything else, and never accepts an answer to a request it did not send.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Iterator

import pytest

from auth_ldap import wire
from auth_ldap.connections import ServerFailure
from auth_ldap.filters import integer, octets, tlv
from authcore import ProviderUnavailable


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(2)
    yield ours, theirs
    ours.close()
    theirs.close()


def answer(message_id: int, op: bytes) -> bytes:
    return tlv(0x30, integer(message_id) + op)


def bind_response(message_id: int, code: int = 0) -> bytes:
    return answer(message_id, tlv(0x61, integer(code, 0x0A) + octets("") + octets("")))


def test_an_honest_answer_is_read(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    request = wire.bind("cn=alice,dc=example", b"pw")
    theirs.sendall(bind_response(request.message_id, 49))
    assert wire.receive(ours, request)[0].code == 49


def test_an_answer_split_into_single_bytes_is_read(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    request = wire.bind("cn=alice,dc=example", b"pw")
    data = bind_response(request.message_id)

    def drip() -> None:
        for byte in data:
            theirs.sendall(bytes([byte]))

    sender = threading.Thread(target=drip)
    sender.start()
    assert wire.receive(ours, request)[0].code == 0
    sender.join()


def _hostile(message_id: int) -> list[tuple[str, bytes]]:
    return [
        ("closed-at-once", b""),
        ("not-a-sequence", b"\x04\x03abc"),
        ("length-of-zero-octets", b"\x30\x80"),
        ("length-of-five-octets", b"\x30\x85\x00\x00\x00\x00\x01"),
        ("huge-declared-length", b"\x30\x84\x7f\xff\xff\xff"),
        ("truncated-then-closed", bind_response(message_id)[:-3]),
        ("inner-length-overruns", tlv(0x30, integer(message_id) + b"\x61\x7f\x0a\x01\x00")),
        ("empty-message", tlv(0x30, b"")),
        ("id-only", tlv(0x30, integer(message_id))),
        ("answer-to-another-request", bind_response(message_id + 1000)),
        ("notice-of-disconnection", bind_response(0, 52)),
        ("unknown-operation", answer(message_id, tlv(0x77, b""))),
        ("entry-without-attributes", answer(message_id, tlv(0x64, octets("cn=x")))),
        ("bind-response-without-code", answer(message_id, tlv(0x61, b""))),
        ("trailing-bytes", bind_response(message_id) + b"\x30\x03\x02\x01"),
        ("nested-garbage", answer(message_id, tlv(0x64, tlv(0x04, b"\xff" * 10) + tlv(0x30, b"\x30\x05\x04")))),
    ]


@pytest.mark.parametrize("case", [name for name, _ in _hostile(1)])
def test_hostile_answers_are_a_server_failure(pair: tuple[socket.socket, socket.socket], case: str) -> None:
    ours, theirs = pair
    request = wire.bind("cn=alice,dc=example", b"pw")
    data = dict(_hostile(request.message_id))[case]
    theirs.sendall(data)
    theirs.shutdown(socket.SHUT_WR)  # then silence: a decoder waiting for more bytes sees the end
    with pytest.raises(ServerFailure):
        wire.receive(ours, request)


def test_a_server_that_never_answers_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _theirs = pair
    ours.settimeout(0.2)
    with pytest.raises(ServerFailure) as caught:  # a timed-out server, as the pool counts it
        wire.receive(ours, wire.bind("cn=alice,dc=example", b"pw"))
    assert caught.value.timeout


def test_random_bytes_never_escape_as_anything_but_a_server_failure() -> None:
    rng = random.Random(4511)
    for _ in range(400):
        ours, theirs = socket.socketpair()
        ours.settimeout(2)
        try:
            request = wire.bind("cn=alice,dc=example", b"pw")
            honest = bind_response(request.message_id)
            kind = rng.randrange(3)
            if kind == 0:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            elif kind == 1:  # an honest answer with some bytes flipped
                flipped = bytearray(honest)
                for _ in range(rng.randrange(1, 4)):
                    flipped[rng.randrange(len(flipped))] = rng.randrange(256)
                data = bytes(flipped)
            else:  # an honest answer cut short
                data = honest[: rng.randrange(len(honest))]
            theirs.sendall(data)
            theirs.shutdown(socket.SHUT_WR)
            try:
                replies = wire.receive(ours, request)
            except ServerFailure:
                continue
            assert len(replies) == 1 and isinstance(replies[0].code, int)
        finally:
            ours.close()
            theirs.close()


# --------------------------------------------------------------------------- what a bind's answer means


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0, True),
        (49, False),  # invalidCredentials
        (19, False),  # constraintViolation: 389-DS's locked account ("exceed password retry limit")
        (53, False),  # unwillingToPerform: OpenLDAP's ppolicy lock
        (51, ServerFailure),  # busy: another server may serve
        (52, ServerFailure),  # unavailable
        (1, ProviderUnavailable),  # operationsError: this server read the password; no failover
        (80, ServerFailure),  # other
        (10, ProviderUnavailable),  # referral: not followed, and not sent elsewhere
    ],
)
def test_a_bind_answer_is_refused_failed_over_or_final(code: int, meaning: object) -> None:
    from auth_ldap.login import _bind_accepted

    reply = wire.Reply(code=code)
    if isinstance(meaning, bool):
        assert _bind_accepted(reply) is meaning
    else:
        with pytest.raises(meaning):  # type: ignore[call-overload]
            _bind_accepted(reply)


def test_a_server_dripping_its_answer_is_cut_off_by_the_whole_exchanges_timeout(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    ours.settimeout(0.3)
    request = wire.bind("cn=alice,dc=example", b"pw")
    data = bind_response(request.message_id)
    stop = threading.Event()

    def drip() -> None:  # every byte well within the per-read timeout, the whole far beyond it
        for byte in data:
            if stop.wait(0.1):
                return
            theirs.sendall(bytes([byte]))

    sender = threading.Thread(target=drip)
    sender.start()
    try:
        with pytest.raises(ServerFailure) as caught:
            wire.receive(ours, request)
        assert caught.value.timeout
        assert ours.gettimeout() == 0.3  # handed back to the pool as it came
    finally:
        stop.set()
        sender.join()


def test_an_answer_with_more_entries_than_any_login_needs_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    request = wire.search("dc=example", wire.SUBTREE, "(objectClass=*)", ["cn"])
    entry = answer(request.message_id, tlv(0x64, octets("cn=g,dc=example") + tlv(0x30, b"")))
    done = answer(request.message_id, tlv(0x65, integer(0, 0x0A) + octets("") + octets("")))

    def flood() -> None:
        with contextlib.suppress(OSError):  # the reader may give up first
            theirs.sendall(entry * (wire.MAX_ENTRIES + 1) + done)

    sender = threading.Thread(target=flood)
    sender.start()
    with pytest.raises(ServerFailure):
        wire.receive(ours, request)
    ours.close()
    sender.join()
