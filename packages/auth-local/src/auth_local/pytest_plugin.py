"""pytest fixtures for a real PostgreSQL and SMTP server: ``pytest_plugins = ["auth_local.pytest_plugin"]``.

``postgres`` is one server for the test session; ``postgres_url`` is an empty database of
the test's own on it (dropped afterwards). A missing PostgreSQL fails the test with what
to install: PostgreSQL tests are never skipped. ``smtp_server`` is an aiosmtpd server of
the test's own, collecting the messages it receives; it, too, fails when missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from .testing import (
    INSTALL_HINT,
    SMTP_INSTALL_HINT,
    PostgresError,
    PostgresServer,
    SmtpError,
    SmtpSink,
    start_postgres,
    start_smtp,
)

__all__ = ["postgres", "postgres_url", "smtp_server"]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session."""
    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except PostgresError as exc:
        pytest.fail(f"{exc} (the PostgreSQL tests need a real server: {INSTALL_HINT})", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database of this test's own."""
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(str(make_url(url).database))


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""
    try:
        server = start_smtp()
    except SmtpError as exc:
        pytest.fail(f"{exc} (the delivery tests need a real SMTP server: {SMTP_INSTALL_HINT})", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
