"""The login's LDAP requests, written and read by hand on a pooled connection's socket.

A login sends at most three small requests (a simple bind, a base read of the user's entry,
a group search). Through ldap3 each one costs more client CPU than the server's answer takes
to arrive (pyasn1 builds, encodes and decodes back every request), and its synchronous
strategy cannot have two requests outstanding. Here the requests are encoded directly as BER
(RFC 4511 section 5.1: definite lengths, primitive strings) and several can be sent in one
write, so a login waits for the bind, then once for the entry read and the group search together.

ldap3 still opens every connection (TCP or TLS, StartTLS, the service account's bind) and
does everything that is not a login (user management, health). A connection is only used by
one thread at a time (the pool's rule), and every request sent here is answered and read here
before the connection goes back to its pool, so ldap3 never sees a response it did not ask for.
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass, field

from .connections import ServerFailure
from .filters import compile_filter, integer, octets, tlv

__all__ = [
    "Request",
    "Reply",
    "Entry",
    "bind",
    "search",
    "compile_filter",
    "send",
    "receive",
    "exchange",
    "BASE",
    "SUBTREE",
]

BASE = 0
SUBTREE = 2
#: Answers longer than this are refused (no login's entry or group list comes near it).
MAX_MESSAGE = 16 * 1024 * 1024
#: Entries one request's answer may hold (a search's size limit is only advisory to a server).
MAX_ENTRIES = 10_000

#: (DN as the server wrote it, attribute values by lower-case attribute name).
Entry = tuple[str, dict[str, list[str]]]

_ids = itertools.count(1)


@dataclass(frozen=True)
class Request:
    """One encoded LDAPMessage and its message id."""

    message_id: int
    data: bytes


@dataclass
class Reply:
    """The answer to one request: its result code and, for a search, the entries found."""

    code: int = -1
    diagnostic: str = ""
    entries: list[Entry] = field(default_factory=list)


# ------------------------------------------------------------------ encoding


def _message(op: bytes) -> Request:
    message_id = next(_ids) % 0x7FFFFFFF or 1  # 1 .. 2**31-1 (RFC 4511: 0 is for notices)
    return Request(message_id, tlv(0x30, integer(message_id) + op))


def bind(name: str, password: bytes) -> Request:
    """A simple BindRequest (LDAPv3) for *name* with *password* (raw bytes: no SASLprep rewriting)."""
    return _message(tlv(0x60, integer(3) + octets(name) + tlv(0x80, password)))


def search(base: str, scope: int, filter_text: str, attributes: list[str], size_limit: int = 0) -> Request:
    """A SearchRequest (aliases never dereferenced, no time limit) for the RFC 4515 *filter_text*."""
    body = (
        octets(base)
        + integer(scope, 0x0A)
        + integer(0, 0x0A)
        + integer(size_limit)
        + integer(0)
        + tlv(0x01, b"\x00")
        + compile_filter(filter_text)
        + tlv(0x30, b"".join(octets(a) for a in attributes))
    )
    return _message(tlv(0x63, body))


# ------------------------------------------------------------------ decoding


def _readtlv(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """``(tag, start of content, end of content)`` of the element at *pos* (before *limit*); ``ValueError``
    when it does not fit."""
    if pos + 2 > limit:
        raise ValueError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > limit:
            raise ValueError("bad length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        size = first
    if pos + size > limit:
        raise ValueError("truncated")
    return tag, pos, pos + size


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        tag, begin, stop = _readtlv(data, start, end)
        found.append((tag, begin, stop))
        start = stop
    return found


def _str(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", errors="replace")


def _apply(data: bytes, op: tuple[int, int, int], reply: Reply) -> bool:
    """Fold one protocolOp into *reply*; True when it is the request's final answer."""
    tag, start, end = op
    if tag == 0x64:  # SearchResultEntry
        (_t, ds, de), (_a, as_, ae) = _children(data, start, end)
        attributes: dict[str, list[str]] = {}
        for _seq, ps, pe in _children(data, as_, ae):
            (_n, ns, ne), (_v, vs, ve) = _children(data, ps, pe)[:2]
            attributes[_str(data, ns, ne).lower()] = [_str(data, s, e) for _x, s, e in _children(data, vs, ve)]
        if len(reply.entries) >= MAX_ENTRIES:
            raise ValueError("too many entries")
        reply.entries.append((_str(data, ds, de), attributes))
        return False
    if tag == 0x73:  # SearchResultReference: referrals are not followed
        return False
    if tag in (0x61, 0x65):  # BindResponse, SearchResultDone
        parts = _children(data, start, end)
        _c, cs, ce = parts[0]
        reply.code = int.from_bytes(data[cs:ce], "big", signed=True)
        reply.diagnostic = _str(data, parts[2][1], parts[2][2])[:200] if len(parts) > 2 else ""
        return True
    raise ServerFailure(f"unexpected LDAP response (tag 0x{tag:02x})")


def _complete(data: bytearray, pos: int) -> int | None:
    """The end of the whole message starting at *pos*, or None while more bytes are needed."""
    if len(data) - pos < 2:
        return None
    if data[pos] != 0x30:
        raise ValueError("not an LDAPMessage")
    first = data[pos + 1]
    header, size = 2, first
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError("bad length")
        if len(data) - pos < 2 + count:
            return None
        header, size = 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
    if size > MAX_MESSAGE:
        raise ValueError("answer too long")
    end = pos + header + size
    return end if end <= len(data) else None


def send(sock: socket.socket | None, *requests: Request) -> None:
    """Send *requests* in one write, without waiting; :func:`receive` reads their answers."""
    if sock is None:
        raise ServerFailure("the connection is closed")
    sock.sendall(b"".join(r.data for r in requests))


def exchange(sock: socket.socket | None, *requests: Request) -> list[Reply]:
    """Send *requests* in one write and read until each has its final answer; replies in request order."""
    send(sock, *requests)
    return receive(sock, *requests)


def receive(sock: socket.socket | None, *requests: Request) -> list[Reply]:
    """Read until each of *requests* (sent, on this socket) has its final answer; replies in request order.

    Raises :class:`ServerFailure` when the connection closes, answers something that is not
    LDAP or too much, or does not finish answering within the socket's timeout: the timeout
    bounds the whole exchange, not each read, so a server dripping bytes cannot hold a login.
    The pool then throws the connection away.
    """
    if sock is None:
        raise ServerFailure("the connection is closed")
    replies = {r.message_id: Reply() for r in requests}
    pending = set(replies)
    buffer = bytearray()
    timeout = sock.gettimeout()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while pending:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerFailure("the server did not finish answering in time", timeout=True)
                sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                raise ServerFailure("the server closed the connection")
            buffer += chunk
            pos = 0
            while pending and (end := _complete(buffer, pos)) is not None:
                message = bytes(buffer[pos:end])
                _tag, start, stop = _readtlv(message, 0, len(message))
                parts = _children(message, start, stop)
                message_id = int.from_bytes(message[parts[0][1] : parts[0][2]], "big")
                if message_id == 0:  # an unsolicited notice (RFC 4511 4.4): the server ends the session
                    raise ServerFailure("the server ended the connection")
                if message_id not in pending:
                    raise ServerFailure("an LDAP answer to a request not sent")
                if _apply(message, parts[1], replies[message_id]):
                    pending.discard(message_id)
                pos = end
            del buffer[:pos]
        if buffer:
            raise ServerFailure("the server sent more than was asked")
    except (ValueError, IndexError) as exc:
        raise ServerFailure(f"malformed LDAP answer ({type(exc).__name__})") from None
    except TimeoutError:  # socket.timeout: the read's share of the deadline ran out
        raise ServerFailure("the server did not finish answering in time", timeout=True) from None
    finally:
        if deadline is not None:
            sock.settimeout(timeout)  # the connection goes back to its pool as it came
    return [replies[r.message_id] for r in requests]
