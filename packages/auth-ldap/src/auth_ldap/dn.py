"""DN helpers: RFC 4514 value unescaping and comparison keys. DNs read from the server are never rebuilt."""

from __future__ import annotations

from ldap3.utils.dn import parse_dn  # type: ignore[import-untyped,unused-ignore]

__all__ = ["unescape_value", "first_rdn_value", "dn_key"]

_HEX = "0123456789abcdefABCDEF"


def unescape_value(value: str) -> str:
    """Undo RFC 4514 escaping of an attribute value: ``Doe\\2C John`` and ``Doe\\, John`` → ``Doe, John``.

    Hex pairs are collected as bytes and decoded as UTF-8 (``\\C3\\A9`` → ``é``).
    """
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def first_rdn_value(dn: str) -> str:
    """The (unescaped) value of the first RDN of *dn*: ``cn=Sales\\2C EMEA,ou=groups`` → ``Sales, EMEA``."""
    parts = parse_dn(dn, escape=False, strip=True)
    return unescape_value(parts[0][1]) if parts else dn


def dn_key(dn: str) -> str:
    """A comparison key for DNs as one server returns them (case and escaping of values normalised)."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except Exception:  # not a DN we can parse: compare as text
        return dn.lower()
    return "\x00".join(f"{attr.lower()}\x01{unescape_value(value).lower()}" for attr, value, _sep in parts)
