"""AuthManager end to end with the real dummy provider: logins, hooks, tokens, sessions, production rules."""

from __future__ import annotations

import asyncio
import time

import pytest

from authcore import (
    AuthError,
    AuthManager,
    ConfigError,
    Forbidden,
    Identity,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    PasswordCredentials,
    TokenExpired,
    UnknownProvider,
    hookimpl,
)
from authcore.permission_store import SQLPermissionStore
from authcore.testing.race import outcomes, race

DUMMY = {"providers": [{"name": "dummy"}]}
STRONG = "test-only-secret-0123456789abcdefghij"


@pytest.fixture
def manager():
    with AuthManager.from_config(DUMMY) as m:
        yield m


def test_login_result(manager):
    result = manager.login("dummy", login="test", password="Admin")
    assert result.login == "test"
    assert result.permissions == ("Admin",)
    assert result.token_type == "Bearer"
    assert 0 < result.expires_in <= 900
    assert result.refresh_token.startswith("rt_")
    assert result.access_token not in repr(result) and result.refresh_token not in repr(result)
    verified = manager.verify(result.access_token)
    assert verified.login == "test" and verified.provider == "dummy"
    assert verified.claims["username"] == "test" and verified.claims["permissions"] == ["Admin"]


def test_unknown_provider_instance(manager):
    with pytest.raises(UnknownProvider, match="enabled: dummy"):
        manager.login("ldap", login="a", password="b")


def test_disabled_provider_is_not_started():
    with AuthManager.from_config({"providers": [{"name": "dummy", "enabled": False}, {"name": "noauth"}]}) as m:
        assert list(m.providers) == ["noauth"]
        with pytest.raises(UnknownProvider):
            m.login("dummy", login="a", password="b")


def test_several_instances_of_one_type():
    config = {
        "providers": [{"name": "a", "type": "dummy"}, {"name": "b", "type": "dummy", "config": {"token_login": "bot"}}]
    }
    with AuthManager.from_config(config) as m:
        assert m.login("a", login="x", password="p").identity.provider == "a"
        assert m.login("b", token="p").login == "bot"


def test_verify_garbage(manager):
    for bad in ["", "x", "a.b.c", "rt_" + "a" * 43, "ü" * 10, "\x00", "x" * 100_000]:
        with pytest.raises(InvalidToken):
            manager.verify(bad)


def test_refresh_rotates_and_reuse_revokes(manager):
    first = manager.login("dummy", login="u", password="read")
    second = manager.refresh(first.refresh_token)
    assert second.session_id == first.session_id
    assert manager.verify(second.access_token).login == "u"
    with pytest.raises(InvalidToken):
        manager.refresh(first.refresh_token)  # reuse: the session is revoked
    with pytest.raises(InvalidToken):
        manager.refresh(second.refresh_token)
    with pytest.raises(InvalidToken):
        manager.verify(second.access_token)  # was cached: the revocation still shows


def test_refresh_token_is_not_an_access_token(manager):
    result = manager.login("dummy", login="u", password="read")
    with pytest.raises(InvalidToken):
        manager.verify(result.refresh_token)
    with pytest.raises(InvalidToken):
        manager.refresh(result.access_token)


def test_logout_beats_the_cache(manager):
    result = manager.login("dummy", login="u", password="read")
    manager.verify(result.access_token)
    manager.verify(result.access_token)  # cached
    manager.logout(result.access_token)
    with pytest.raises(InvalidToken):
        manager.verify(result.access_token)
    with pytest.raises(InvalidToken):
        manager.logout(result.access_token)


def test_access_token_never_outlives_the_session():
    config = {**DUMMY, "tokens": {"access_ttl": "1h"}, "sessions": {"idle_timeout": 60, "max_lifetime": 120}}
    with AuthManager.from_config(config) as m:
        result = m.login("dummy", login="u", password="read")
        assert result.expires_in <= 120


def test_expired_session_rejects_access_token(monkeypatch):
    import time as real_time

    from authcore import manager as manager_module

    config = {**DUMMY, "tokens": {"access_ttl": 50}, "sessions": {"idle_timeout": 20, "max_lifetime": 30}}
    with AuthManager.from_config(config) as m:
        result = m.login("dummy", login="u", password="read")
        later = real_time.time() + 45  # past the session's absolute end
        monkeypatch.setattr(manager_module.time, "time", lambda: later)
        with pytest.raises((InvalidToken, TokenExpired)):
            m.verify(result.access_token)
        with pytest.raises((InvalidToken, TokenExpired)):
            m.refresh(result.refresh_token)


def test_group_mapping_and_default_permissions():
    config = {
        **DUMMY,
        "permissions": {"groups": {"Admin": ["all_proposals", "all_sessions"]}, "authenticated": ["own_proposals"]},
    }
    with AuthManager.from_config(config) as m:
        assert m.login("dummy", login="a", password="Admin").permissions == (
            "Admin",
            "all_proposals",
            "all_sessions",
            "own_proposals",
        )


def test_require(manager):
    verified = manager.verify(manager.login("dummy", login="u", password="contents:read,x").access_token)
    manager.require(verified, {"contents": ["read"]})
    manager.require(["a"], ["a"])
    with pytest.raises(Forbidden):
        manager.require(verified, {"contents": ["write"]})


class Enricher:
    @hookimpl
    def authcore_identity_updates(self, identity, provider):
        return {"email": f"{identity.login}@example.org", "groups": (*identity.groups, "staff")}

    @hookimpl
    def authcore_permissions(self, identity):
        return ["from-hook"] if "staff" in identity.groups else None

    @hookimpl
    def authcore_token_claims(self, identity):
        return {"beamline": "id30"}


class Audit:
    def __init__(self):
        self.events = []

    @hookimpl
    def authcore_login_succeeded(self, identity, provider):
        self.events.append(("ok", identity.login, provider))

    @hookimpl
    def authcore_login_failed(self, provider, login, error):
        self.events.append(("fail", login, type(error).__name__))

    @hookimpl
    def authcore_logout(self, session_id, login):
        self.events.append(("logout", login))


def test_hooks(manager):
    audit = Audit()
    manager.plugins.register(Enricher())
    manager.plugins.register(audit)
    result = manager.login("dummy", login="ann", password="read")
    assert result.identity.email == "ann@example.org"
    assert "from-hook" in result.permissions
    verified = manager.verify(result.access_token)
    assert verified.claims["beamline"] == "id30"
    with pytest.raises(InvalidCredentials):
        manager.login("dummy", login="ann", password="")
    manager.logout(result.access_token)
    assert audit.events == [("ok", "ann", "dummy"), ("fail", "ann", "InvalidCredentials"), ("logout", "ann")]


def test_hook_may_refuse_a_login(manager):
    class Refuser:
        @hookimpl
        def authcore_identity_updates(self, identity, provider):
            raise InvalidCredentials("no local person record for " + identity.login)

    manager.plugins.register(Refuser())
    with pytest.raises(InvalidCredentials) as caught:
        manager.login("dummy", login="ghost", password="read")
    assert "ghost" not in str(caught.value)


def test_reserved_claims_cannot_be_overridden(manager):
    class Sneaky:
        @hookimpl
        def authcore_token_claims(self, identity):
            return {"permissions": ["*"]}

    manager.plugins.register(Sneaky())
    with pytest.raises(AuthError, match="reserved"):
        manager.login("dummy", login="a", password="read")


def test_sql_permission_store(tmp_path):
    db = tmp_path / "perm.db"
    store = SQLPermissionStore(db)
    store.create_schema()
    store.grant("Admin", ["all_proposals", "all_sessions"])
    store.grant("user", ["own_proposals", "own_sessions"])
    config = {**DUMMY, "permissions": {"store": f"sqlite:///{db}"}}
    with AuthManager.from_config(config) as m:
        assert m.login("dummy", login="a", password="Admin").permissions == ("Admin", "all_proposals", "all_sessions")
        assert m.login("dummy", login="b", password="user").permissions == ("own_proposals", "own_sessions", "user")
        assert m.login("dummy", login="c", password="nothing").permissions == ("nothing",)


def test_sql_permission_store_person_groups(tmp_path):
    db = tmp_path / "ispyb.db"
    store = SQLPermissionStore(db)
    store.create_schema()
    store.grant("manager", ["all_proposals"])
    conn = store._connection()
    conn.executescript(
        "CREATE TABLE Person (personId INTEGER PRIMARY KEY, login TEXT);"
        "CREATE TABLE UserGroup_has_Person (userGroupId INTEGER, personId INTEGER);"
        "INSERT INTO Person VALUES (7, 'boss');"
        "INSERT INTO UserGroup_has_Person SELECT userGroupId, 7 FROM UserGroup WHERE name = 'manager';"
    )
    conn.commit()
    identity = Identity(login="boss")
    assert store.authcore_permissions(identity) == ["all_proposals"]
    assert store.authcore_permissions(Identity(login="'; DROP TABLE Person; --")) == []


def test_permission_store_url_errors():
    with pytest.raises(ConfigError):
        SQLPermissionStore.from_url("postgres://x")
    with pytest.raises(ConfigError):
        SQLPermissionStore.from_url("sqlite://")


def test_users_not_supported(manager):
    with pytest.raises(NotSupported, match="dummy"):
        manager.users("dummy")


def test_public_config(manager):
    config = manager.public_config()
    assert config["providers"] == [{"name": "dummy", "type": "dummy", "credentials": ["password", "token"]}]
    assert manager.jwks() == {"keys": []}


@pytest.mark.parametrize(
    "tokens",
    [{}, {"secret": "short"}, {"secret": "changeme"}, {"secret": "a" * 40}, {"secret": "your-256-bit-secret"}],
)
def test_production_refuses_weak_secrets(tokens):
    with pytest.raises(ConfigError) as caught:
        AuthManager.from_config({"production": True, "tokens": tokens, "providers": []})
    if "secret" in tokens:
        assert tokens["secret"] not in str(caught.value)


def test_production_accepts_a_strong_secret(fake_dist):
    # A provider that is not for development only (production refuses dummy and noauth).
    module = (
        "from authcore import Identity, Provider\n"
        "class Plain(Provider):\n"
        "    type = 'plain'\n"
        "    def authenticate(self, credentials):\n"
        "        return Identity(login=credentials.login)\n"
    )
    fake_dist("mod-only", {}, {"plain_auth": module})
    config = {
        "production": True,
        "tokens": {"secret": STRONG},
        "providers": [{"name": "p", "class": "plain_auth:Plain"}],
    }
    with AuthManager.from_config(config) as m:
        assert list(m.providers) == ["p"]


def test_development_secret_warning(caplog):
    with AuthManager.from_config(DUMMY):
        pass
    assert "random per-process secret" in caplog.text


def test_unknown_session_store_scheme():
    with pytest.raises(ConfigError, match="mongodb"):
        AuthManager.from_config({**DUMMY, "sessions": {"store": "mongodb://localhost"}})


def test_async_api(manager):
    async def main():
        result = await manager.alogin("dummy", login="a", password="read")
        verified = await manager.averify(result.access_token)
        again = await manager.arefresh(result.refresh_token)
        await manager.alogout(again.access_token)
        return verified.login

    assert asyncio.run(main()) == "a"


def test_async_login_does_not_block_the_loop(manager):
    # A blocking provider call runs in a worker thread: the loop keeps ticking meanwhile.
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(*[manager.alogin("dummy", login=f"u{i}", password="read") for i in range(20)])
        task.cancel()
        return ticks, results

    ticks, results = asyncio.run(main())
    assert ticks > 0 and len(results) == 20


def test_threads_share_one_manager(manager):
    mixups = []

    def worker(n):
        for i in range(200):
            login = f"user{n}-{i}"
            result = manager.login("dummy", login=login, password=f"p{n}")
            verified = manager.verify(result.access_token)
            if verified.login != login or verified.permissions != frozenset({f"p{n}"}):
                mixups.append(login)

    results = race(worker)
    assert outcomes(results) == {"ok": 8}, results
    assert mixups == []


def _bearer_provider_class():
    from authcore import BearerIdentity, BearerTokens, PasswordCredentials, Provider, ProviderConfig

    class TableConfig(ProviderConfig):
        tokens: dict[str, str] = {}

    class TableProvider(Provider, BearerTokens):
        type = "table"
        Config = TableConfig
        credential_types = (PasswordCredentials,)
        calls = 0

        def authenticate(self, credentials):
            raise InvalidCredentials()

        def verify_bearer(self, token):
            type(self).calls += 1
            if not token.startswith("ext-"):
                return None
            login = self.config.tokens.get(token)
            if login is None:
                raise InvalidToken()
            return BearerIdentity(identity=Identity(login=login, groups=("staff",)), expires_at=time.time() + 60)

    return TableProvider


def test_bearer_tokens_of_an_identity_provider(fake_dist):
    import sys
    import types

    module = types.ModuleType("table_bearer_provider")
    module.TableProvider = _bearer_provider_class()
    sys.modules["table_bearer_provider"] = module
    try:
        config = {
            "providers": [
                {"name": "sso", "class": "table_bearer_provider:TableProvider", "config": {"tokens": {"ext-1": "ann"}}}
            ],
            "permissions": {"groups": {"staff": ["read"]}},
        }
        with AuthManager.from_config(config) as m:
            verified = m.verify("ext-1")
            assert (verified.login, verified.provider, verified.permissions) == ("ann", "sso", frozenset({"read"}))
            calls = module.TableProvider.calls
            assert m.verify("ext-1") is verified and module.TableProvider.calls == calls  # cached
            with pytest.raises(InvalidToken):
                m.verify("ext-unknown")
            with pytest.raises(InvalidToken):
                m.verify("not-anyones")
    finally:
        del sys.modules["table_bearer_provider"]


def _upstream_provider_class():
    from authcore import PasswordCredentials, Provider, ProviderUnavailable, UpstreamSessions

    class Upstream(Provider, UpstreamSessions):
        type = "upstream"
        credential_types = (PasswordCredentials,)
        mode = "ok"

        def authenticate(self, credentials):
            return Identity(login=credentials.login, groups=("viewers",), session_state={"n": 0})

        def refresh_upstream(self, identity):
            if type(self).mode == "down":
                raise ProviderUnavailable()
            if type(self).mode == "ended":
                raise InvalidToken()
            state = identity.session_state or {}
            return identity.model_copy(update={"groups": ("editors",), "session_state": {"n": state["n"] + 1}})

        def logout_upstream(self, identity):
            return None

    return Upstream


@pytest.fixture
def upstream_manager():
    import sys
    import types

    module = types.ModuleType("upstream_test_provider")
    module.Upstream = _upstream_provider_class()
    sys.modules["upstream_test_provider"] = module
    config = {
        "providers": [{"name": "up", "class": "upstream_test_provider:Upstream"}],
        "permissions": {"groups": {"viewers": ["read"], "editors": ["read", "write"]}},
    }
    with AuthManager.from_config(config) as m:
        yield m, module.Upstream
    del sys.modules["upstream_test_provider"]


def test_upstream_refresh_recomputes_permissions(upstream_manager):
    manager, _ = upstream_manager
    first = manager.login("up", login="u", password="p")
    assert first.permissions == ("read",)
    second = manager.refresh(first.refresh_token)
    assert second.identity.groups == ("editors",) and second.permissions == ("read", "write")
    assert manager.verify(second.access_token).permissions == frozenset({"read", "write"})
    third = manager.refresh(second.refresh_token)
    assert third.identity.session_state == {"n": 2}


def test_upstream_down_keeps_the_session(upstream_manager):
    manager, cls = upstream_manager
    first = manager.login("up", login="u", password="p")
    cls.mode = "down"
    second = manager.refresh(first.refresh_token)  # identity kept as it was
    assert second.permissions == ("read",)
    cls.mode = "ok"
    assert manager.refresh(second.refresh_token).permissions == ("read", "write")


def test_upstream_session_ended_ends_ours(upstream_manager):
    manager, cls = upstream_manager
    first = manager.login("up", login="u", password="p")
    cls.mode = "ended"
    with pytest.raises(InvalidToken):
        manager.refresh(first.refresh_token)
    with pytest.raises(InvalidToken):
        manager.verify(first.access_token)


def test_login_blocks(tmp_path):
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as m:
        assert m.login_blocks("dummy") is False
        assert m.login_blocks("nope") is True
    config = {"providers": [{"name": "dummy"}], "sessions": {"store": f"sqlite:///{tmp_path}/s.db"}}
    with AuthManager.from_config(config) as m:
        assert m.login_blocks("dummy") is True


def test_login_with_a_credential_package(manager):
    """The whole login from a ready-made package is login_with; authenticate is the provider's check only."""
    credentials = PasswordCredentials.model_validate({"login": "ann", "password": "read"})
    result = manager.login_with("dummy", credentials)
    assert manager.verify(result.access_token).login == "ann"
    assert not hasattr(manager, "authenticate")
