"""pytest fixtures for a real slapd: ``pytest_plugins = ["auth_ldap.pytest_plugin"]``.

``slapd`` is one server shared by a test session (for tests that neither write to it nor stop
it); ``private_slapd`` is a test's own (written to, stopped, paused, restarted). A missing
slapd fails the test with what to install: LDAP tests are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .testing import INSTALL_HINT, SlapdError, SlapdServer

__all__ = ["slapd", "private_slapd", "start_slapd"]


def start_slapd(**kwargs: Any) -> SlapdServer:
    """A started :class:`~auth_ldap.testing.SlapdServer`; ``pytest.fail`` when slapd is missing."""
    try:
        SlapdServer.check_installed()
    except SlapdError as exc:
        pytest.fail(f"{exc} (the LDAP tests need a real slapd: {INSTALL_HINT})", pytrace=False)
    return SlapdServer(**kwargs).start()


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """One shared slapd for tests that do not disturb it (no restarts, no writes)."""
    server = start_slapd()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_slapd() -> Iterator[SlapdServer]:
    """A slapd of the test's own: may be written to, stopped, paused, restarted."""
    server = start_slapd()
    try:
        yield server
    finally:
        server.close()
