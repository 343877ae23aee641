"""Checks of what goes into the database: logins, their lookup form, profile fields, attributes.

A login is stored as given (what the user sees) and with its *key*: NFKC-normalised and
case-folded, the form every lookup and the UNIQUE constraint use. So ``ALICE``, ``ａｌｉｃｅ``
(full-width) and ``alice`` are one account, and the second to register is refused as
existing. Letters from different scripts that merely look alike (Cyrillic ``а``) stay
different: NFKC does not merge them, and refusing them would refuse real names.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from authcore import BadRequest, UserNotFound
from authcore.providers import MAX_LOGIN_LENGTH

__all__ = [
    "login_key",
    "lookup_key",
    "check_login",
    "check_text",
    "check_attributes",
    "check_roles",
    "MAX_ATTRIBUTES_BYTES",
]

#: The largest ``attributes`` mapping stored for a user, as JSON.
MAX_ATTRIBUTES_BYTES = 64 * 1024
#: The longest key: NFKC can lengthen a string (one ligature becomes up to 18 characters).
MAX_KEY_LENGTH = 4 * MAX_LOGIN_LENGTH


def login_key(login: str) -> str:
    """The canonical lookup form of *login*: NFKC, then case-folded, then NFKC again (folding can denormalise)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", login).casefold())


def lookup_key(login: str) -> str:
    """The key to look *login* up by; :class:`~authcore.UserNotFound` for a login no account can have."""
    if not isinstance(login, str) or not 1 <= len(login) <= MAX_LOGIN_LENGTH or not login.isprintable():
        # Not BadRequest: a path segment such as /auth/users/users/<login> names no user here.
        # (PostgreSQL would refuse a NUL in the query itself, as an error of the database.)
        raise UserNotFound()
    return login_key(login)


def check_login(login: str) -> str:
    """*login* if it can name an account; :class:`~authcore.BadRequest` otherwise. Returns its key."""
    if not isinstance(login, str) or not 1 <= len(login) <= MAX_LOGIN_LENGTH:
        raise BadRequest(f"a login is 1-{MAX_LOGIN_LENGTH} characters", status_code=422)
    if not login.isprintable() or login != login.strip():
        raise BadRequest("a login holds no control characters and no leading or trailing space", status_code=422)
    key = login_key(login)
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest("this login cannot be used", status_code=422)
    return key


def check_text(name: str, value: str | None, limit: int = 320) -> str | None:
    """A profile field (name, e-mail): printable, at most *limit* characters, or ``None``."""
    if value is None:
        return None
    if len(value) > limit or not value.isprintable():
        # PostgreSQL refuses NUL in text; other control characters only make trouble in pages and logs.
        raise BadRequest(f"{name} must be at most {limit} printable characters", status_code=422)
    return value


def check_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-serialisable mapping of at most 64 KiB without NUL characters."""
    try:
        text = json.dumps(dict(attributes), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError):
        raise BadRequest("attributes must be a JSON object", status_code=422) from None
    if "\\u0000" in text or len(text) > MAX_ATTRIBUTES_BYTES:
        raise BadRequest(f"attributes must be a JSON object of at most {MAX_ATTRIBUTES_BYTES} bytes, without NUL")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def check_roles(roles: Sequence[str]) -> list[str]:
    """*roles* without repeats; :class:`~authcore.BadRequest` (422) for one that cannot be a role."""
    for role in roles:
        if not isinstance(role, str) or not 1 <= len(role) <= 256 or not role.isprintable() or role != role.strip():
            raise BadRequest("a role is 1-256 printable characters without leading or trailing space", status_code=422)
    return list(dict.fromkeys(roles))
