"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types

import pytest

from authcore import AuthManager, ConfigError, Identity, InvalidToken
from authcore.permission_store import SQLPermissionStore

DUMMY = {"providers": [{"name": "dummy"}]}


# --------------------------------------------------------------------------- verified-token cache


def test_logout_racing_with_verify_cannot_leave_a_cached_token():
    # verify() checks the session, then a logout (another thread) revokes it and drops the
    # session's cache entries, then verify() caches: the token outlived its logout.
    with AuthManager.from_config(DUMMY) as m:
        result = m.login("dummy", login="u", password="read")
        store = m._sessions.store
        real_peek = store.peek  # what verify() reads the session with
        raced = False

        def peek_then_logout(session_id):
            nonlocal raced
            record = real_peek(session_id)
            if not raced:
                raced = True
                m._sessions.revoke(session_id)  # what logout() does, between check and put
                m._cache.drop_session(session_id)
            return record

        store.peek = peek_then_logout
        try:
            assert m.verify(result.access_token).login == "u"  # checked before the logout landed
        finally:
            store.peek = real_peek
        with pytest.raises(InvalidToken):
            m.verify(result.access_token)


def test_cached_token_does_not_outlive_the_session_idle_timeout(monkeypatch):
    config = {**DUMMY, "tokens": {"access_ttl": "1h"}, "sessions": {"idle_timeout": 60, "max_lifetime": 7200}}
    with AuthManager.from_config(config) as m:
        result = m.login("dummy", login="u", password="read")
        m.verify(result.access_token)  # cached
        later = time.time() + 120  # idle for longer than idle_timeout, token still before exp
        monkeypatch.setattr(time, "time", lambda: later)
        with pytest.raises(InvalidToken):
            m.verify(result.access_token)


# --------------------------------------------------------------------------- bearer fallback


def _permissive_bearer_module():
    from authcore import BearerIdentity, BearerTokens, InvalidCredentials, PasswordCredentials, Provider

    class Permissive(Provider, BearerTokens):
        """An identity provider that vouches for any token (an introspection gateway, say)."""

        type = "permissive"
        credential_types = (PasswordCredentials,)
        calls: list[str] = []
        threads: list[threading.Thread] = []

        def authenticate(self, credentials):
            raise InvalidCredentials()

        def verify_bearer(self, token):
            type(self).calls.append(token)
            type(self).threads.append(threading.current_thread())
            return BearerIdentity(identity=Identity(login="mallory"), expires_at=time.time() + 60)

    module = types.ModuleType("permissive_bearer_provider")
    module.Permissive = Permissive
    return module


@pytest.fixture
def permissive():
    module = _permissive_bearer_module()
    sys.modules[module.__name__] = module
    config = {"providers": [{"name": "dummy"}, {"name": "sso", "class": "permissive_bearer_provider:Permissive"}]}
    try:
        with AuthManager.from_config(config) as m:
            yield m, module.Permissive
    finally:
        del sys.modules[module.__name__]


def test_our_refused_token_is_not_handed_to_a_bearer_provider(permissive):
    m, provider = permissive
    session = m.login("dummy", login="u", password="read")
    # One of ours, validly signed, but not valid yet: our refusal must be final.
    future = m._tokens.issue(
        {"sub": "u", "sid": session.session_id, "exp": int(time.time()) + 7200}, now=time.time() + 3600
    )
    with pytest.raises(InvalidToken):
        m.verify(future)
    # Our exact header with a broken signature: a forgery of ours, not someone else's token.
    head, payload, signature = session.access_token.split(".")
    forged = f"{head}.{payload}.{'A' * len(signature)}"
    with pytest.raises(InvalidToken):
        m.verify(forged)
    assert provider.calls == []
    # A stranger's token still reaches the provider.
    assert m.verify("opaque-upstream-token").login == "mallory"


def test_averify_runs_a_blocking_bearer_provider_off_the_loop(permissive):
    m, provider = permissive

    async def main():
        return await m.averify("opaque-upstream-token"), threading.current_thread()

    verified, loop_thread = asyncio.run(main())
    assert verified.login == "mallory"
    assert provider.threads and loop_thread not in provider.threads


# --------------------------------------------------------------------------- plugins


HIJACKER = """
from authcore import Identity, Provider, hookimpl

class Evil(Provider):
    type = "evil"
    def authenticate(self, credentials):
        return Identity(login="evil")

class FakeEcho(Provider):
    type = "echo"  # not this distribution's entry-point name
    def authenticate(self, credentials):
        return Identity(login="admin", permissions=("*",))

@hookimpl
def authcore_register_providers(register):
    register(Evil)
    register(FakeEcho)
"""

ECHO = """
from authcore import Identity, Provider, hookimpl

class EchoProvider(Provider):
    type = "echo"
    def authenticate(self, credentials):
        return Identity(login=credentials.login)

@hookimpl
def authcore_register_providers(register):
    register(EchoProvider)
"""


def test_a_plugin_cannot_register_another_distributions_type(fake_dist):
    fake_dist("auth-evil", {"authcore.providers": {"evil": "evil_plugin"}}, {"evil_plugin": HIJACKER})
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, {"echo_plugin": ECHO})
    config = {"providers": [{"name": "bad", "type": "evil"}, {"name": "e", "type": "echo"}]}
    with AuthManager.from_config(config) as m:
        assert type(m.provider("e")).__module__ == "echo_plugin"
        assert m.login("e", login="u", password="p").permissions == ()


def test_an_entry_point_class_must_have_the_entry_point_type(fake_dist):
    fake_dist("auth-evil", {"authcore.providers": {"evil": "evil_plugin:FakeEcho"}}, {"evil_plugin": HIJACKER})
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, {"echo_plugin": ECHO})
    with pytest.raises(ConfigError, match="registers no provider class"):
        AuthManager.from_config({"providers": [{"name": "bad", "type": "evil"}, {"name": "e", "type": "echo"}]})
    with AuthManager.from_config({"providers": [{"name": "e", "type": "echo"}]}) as m:
        assert type(m.provider("e")).__module__ == "echo_plugin"


# --------------------------------------------------------------------------- permission store


def test_memory_permission_store_is_one_database_for_every_thread():
    store = SQLPermissionStore.from_url("sqlite://:memory:")
    store.create_schema()
    store.grant("staff", ["read"])
    seen: list[object] = []
    thread = threading.Thread(
        target=lambda: seen.append(store.authcore_permissions(Identity(login="a", groups=("staff",))))
    )
    thread.start()
    thread.join()
    assert seen == [["read"]]


def test_a_permission_store_registered_in_code_makes_logins_blocking(tmp_path):
    store = SQLPermissionStore(tmp_path / "p.db")
    store.create_schema()
    with AuthManager.from_config(DUMMY) as m:
        m.plugins.register(store, name="host-permissions")
        assert m.login_blocks("dummy") is True
