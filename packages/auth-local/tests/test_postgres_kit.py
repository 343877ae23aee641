"""The test kit's PostgreSQL: runs as a non-root account, answers on its port, stops by pid, cleans up."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import psycopg

from auth_local.testing import SYSTEM_USER, PostgresServer, start_postgres


def test_a_server_of_its_own_starts_and_stops(tmp_path: Path) -> None:
    """As root the postmaster runs as ``postgres`` in a private directory; close() ends it and removes that."""
    server = start_postgres(tmp_path / "pg")
    try:
        assert server.running and server.pid is not None
        owner = Path(f"/proc/{server.pid}").stat().st_uid
        expected = pwd.getpwnam(SYSTEM_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert owner == expected
        assert server.password not in repr(server)
        url = server.create_database("kit_check")
        with psycopg.connect(url.replace("+psycopg", "")) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("kit_check",)
        server.drop_database("kit_check")
    finally:
        pid, directory = server.pid, server.directory
        server.close()
    assert not server.running
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    if os.geteuid() == 0:
        assert not directory.exists()


def test_the_session_server_is_shared(postgres: PostgresServer, postgres_url: str) -> None:
    """``postgres_url`` is a fresh database on the one session server."""
    assert f":{postgres.port}/" in postgres_url
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        tables = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
        assert tables.fetchone() == (0,)
