"""Every expiry check treats its end as *excluded*: RFC 7519 4.1.4 says a JWT is valid only
*before* ``exp``, so at ``exp`` itself (leeway 0) it has expired. One test per place that
compares a time with an end, so a new comparison written with ``>`` instead of ``>=`` shows.
"""

from __future__ import annotations

import pytest

from authcore.config import SessionConfig, TokenConfig
from authcore.errors import TokenExpired
from authcore.models import VerifiedToken
from authcore.sessions import MemorySessionStore, Sessions
from authcore.token_cache import TokenCache
from authcore.tokens import TokenService

SECRET = "a-test-only-secret-of-at-least-32-bytes-xx"
NOW = 1_800_000_000


def service(leeway: float) -> TokenService:
    return TokenService(TokenConfig(secret=SECRET, leeway=leeway))


@pytest.mark.parametrize("leeway", [0, 10])
def test_access_token_expires_at_exp_plus_leeway(leeway: float) -> None:
    tokens = service(leeway)
    token = tokens.issue({"sub": "alice", "sid": "s1", "exp": NOW + 60}, now=NOW)
    assert tokens.decode(token, now=NOW + 60 + leeway - 0.001)["sub"] == "alice"
    with pytest.raises(TokenExpired):
        tokens.decode(token, now=NOW + 60 + leeway)


def test_not_before_and_issued_at_include_their_instant() -> None:
    # nbf: valid *from* nbf on (RFC 7519 4.1.5); iat == now is not "in the future".
    tokens = service(0)
    token = tokens.issue({"sub": "alice", "sid": "s1", "exp": NOW + 60}, now=NOW)
    assert tokens.decode(token, now=NOW)["sub"] == "alice"


def test_token_cache_entry_dies_at_its_deadline() -> None:
    cache = TokenCache(8)
    verified = VerifiedToken(
        login="alice",
        provider="p",
        permissions=frozenset(),
        groups=(),
        session_id="s1",
        token_id="t1",
        issued_at=NOW,
        expires_at=NOW + 60,
        claims={},
    )
    cache.put("token", verified, NOW + 60)
    assert cache.get("token", NOW + 59.999) is verified
    assert cache.get("token", NOW + 60) is None


def test_session_is_over_at_its_idle_and_absolute_ends() -> None:
    sessions = Sessions(MemorySessionStore(), SessionConfig(idle_timeout=60, max_lifetime=120))
    record, _ = sessions.start(login="alice", provider="p", identity={}, now=NOW)
    assert record.active(NOW + 59.999)
    assert not record.active(record.idle_expires_at)
    assert not record.active(record.absolute_expires_at)
