"""Storage: migrations match the tables, run once and concurrently, SQLite in WAL mode, URLs kept secret."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import create_engine, insert, inspect, text

from auth_local import LocalConfig, LocalProvider, PasswordHasher
from auth_local.migrations import HEAD as PACKAGE_HEAD
from auth_local.schema import VERSION_TABLE, metadata, user_roles, users
from authcore import AuthManager, ConfigError, NewUser, ProviderUnavailable
from authcore.testing.race import outcomes, race
from authcore.testing.servers import free_port
from authcore.testing.sqlite_locks import write_locked

PW = "Correct-Horse-Battery-9"
#: The newest migration (auth_local/migrations/versions).
HEAD = "0004"


def _alembic_config() -> AlembicConfig:
    """Alembic's configuration of the package's migrations, as a hand-run ``alembic`` would have it."""
    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", "auth_local:migrations")
    return alembic_config


def _provider(manager: AuthManager) -> LocalProvider:
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    return provider


def test_migrations_create_exactly_the_tables_the_code_uses(manager: AuthManager) -> None:
    """After ``upgrade head`` alembic's autogenerate finds nothing to change, and the version is recorded."""
    engine = _provider(manager).store.engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == HEAD
    tables = {"users", "user_roles", "account_tokens", "totp_enrolments", "recovery_codes", VERSION_TABLE}
    assert tables <= set(inspect(engine).get_table_names())


def test_upgrading_a_0002_database_keeps_the_users(database_url: str, configs: Callable[..., dict[str, Any]]) -> None:
    """A database made by the previous release (revision 0002, a user with a password and a role)
    upgrades to the head at start: the user still logs in with their roles, and can enrol a second factor."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        alembic_config = _alembic_config()
        with engine.begin() as connection:
            alembic_config.attributes["connection"] = connection
            command.upgrade(alembic_config, "0002")
            now = datetime.now(UTC)
            password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PW)
            user_id = connection.execute(
                insert(users)
                .values(login="Olga", login_key="olga", password_hash=password_hash, enabled=True,
                        created_at=now, updated_at=now, attributes={"desk": 7})
                .returning(users.c.id)
            ).scalar_one()  # fmt: skip
            connection.execute(insert(user_roles).values(user_id=user_id, role="staff"))
            assert (
                MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
                == "0002"
            )
    finally:
        engine.dispose()
    manager = AuthManager.from_config(configs(database_url))
    try:
        result = manager.login("users", login="olga", password=PW)
        assert result.identity.login == "Olga" and result.identity.groups == ("staff",)
        assert result.identity.attributes["desk"] == 7 and result.identity.attributes["email_verified"] is False
        provider = _provider(manager)
        with provider.store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            assert context.get_current_revision() == HEAD
        assert not provider.second_factor_status("Olga").enrolled
        assert len(provider.begin_enrolment("Olga").recovery_codes) == 10
    finally:
        manager.close()


def test_starting_again_keeps_the_users(make_manager: Callable[..., AuthManager]) -> None:
    """A second start (another process, a restart) migrates nothing and sees the same users."""
    make_manager().users("users").create_user(NewUser(login="rita", password=PW))
    assert make_manager().login("users", login="rita", password=PW).login == "rita"


def test_the_package_names_the_newest_migration() -> None:
    """``auth_local.migrations.HEAD``, which lets a start skip alembic, is the scripts' head."""
    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == PACKAGE_HEAD == HEAD


_START_AND_LOG_IN = """
import json, sys
from authcore import AuthManager
manager = AuthManager.from_config(json.loads(sys.argv[1]))
print(json.dumps([manager.login("users", login="rita", password=sys.argv[2]).login, "alembic" in sys.modules]))
"""


def test_a_start_on_a_database_at_the_newest_revision_imports_no_alembic(
    database_url: str, make_manager: Callable[..., AuthManager], configs: Callable[..., dict[str, Any]]
) -> None:
    """The first start migrates; a start in a new process on the migrated database reads the
    recorded revision and leaves alembic unimported (it costs every CLI command a tenth of a second)."""
    make_manager().users("users").create_user(NewUser(login="rita", password=PW))
    config = json.dumps(configs(database_url))
    started = subprocess.run(
        [sys.executable, "-c", _START_AND_LOG_IN, config, PW], capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout) == ["rita", False]


def test_a_database_at_an_older_revision_is_migrated(
    database_url: str, make_manager: Callable[..., AuthManager]
) -> None:
    """A recorded revision other than the newest one is migrated (the check reads, alembic decides)."""
    engine = _provider(make_manager()).store.engine
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0003'"))  # 0004 runs again
    manager = make_manager()
    with _provider(manager).store.engine.connect() as connection:
        assert (
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision() == HEAD
        )


def test_concurrent_starts_migrate_once(make_manager: Callable[..., AuthManager]) -> None:
    """Four providers starting at once on an empty database: all start, the tables exist once."""
    started = race(lambda _: make_manager(), 4)
    assert outcomes(started) == {"ok": 4}, started
    assert isinstance(started[0], AuthManager) and isinstance(started[-1], AuthManager)
    started[0].users("users").create_user(NewUser(login="sam", password=PW))
    assert started[-1].login("users", login="sam", password=PW).login == "sam"


def test_a_new_sqlite_database_locked_by_another_writer_is_waited_for(
    tmp_path: Path, configs: Callable[..., dict[str, Any]]
) -> None:
    """SQLite refuses the switch to WAL at once (no busy handler) while another connection writes.

    That is the race of several processes opening a new database together; the provider waits
    for the lock as its busy timeout says, and starts once the other writer commits.
    """
    path = tmp_path / "new.db"
    with write_locked(path):
        manager = AuthManager.from_config(configs(f"sqlite:///{path}", sqlite_busy_timeout=10))
    try:
        manager.users("users").create_user(NewUser(login="sam", password=PW))
        assert manager.login("users", login="sam", password=PW).login == "sam"
    finally:
        manager.close()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path, configs: Callable[..., dict[str, Any]]) -> None:
    """Readers never wait for the writer; a writer waits for another's lock instead of failing."""
    manager = AuthManager.from_config(configs(f"sqlite:///{tmp_path / 'u.db'}", sqlite_busy_timeout=7))
    try:
        with _provider(manager).store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 7000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        manager.close()


def test_without_migrate_an_empty_database_is_unavailable(
    tmp_path: Path, configs: Callable[..., dict[str, Any]]
) -> None:
    """``migrate: false`` leaves the schema to the operator; until then logins fail as unavailable."""
    manager = AuthManager.from_config(configs(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False))
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            manager.login("users", login="tom", password=PW)
        assert "OperationalError" in str(caught.value) and "SELECT" not in str(caught.value)
        assert not manager.health()["users"].ok
    finally:
        manager.close()


def test_database_url_never_shows(configs: Callable[..., dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    """A URL's password is in no repr, error or log line, whether the URL is refused or the server is absent."""
    caplog.set_level(logging.DEBUG)
    secret = "Db-Secret-Pw-41"
    unreachable = f"postgresql+psycopg://authcore:{secret}@127.0.0.1:{free_port()}/users"
    shown: list[str] = [repr(LocalConfig(database_url=unreachable)), str(LocalConfig(database_url=unreachable))]
    with pytest.raises(ProviderUnavailable) as unavailable:
        AuthManager.from_config(configs(unreachable))
    shown += [str(unavailable.value), repr(unavailable.value)]
    for bad in (f"mysql://root:{secret}@h/db", f"not a url {secret}", f"postgresql+nodriver://u:{secret}@h/db"):
        with pytest.raises(ConfigError) as refused:
            AuthManager.from_config(configs(bad))
        shown += [str(refused.value), repr(refused.value)]
    shown.append(caplog.text)
    assert all(secret not in s for s in shown), [s for s in shown if secret in s]


def test_a_url_with_a_password_is_a_secret_and_a_path_is_not() -> None:
    """Only a URL with a password is a SecretStr (the core asks for a private file then); neither shows in a repr."""
    with_password = LocalConfig(database_url="postgresql+psycopg://u:Db-Secret-Pw-41@db.example.org/users")
    path = LocalConfig(database_url="sqlite:////var/lib/authcore/users.db")
    assert isinstance(with_password.database_url, SecretStr) and isinstance(path.database_url, str)
    assert "Db-Secret" not in repr(with_password) and "/var/lib" not in repr(path) and "/var/lib" not in str(path)
    assert with_password.url.endswith("/users") and path.url == "sqlite:////var/lib/authcore/users.db"


@pytest.mark.parametrize(
    ("database_url", "refused"),
    [
        (None, True),  # the default, authcore-users.db in the working directory
        ("sqlite:///users.db", True),
        ("sqlite+pysqlite:///data/users.db", True),
        ("sqlite:///./Zoë/用户.db", True),
        ("sqlite:////var/lib/authcore/users.db", False),
        ("sqlite:///file:users.db?mode=ro&uri=true", False),  # SQLite's URI form: the driver resolves it
        ("postgresql+psycopg://u:Db-Secret-Pw-41@db.example.org/users", False),
    ],
)
def test_production_refuses_a_relative_sqlite_path(database_url: str | None, refused: bool) -> None:
    """Under ``production: true`` an SQLite file named relative to the working directory is refused:
    started from another directory, the service would open another, empty, database."""
    config = LocalConfig() if database_url is None else LocalConfig(database_url=database_url)
    issues = [issue for issue in config.production_issues() if "relative SQLite path" in issue]
    assert bool(issues) is refused
    assert all("Db-Secret" not in issue for issue in config.production_issues())


def test_production_refuses_a_memory_database_and_a_short_policy(configs: Callable[..., dict[str, Any]]) -> None:
    """Under ``production: true`` users kept in memory and passwords under 8 characters are refused."""
    for overrides, reason in (({}, "in memory"), ({"password_min_length": 6}, "below 8")):
        config = {**configs("sqlite:///:memory:", **overrides), "production": True}
        with pytest.raises(ConfigError) as caught:
            AuthManager.from_config(config)
        assert reason in str(caught.value)
