"""Engines and migrations: SQLite (WAL, busy timeout, ``BEGIN IMMEDIATE`` for writes) or PostgreSQL (psycopg 3).

The database URL may hold a password: nothing here puts it in a message. Errors name the
provider instance and the dialect only.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from authcore import ConfigError, ProviderUnavailable
from authcore.sessions.sqlite import switch_to_wal

from .config import LocalConfig
from .migrations import HEAD
from .schema import VERSION_TABLE

__all__ = ["make_engine", "migrate", "WRITE", "is_memory"]

log = logging.getLogger("auth_local")

#: Execution option of connections that will write: on SQLite their transaction starts with
#: ``BEGIN IMMEDIATE`` (the write lock is taken at once, and a waiting writer waits for the
#: busy timeout instead of failing with "database is locked" when it upgrades a read lock).
WRITE = "auth_local_write"
#: Any constant: the PostgreSQL advisory lock that serialises migrations of several processes.
_MIGRATION_LOCK = 0x61757468_6C6F63


def is_memory(url: URL) -> bool:
    """Whether *url* is an SQLite database in memory."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _url(name: str, config: LocalConfig) -> URL:
    try:
        url = make_url(config.url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"provider {name!r}: database_url is not a valid SQLAlchemy URL") from None
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, whatever driver was named
    return url


def _sqlite_engine(url: URL, config: LocalConfig) -> Engine:
    memory = is_memory(url)
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": config.sqlite_busy_timeout}}
    if memory:
        # One connection for the provider's life (the database is that connection); the store
        # serialises its use with a lock.
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)
    busy_ms = int(config.sqlite_busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        if not memory:
            switch_to_wal(dbapi_connection, config.sqlite_busy_timeout)  # readers never wait for the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint, safe with WAL
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE of user_roles
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_engine(name: str, config: LocalConfig) -> Engine:
    """An engine for provider *name*'s database; :class:`ConfigError` for an unusable URL or driver."""
    url = _url(name, config)
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url, config)
        return create_engine(
            url,
            pool_size=config.pool_size,
            max_overflow=config.pool_size,
            pool_pre_ping=True,  # a restarted server's dead connections are replaced, not handed out
            connect_args={"connect_timeout": 10},
        )
    except (NoSuchModuleError, ImportError):
        raise ConfigError(
            f"provider {name!r}: no driver for {url.get_backend_name()}: pip install 'auth-local[postgresql]'"
        ) from None
    except ArgumentError:
        raise ConfigError(f"provider {name!r}: database_url is not usable") from None


def migrate(name: str, engine: Engine) -> None:
    """``alembic upgrade head`` on *engine*, in one transaction; several processes at once are fine.

    A database that already records :data:`~auth_local.migrations.HEAD` is left as it is without
    importing alembic (a tenth of a second of every start of a process: the CLI's commands)."""
    try:
        with engine.connect().execution_options(**{WRITE: True}) as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            if _recorded_revisions(connection) != [HEAD]:
                _upgrade(connection)
    except SQLAlchemyError as exc:
        raise ProviderUnavailable(
            f"provider {name!r}: migrating the {engine.dialect.name} database failed ({type(exc).__name__})"
        ) from None
    log.debug("provider %r: %s database at the newest schema", name, engine.dialect.name)


def _recorded_revisions(connection: Connection) -> list[str]:
    """The revisions the database records (none before its first migration)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return []
    return [
        str(revision) for revision in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    ]


def _upgrade(connection: Connection) -> None:
    from alembic import command  # imported only when there is something to migrate
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", "auth_local:migrations")
    alembic_config.attributes["connection"] = connection
    command.upgrade(alembic_config, "head")
