"""RFC 4515 filters compiled to their BER encoding (RFC 4511 section 4.5.1), and BER's small pieces.

Used by :mod:`auth_ldap.wire` to send searches without ldap3's encoder, and by the
configuration to refuse a filter that is not one when it is loaded rather than at a login.
The encoding is the one ldap3 produces, byte for byte (the tests compare them).
"""

from __future__ import annotations

import re

__all__ = ["compile_filter", "tlv", "integer", "octets"]


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One BER element: tag, definite length, content."""
    return bytes((tag,)) + _length(len(content)) + content


def integer(value: int, tag: int = 0x02) -> bytes:
    """An INTEGER (or, with tag 0x0A, an ENUMERATED) in its shortest two's-complement form."""
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def octets(value: str | bytes, tag: int = 0x04) -> bytes:
    """An OCTET STRING (or an implicitly tagged one) holding *value* as UTF-8."""
    return tlv(tag, value.encode("utf-8") if isinstance(value, str) else value)


_ATTR = r"[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*|[0-9]+(?:\.[0-9]+)+(?:;[A-Za-z0-9-]+)*"
_RULE = r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+"
_SIMPLE = re.compile(rf"({_ATTR})(~=|>=|<=|=)(.*)", re.DOTALL)
_EXTENSIBLE = re.compile(rf"({_ATTR})?(:[dD][nN])?(?::({_RULE}))?:=(.*)", re.DOTALL)
_HEX = re.compile(r"\\([0-9A-Fa-f]{2})")


def _value(text: str) -> bytes:
    """An RFC 4515 assertion value: ``\\XX`` pairs are bytes, the rest UTF-8; unescaped specials refused."""
    if any(c in text for c in "()*\x00") or re.search(r"\\(?![0-9A-Fa-f]{2})", text):
        raise ValueError("a filter value holds an unescaped special character")
    out = bytearray()
    pos = 0
    for match in _HEX.finditer(text):
        out += text[pos : match.start()].encode("utf-8")
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def _item(text: str) -> bytes:
    extensible = _EXTENSIBLE.fullmatch(text) if ":=" in text else None
    if extensible is not None and (extensible.group(1) or extensible.group(3)):
        attr, dn, rule, value = extensible.groups()
        body = (octets(rule, 0x81) if rule else b"") + (octets(attr, 0x82) if attr else b"")
        body += tlv(0x83, _value(value)) + (tlv(0x84, b"\xff") if dn else b"")
        return tlv(0xA9, body)
    simple = _SIMPLE.fullmatch(text)
    if simple is None:
        raise ValueError(f"not an LDAP filter item: ({text})")
    attr, operator, value = simple.groups()
    if operator == "=" and value == "*":
        return octets(attr, 0x87)
    if operator == "=" and "*" in value:
        parts = value.split("*")
        chunks = [tlv(0x80, _value(parts[0]))] if parts[0] else []
        chunks += [tlv(0x81, _value(p)) for p in parts[1:-1] if p]
        if any(not p for p in parts[1:-1]):
            raise ValueError(f"consecutive '*' in a substring filter: ({text})")
        chunks += [tlv(0x82, _value(parts[-1]))] if parts[-1] else []
        return tlv(0xA4, octets(attr) + tlv(0x30, b"".join(chunks)))
    tag = {"=": 0xA3, ">=": 0xA5, "<=": 0xA6, "~=": 0xA8}[operator]
    return tlv(tag, octets(attr) + tlv(0x04, _value(value)))


def _filter(text: str, pos: int, depth: int) -> tuple[bytes, int]:
    if depth > 50:
        raise ValueError("an LDAP filter nested too deeply")
    if pos >= len(text) or text[pos] != "(":
        raise ValueError("an LDAP filter starts with '('")
    pos += 1
    kind = text[pos : pos + 1]
    if kind in ("&", "|", "!"):
        pos += 1
        parts = []
        while pos < len(text) and text[pos] == "(":
            encoded, pos = _filter(text, pos, depth + 1)
            parts.append(encoded)
        if kind == "!" and len(parts) != 1:
            raise ValueError("'!' takes one filter")
        content = b"".join(parts)
        tag = {"&": 0xA0, "|": 0xA1, "!": 0xA2}[kind]
    else:
        end = text.find(")", pos)
        if end < 0:
            raise ValueError("an LDAP filter item ends with ')'")
        content, tag, pos = _item(text[pos:end]), 0, end
    if pos >= len(text) or text[pos] != ")":
        raise ValueError("unbalanced parentheses in an LDAP filter")
    return (content if tag == 0 else tlv(tag, content)), pos + 1


def compile_filter(text: str) -> bytes:
    """The BER encoding of the RFC 4515 filter *text*; ``ValueError`` when it is not one."""
    encoded, end = _filter(text, 0, 0)
    if end != len(text):
        raise ValueError("text after the end of an LDAP filter")
    return encoded
