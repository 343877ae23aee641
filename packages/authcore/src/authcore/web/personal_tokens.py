"""Personal access tokens over HTTP: a signed-in user lists, creates and revokes their own.

``GET /auth/tokens``, ``POST /auth/tokens`` (``{name, permissions?, expires_in?}``: 201 with the
token, shown once) and ``DELETE /auth/tokens/{token_id}``. A token is a token's session
(:mod:`authcore.session_control`): its permissions are a subset of the caller's, it expires,
and it dies with its user (disabling a user ends every session of theirs). A caller signed in
with a personal access token cannot create more: a leaked token must not breed.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..config.schema import TokenConfig
from ..errors import BadRequest, Forbidden, TokenNotFound
from ..manager import AuthManager
from ..models import Identity, VerifiedToken
from ..sessions import SessionRecord

__all__ = ["NewPersonalToken", "create_token", "list_tokens", "revoke_token", "token_payload"]

_Permission = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class NewPersonalToken(BaseModel):
    """``POST /auth/tokens``: a name, the permissions (default: all the caller's), a lifetime in seconds."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    name: str = Field(min_length=1, max_length=100)
    permissions: list[_Permission] | None = Field(default=None, max_length=100)
    expires_in: int | None = Field(default=None, ge=60)


def _is_personal(record: SessionRecord) -> bool:
    attributes = record.identity.get("attributes")
    return isinstance(attributes, dict) and attributes.get("personal_token") is True


def token_payload(record: SessionRecord) -> dict[str, Any]:
    """What a listing shows of a token: never the token, which is not kept."""
    attributes = record.identity.get("attributes") or {}
    return {
        "token_id": record.session_id,
        "name": attributes.get("name"),
        "permissions": sorted(record.identity.get("permissions") or ()),
        "created_at": int(record.created_at),
        "expires_at": int(record.absolute_expires_at),
    }


def list_tokens(manager: AuthManager, caller: VerifiedToken) -> dict[str, Any]:
    """The caller's live personal access tokens, oldest first."""
    records = manager.sessions_of(caller.login, provider=caller.provider)
    return {"tokens": [token_payload(r) for r in records if _is_personal(r)]}


def create_token(
    manager: AuthManager, caller: VerifiedToken, body: NewPersonalToken, config: TokenConfig
) -> dict[str, Any]:
    """A new token of the caller's (see the module docstring); its secret is in ``token``, shown once."""
    if caller.claims.get("token_type") == "personal":
        raise Forbidden("a personal access token cannot create tokens: sign in")
    wanted = sorted(set(body.permissions)) if body.permissions is not None else sorted(caller.permissions)
    missing = [p for p in wanted if not caller.allows(p)]
    if missing:
        raise Forbidden("a token gets only permissions its creator holds")
    lifetime = float(body.expires_in) if body.expires_in is not None else float(config.personal_ttl)
    if lifetime > config.personal_max_ttl:
        raise BadRequest(f"expires_in is at most {int(config.personal_max_ttl)} seconds")
    identity = Identity(
        login=caller.login,
        provider=caller.provider,
        groups=caller.groups,
        permissions=tuple(wanted),
        attributes={"personal_token": True, "name": body.name},
    )
    token, record = manager.issue_personal_token(identity, lifetime=lifetime)
    return {**token_payload(record), "token": token, "token_type": "Bearer"}


def revoke_token(manager: AuthManager, caller: VerifiedToken, token_id: str) -> None:
    """End one of the caller's live personal access tokens; :class:`TokenNotFound` for any other id."""
    record = manager.session_record(token_id) if len(token_id) <= 64 else None
    mine = record is not None and (record.login, record.provider) == (caller.login, caller.provider)
    if record is None or not mine or not _is_personal(record) or not record.active(time.time()):
        raise TokenNotFound()
    manager.end_session(record.session_id)
