"""Sessions end as they should: with their provider instance, by refresh token, once, and on a
store path nobody can redirect. Each test failed on the code before the fix it names."""

from __future__ import annotations

import sqlite3
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authcore import AuthManager, ConfigError, Identity, InvalidToken, hookimpl
from authcore.config import parse_config
from authcore.permission_store import SQLPermissionStore
from authcore.plugins import create_plugin_manager
from authcore.sessions import MemorySessionStore, SessionRecord, SessionStore, SQLiteSessionStore
from authcore.testing.race import outcomes, race

SECRET = "test-only-secret-0123456789abcdefghij"


def config(store: Path, *providers: dict[str, Any]) -> dict[str, Any]:
    return {
        "tokens": {"secret": SECRET},
        "sessions": {"store": f"sqlite:///{store}"},
        "providers": list(providers) or [{"name": "other", "type": "noauth"}],
    }


# ------------------------------------------------------------ sessions belong to their instance


@pytest.mark.parametrize(
    "after",
    [
        pytest.param([{"name": "other", "type": "noauth"}], id="removed"),
        pytest.param(
            [{"name": "dev", "type": "dummy", "enabled": False}, {"name": "x", "type": "noauth"}], id="disabled"
        ),
        pytest.param([{"name": "renamed", "type": "dummy"}], id="renamed"),
    ],
)
def test_sessions_of_an_instance_that_is_gone_are_refused(tmp_path: Path, after: list[dict[str, Any]]) -> None:
    store = tmp_path / "sessions.db"
    with AuthManager.from_config(config(store, {"name": "dev", "type": "dummy"})) as before:
        result = before.login("dev", login="alice", password="Admin")
        kept = before.login("dev", login="bob", password="Admin")
    # A restart with the same secret and store, but the instance 'dev' is no longer enabled.
    with AuthManager.from_config(config(store, *after)) as restarted:
        with pytest.raises(InvalidToken):
            restarted.verify(result.access_token)
        with pytest.raises(InvalidToken):
            restarted.refresh(result.refresh_token)
        with pytest.raises(InvalidToken):  # every session of the instance, not only the one refreshed
            restarted.verify(kept.access_token)
    # Back with the instance: the session whose refresh was refused stays ended; the other lives.
    with AuthManager.from_config(config(store, {"name": "dev", "type": "dummy"})) as again:
        with pytest.raises(InvalidToken):
            again.verify(result.access_token)
        assert again.verify(kept.access_token).login == "bob"


def test_sessions_of_a_kept_instance_survive_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "sessions.db"
    with AuthManager.from_config(config(store, {"name": "dev", "type": "dummy"})) as before:
        result = before.login("dev", login="alice", password="Admin")
    added = [{"name": "dev", "type": "dummy"}, {"name": "more", "type": "noauth"}]
    with AuthManager.from_config(config(store, *added)) as restarted:
        assert restarted.verify(result.access_token).login == "alice"
        assert restarted.refresh(result.refresh_token).login == "alice"


# ------------------------------------------------------------ logout by refresh token


@pytest.fixture
def manager() -> Iterator[AuthManager]:
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as m:
        yield m


def test_logout_with_the_refresh_token(manager: AuthManager) -> None:
    result = manager.login("dummy", login="alice", password="Admin")
    manager.logout(result.refresh_token)
    with pytest.raises(InvalidToken):
        manager.verify(result.access_token)
    with pytest.raises(InvalidToken):
        manager.refresh(result.refresh_token)
    with pytest.raises(InvalidToken):  # a second logout finds the session ended
        manager.logout(result.refresh_token)


def test_logout_with_an_earlier_refresh_token_ends_the_session(manager: AuthManager) -> None:
    first = manager.login("dummy", login="alice", password="Admin")
    second = manager.refresh(first.refresh_token)
    manager.logout(first.refresh_token)
    with pytest.raises(InvalidToken):
        manager.verify(second.access_token)


@pytest.mark.parametrize("bad", ["", "rt_", "rt_" + "x" * 43, "rt_" + "x" * 5000, "rt_ü", "\x00", "not-a-token"])
def test_logout_with_garbage_is_invalid_token(manager: AuthManager, bad: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        manager.logout(bad)
    assert bad not in str(caught.value) or not bad


def test_logout_by_refresh_token_on_sqlite(tmp_path: Path) -> None:
    with AuthManager.from_config(config(tmp_path / "s.db", {"name": "dev", "type": "dummy"})) as m:
        first = m.login("dev", login="alice", password="Admin")
        second = m.refresh(first.refresh_token)
        m.logout(first.refresh_token)
        with pytest.raises(InvalidToken):
            m.verify(second.access_token)


# ------------------------------------------------------------ one logout, one hook call


class _Counting:
    def __init__(self) -> None:
        self.logouts: list[str] = []
        self.lock = threading.Lock()

    @hookimpl
    def authcore_logout(self, session_id: str, login: str) -> None:
        with self.lock:
            self.logouts.append(session_id)


def _upstream_module() -> types.ModuleType:
    from authcore import PasswordCredentials, Provider, UpstreamSessions

    class Upstream(Provider, UpstreamSessions):
        type = "upstream"
        credential_types = (PasswordCredentials,)
        upstream_logouts = 0

        def authenticate(self, credentials: Any) -> Identity:
            return Identity(login=credentials.login)

        def refresh_upstream(self, identity: Identity) -> Identity:
            return identity

        def logout_upstream(self, identity: Identity) -> None:
            type(self).upstream_logouts += 1

    module = types.ModuleType("lifecycle_upstream_provider")
    module.Upstream = Upstream  # type: ignore[attr-defined]
    return module


class _LockstepStore(MemorySessionStore):
    """A memory store whose ``get`` waits until two callers have read: both logouts see the
    session alive before either revokes it, the interleaving that fired the hooks twice."""

    def __init__(self) -> None:
        super().__init__()
        self.lockstep: threading.Barrier | None = None

    def get(self, session_id: str) -> SessionRecord | None:
        record = super().get(session_id)
        if self.lockstep is not None:
            self.lockstep.wait()
        return record


class _LockstepStorePlugin:
    def __init__(self) -> None:
        self.store = _LockstepStore()

    @hookimpl
    def authcore_session_store(self, url: str) -> SessionStore | None:
        return self.store if url == "lockstep://" else None


def test_concurrent_logouts_end_the_session_once() -> None:
    module = _upstream_module()
    sys.modules[module.__name__] = module
    plugins = create_plugin_manager()
    stores = _LockstepStorePlugin()
    plugins.register(stores)
    counting = _Counting()
    plugins.register(counting)
    cfg = {"sessions": {"store": "lockstep://"}, "providers": [{"name": "up", "class": f"{module.__name__}:Upstream"}]}
    try:
        with AuthManager(parse_config(cfg), plugin_manager=plugins) as m:
            result = m.login("up", login="alice", password="pw")
            stores.store.lockstep = threading.Barrier(2, timeout=30)
            tokens = (result.access_token, result.refresh_token)
            assert outcomes(race(lambda i: m.logout(tokens[i]), 2)) == {"ok": 1, "InvalidToken": 1}
            assert counting.logouts == [result.session_id]
            assert module.Upstream.upstream_logouts == 1
    finally:
        del sys.modules[module.__name__]


# ------------------------------------------------------------ the SQLite store's path


@pytest.mark.parametrize("which", ["", "-wal", "-shm", "-journal"])
def test_sqlite_store_refuses_a_symlinked_path(tmp_path: Path, which: str) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    database = tmp_path / "sessions.db"
    (tmp_path / f"sessions.db{which}").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        SQLiteSessionStore(database)
    assert target.read_bytes() == b""  # nothing was written through the link


def test_sqlite_store_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    database.symlink_to(tmp_path / "created-through-the-link.db")
    with pytest.raises(ConfigError, match="symbolic link"):
        SQLiteSessionStore(database)
    assert not (tmp_path / "created-through-the-link.db").exists()


def test_sqlite_store_in_a_symlinked_directory_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    SQLiteSessionStore(tmp_path / "link" / "sessions.db").close()
    assert (real / "sessions.db").exists()


# ------------------------------------------------------------ the SQL permission store


def test_permission_store_sees_person_tables_created_after_the_first_login(tmp_path: Path) -> None:
    path = tmp_path / "perms.db"
    store = SQLPermissionStore(path)
    store.create_schema()
    store.grant("staff", ["all_proposals"])
    assert store.groups_of_person("alice") == set()  # no Person tables yet
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE Person (personId INTEGER PRIMARY KEY, login TEXT);
            CREATE TABLE UserGroup_has_Person (userGroupId INTEGER, personId INTEGER);
            INSERT INTO Person VALUES (1, 'alice');
            INSERT INTO UserGroup_has_Person SELECT userGroupId, 1 FROM UserGroup WHERE name = 'staff';
            """
        )
    assert store.groups_of_person("alice") == {"staff"}
    assert store.authcore_permissions(Identity(login="alice")) == ["all_proposals"]
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP TABLE UserGroup_has_Person;")
    assert store.groups_of_person("alice") == set()  # dropped again: no error, no stale answer


# ------------------------------------------------------------ permissions follow the groups on refresh


def _demoting_module() -> types.ModuleType:
    from authcore import PasswordCredentials, Provider, UpstreamSessions

    class Demoting(Provider, UpstreamSessions):
        """Grants 'own' itself; its groups come from a class attribute the test changes."""

        type = "demoting"
        credential_types = (PasswordCredentials,)
        groups: tuple[str, ...] = ("admins", "staff")

        def authenticate(self, credentials: Any) -> Identity:
            return Identity(login=credentials.login, groups=type(self).groups, permissions=("own",))

        def refresh_upstream(self, identity: Identity) -> Identity:
            return identity.model_copy(update={"groups": type(self).groups})

        def logout_upstream(self, identity: Identity) -> None:
            return None

    module = types.ModuleType("lifecycle_demoting_provider")
    module.Demoting = Demoting  # type: ignore[attr-defined]
    return module


def test_a_group_taken_away_upstream_takes_its_permissions_at_the_next_refresh() -> None:
    module = _demoting_module()
    sys.modules[module.__name__] = module
    try:
        cfg = {
            "providers": [{"name": "up", "class": f"{module.__name__}:Demoting"}],
            "permissions": {"groups": {"admins": ["admin"], "staff": ["read"]}},
        }
        with AuthManager.from_config(cfg) as m:
            first = m.login("up", login="alice", password="pw")
            assert first.permissions == ("admin", "own", "read")
            module.Demoting.groups = ("staff",)  # type: ignore[attr-defined]
            second = m.refresh(first.refresh_token)
            assert second.permissions == ("own", "read")
            assert m.verify(second.access_token).permissions == frozenset({"own", "read"})
            third = m.refresh(second.refresh_token)  # and it stays gone
            assert third.permissions == ("own", "read")
    finally:
        del sys.modules[module.__name__]


def test_a_group_mapping_removed_from_the_configuration_takes_its_permissions_at_the_next_refresh(
    tmp_path: Path,
) -> None:
    store = tmp_path / "sessions.db"
    base = config(store, {"name": "dev", "type": "dummy"})
    with AuthManager.from_config({**base, "permissions": {"groups": {"Admin": ["all_proposals"]}}}) as before:
        result = before.login("dev", login="alice", password="Admin")
        assert result.permissions == ("Admin", "all_proposals")
    with AuthManager.from_config(base) as restarted:  # the mapping is gone
        renewed = restarted.refresh(result.refresh_token)
        assert renewed.permissions == ("Admin",)  # what the provider granted itself stays


# ------------------------------------------------------------ a login whose token cannot be issued


class _Audit:
    def __init__(self) -> None:
        self.succeeded: list[str] = []
        self.failed: list[str] = []

    @hookimpl
    def authcore_login_succeeded(self, identity: Identity, provider: str) -> None:
        self.succeeded.append(identity.login)

    @hookimpl
    def authcore_login_failed(self, provider: str, login: str | None, error: Any) -> None:
        self.failed.append(type(error).__name__)


class _Reserved:
    @hookimpl
    def authcore_token_claims(self, identity: Identity) -> dict[str, Any]:
        return {"sid": "not-yours"}


def test_a_login_whose_token_cannot_be_issued_leaves_no_session_and_no_success() -> None:
    plugins = create_plugin_manager()
    stores = _LockstepStorePlugin()
    audit = _Audit()
    for plugin in (stores, audit, _Reserved()):
        plugins.register(plugin)
    cfg = {"sessions": {"store": "lockstep://"}, "providers": [{"name": "dummy"}]}
    with AuthManager(parse_config(cfg), plugin_manager=plugins) as m:
        from authcore import AuthError

        with pytest.raises(AuthError, match="reserved"):
            m.login("dummy", login="alice", password="Admin")
        assert audit.succeeded == [] and audit.failed == ["AuthError"]
        # No session was stored for it (its tokens come first): nothing live, nothing to purge.
        assert m.sessions_of("alice") == [] and stores.store.purge(0) == 0
