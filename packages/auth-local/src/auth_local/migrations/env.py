"""Alembic's environment for the ``local`` provider: online migrations on the connection it is handed.

:func:`auth_local.db.migrate` passes an open connection in ``config.attributes["connection"]``
(so the URL, which may hold a password, goes through no configuration file). Running
``alembic`` by hand works too, with ``sqlalchemy.url`` in an ini file naming
``script_location = auth_local:migrations``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from auth_local.schema import VERSION_TABLE, metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them: batch mode makes later revisions portable.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the handed connection, or one from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), poolclass=pool.NullPool)
    with engine.connect() as fresh:
        _run(fresh)


if context.is_offline_mode():
    raise SystemExit("auth-local migrations run online only (alembic upgrade head, without --sql)")
run_migrations_online()
