"""The access-token claim layout: one writer, one reader, one reserved set."""

from __future__ import annotations

from typing import Any

import pytest

from authcore import AuthManager, Identity, hookimpl
from authcore.claims import RESERVED_CLAIMS, SESSION_CLAIMS, SIGNING_CLAIMS, access_claims, verified_token
from authcore.config import TokenConfig
from authcore.errors import AuthError, InvalidToken
from authcore.tokens import TokenService

NOW = 1_700_000_000
SECRET = "claims-test-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ALICE = Identity(login="alice", provider="site-ldap", groups=("staff", "mx"), permissions=("a", "contents:read"))


def signed(claims: dict[str, Any]) -> dict[str, Any]:
    service = TokenService(TokenConfig(secret=SECRET))
    return service.decode(service.issue(claims, now=NOW), now=NOW)


def test_round_trip_through_a_signed_token() -> None:
    claims = access_claims(ALICE, "session-1", NOW + 900.7, [{"beamline": "id30"}])
    verified = verified_token(signed(claims))
    assert verified.login == "alice" and verified.provider == "site-ldap"
    assert verified.permissions == frozenset(ALICE.permissions) and verified.groups == ALICE.groups
    assert verified.session_id == "session-1" and verified.expires_at == NOW + 900 and verified.issued_at == NOW
    assert verified.claims["beamline"] == "id30" and verified.claims["username"] == "alice"


def test_the_reserved_set_is_exactly_what_we_write() -> None:
    """Written claims = session claims; the token service adds the signing claims; nothing else."""
    assert set(access_claims(ALICE, "s", NOW + 60)) == SESSION_CLAIMS
    assert set(signed(access_claims(ALICE, "s", NOW + 60))) == RESERVED_CLAIMS == SESSION_CLAIMS | SIGNING_CLAIMS
    assert not SESSION_CLAIMS & SIGNING_CLAIMS


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_a_plugin_never_overrides_a_reserved_claim(name: str) -> None:
    with pytest.raises(AuthError, match="reserved") as caught:
        access_claims(ALICE, "s", NOW + 60, [{"fine": 1}, {name: "forged"}])
    assert "forged" not in str(caught.value)


def test_later_plugin_claims_win_over_earlier_ones() -> None:
    claims = access_claims(ALICE, "s", NOW + 60, [{"site": "a", "x": 1}, {}, {"site": "b"}])
    assert claims["site"] == "b" and claims["x"] == 1


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_every_reserved_claim_is_refused_through_the_manager(name: str) -> None:

    class Sneaky:
        @hookimpl
        def authcore_token_claims(self, identity: Identity) -> dict[str, Any]:
            return {name: "forged"}

    with AuthManager.from_config({"providers": [{"name": "dummy"}], "tokens": {"secret": SECRET}}) as manager:
        manager.plugins.register(Sneaky())
        with pytest.raises(AuthError, match="reserved"):
            manager.login("dummy", login="alice", password="read")


@pytest.mark.parametrize(
    "changes",
    [
        {"permissions": "read"},
        {"permissions": ["read", 1]},
        {"groups": ("staff",)},
        {"groups": [None]},
        {"provider": 7},
        {"permissions": None},
    ],
)
def test_reader_refuses_claims_of_the_wrong_shape(changes: dict[str, Any]) -> None:
    claims = {**signed(access_claims(ALICE, "s", NOW + 60)), **changes}
    if changes.get("permissions", "") is None:
        del claims["permissions"]
    with pytest.raises(InvalidToken, match="shape"):
        verified_token(claims)
