"""pytest fixtures for a real PostgreSQL and SMTP server: ``pytest_plugins = ["auth_local.pytest_plugin"]``.

``postgres`` is one server for the test session; ``postgres_url`` is an empty database of
the test's own on it (dropped afterwards). A missing PostgreSQL fails the test with what
to install: PostgreSQL tests are never skipped. ``smtp_server`` is an aiosmtpd server of
the test's own, collecting the messages it receives; it, too, fails when missing.
``start_smtp_server(**options)`` starts more of them (STARTTLS, implicit TLS, AUTH: see
:func:`~auth_local.testing.start_smtp`), all stopped after the test; ``tls_files`` is a
throwaway CA and a certificate for ``localhost`` and ``127.0.0.1`` it signed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .testing import (
    INSTALL_HINT,
    SMTP_INSTALL_HINT,
    PostgresError,
    PostgresServer,
    SmtpError,
    SmtpSink,
    TlsFiles,
    make_test_ca,
    start_postgres,
    start_smtp,
)

__all__ = ["postgres", "postgres_url", "smtp_server", "start_smtp_server", "tls_files"]


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


def _started_smtp(**options: Any) -> SmtpSink:
    try:
        return start_smtp(**options)
    except SmtpError as exc:
        pytest.fail(f"{exc} (the delivery tests need a real SMTP server: {SMTP_INSTALL_HINT})", pytrace=False)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""
    server = _started_smtp()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_smtp_server() -> Iterator[Callable[..., SmtpSink]]:
    """``start_smtp_server(**options)``: a started SMTP server (``start_smtp``'s options), stopped after the test."""
    started: list[SmtpSink] = []

    def start(**options: Any) -> SmtpSink:
        server = _started_smtp(**options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate it signed for ``localhost`` and ``127.0.0.1`` (PEM files)."""
    directory: Path = tmp_path_factory.mktemp("tls")
    return make_test_ca(directory)
