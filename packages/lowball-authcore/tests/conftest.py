"""Fixtures: real lowball apps served over HTTP, real slapd servers, the sample lowball provider on sys.path.

A missing slapd FAILS the tests (CI installs it): ``apt-get install slapd ldap-utils``.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth_ldap.testing import SlapdServer

pytest_plugins = ["auth_ldap.pytest_plugin"]  # slapd and private_slapd

HERE = Path(__file__).parent
_app_numbers = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def sample_provider_importable() -> Iterator[None]:
    """``lowball_sample_provider`` importable by name, as a configuration's ``"module:Class"`` needs."""
    sys.path.insert(0, str(HERE))
    try:
        yield
    finally:
        sys.path.remove(str(HERE))
        sys.modules.pop("lowball_sample_provider", None)


def ldap_config(server: SlapdServer, *, writer: bool = False) -> dict[str, Any]:
    """authcore's configuration with one ldap provider (search then bind) and lowball-style permissions."""
    provider = server.provider_config(writer=writer, timeout=2, connect_timeout=2)
    return {
        "providers": [{"name": "ldap", "type": "ldap", "config": provider}],
        "permissions": {"groups": {"admins": ["admin", "all_proposals"], "staff": ["own_proposals"]}},
    }


@pytest.fixture(scope="session")
def ldap_manager_config() -> Callable[..., dict[str, Any]]:
    """:func:`ldap_config` (conftest modules are not importable under importlib mode)."""
    return ldap_config


class LowballSite:
    """A real ``Lowball`` app served by werkzeug on a loopback port, with an HTTP client."""

    def __init__(self, app: Any, base_url: str, log_file: Path) -> None:
        import httpx

        self.app = app
        self.url = base_url
        self.log_file = log_file
        self.http = httpx.Client(timeout=30)

    def login(self, **body: Any) -> Any:
        return self.http.post(f"{self.url}/builtins/auth", json=body)

    def token(self, username: str, password: str) -> str:
        response = self.login(username=username, password=password)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""


@pytest.fixture
def lowball_site(tmp_path: Path) -> Iterator[Callable[..., LowballSite]]:
    """Start lowball apps with ``AuthcoreAuthProvider`` (``auth_provider`` kwargs given); all stop after the test.

    Each app has protected routes: ``/reports`` (role ``own_proposals``), ``/admin-only`` (``admin``).
    lowball's token files and log file go to the test's directory, not ``/var/lib/lowball``.
    """
    from flask import g
    from lowball import Lowball, config_from_object, require_admin, require_any_of_these_roles

    from authcore.testing.servers import run_wsgi
    from lowball_authcore import AuthcoreAuthProvider

    stack: list[Any] = []
    sites: list[LowballSite] = []
    loggers: list[tuple[logging.Logger, logging.Handler]] = []

    def start(**auth_provider: Any) -> LowballSite:
        number = next(_app_numbers)
        log_file = tmp_path / f"lowball-{number}.log"
        config = config_from_object(
            {
                "meta": {"name": f"lowball-authcore-test-{number}"},  # one logger (and handler) per app
                "authentication": {"token_secret": "lowball-token-secret-" + "x" * 32, "default_token_life": 600},
                "auth_provider": auth_provider,
                "auth_db": {"token_path": tmp_path / f"tokens-{number}"},
                "logging": {"filename": str(log_file)},
            }
        )
        app = Lowball(config=config, auth_provider=AuthcoreAuthProvider)
        loggers.append((app.logger, app.logging_handler))

        @app.route("/reports")
        @require_any_of_these_roles(["own_proposals"])
        def reports() -> dict[str, Any]:
            return {"client_id": g.client_data.client_id, "roles": g.client_data.roles}

        @app.route("/admin-only")
        @require_admin
        def admin_only() -> dict[str, Any]:
            return {"client_id": g.client_data.client_id}

        server = run_wsgi(app)
        url = server.__enter__()
        stack.append(server)
        sites.append(LowballSite(app, url, log_file))
        return sites[-1]

    yield start
    for site in sites:
        site.http.close()
    for server in reversed(stack):
        server.__exit__(None, None, None)
    for logger, handler in loggers:
        logger.removeHandler(handler)
        handler.close()
