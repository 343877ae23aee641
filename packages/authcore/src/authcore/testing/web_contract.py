"""The HTTP contract every web adapter keeps, over real HTTP: :class:`WebAdapterContract`.

An adapter (ours: FastAPI, Flask; a third party's) proves it serves every row of
:data:`authcore.web.routes.ROUTES` with the row's status, and answers the failure cases
(no token, bad or expired token, forbidden, bad body, unknown provider, throttled, too
large, wrong content type, CSRF missing, ...) exactly as every other adapter does::

    from authcore.testing.web_contract import WebAdapterContract

    class TestMyAdapter(WebAdapterContract):
        @contextlib.contextmanager
        def serve(self, manager, settings):
            app = build_my_app(manager, settings)   # + GET {prefix}/protected guarded by ["read"]
            with run_my_server(app) as base_url:    # a real server on a free loopback port
                yield base_url

The suite brings its own provider (:class:`ContractProvider`: password logins, every
user-management operation, single sign-on against a fake identity provider that needs no
network) and the settings (:meth:`WebAdapterContract.contract_settings`): cookie sessions on,
throttling, a query token for websockets, one CORS origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ..manager import AuthManager
from ..tokens import TokenService
from ..web.routes import ROUTES, Route
from ..web.settings import WebSettings
from ..web.throttle import Throttle
from .contract_provider import CONTRACT_SECRET, ContractProvider, contract_config
from .contract_second_factor import second_factor_rows
from .contract_self_service import self_service_rows

__all__ = ["ContractProvider", "WebAdapterContract", "CONTRACT_SECRET"]

ORIGIN = "https://ui.example.org"
#: Path parameters of the guarded rows' refusal tests (nobody's ids: the guard answers first).
_PARAMS = {"provider": "contract", "login": "alice", "session_id": "nobodys", "token_id": "nobodys"}


@dataclass
class ContractServer:
    """A running adapter: its base URL (prefix included in ``api``) and its manager."""

    base: str
    api: str
    manager: AuthManager


class WebAdapterContract:
    """Base class of an adapter's contract tests; subclass it and implement :meth:`serve`."""

    prefix: ClassVar[str] = "/contract/v1"

    def serve(self, manager: AuthManager, settings: WebSettings) -> AbstractContextManager[str]:
        """Serve the adapter for *manager* and *settings* over real HTTP on a free loopback port,
        with ``GET {prefix}/protected`` guarded by ``["read"]`` answering ``{"login": ...}``;
        yield the base URL (``http://127.0.0.1:PORT``)."""
        raise NotImplementedError

    def contract_settings(self) -> WebSettings:
        """The settings every adapter is tested with."""
        return WebSettings(
            prefix=self.prefix,
            cookie_auth=True,
            query_token="token",
            throttle=Throttle(max_per_login=3, max_per_address=10_000, window=600),
            cors_origins=(ORIGIN,),
            cors_credentials=True,
        )

    @pytest.fixture(scope="class")
    @classmethod
    def contract_server(cls) -> Iterator[ContractServer]:
        """The adapter under test, running (one server for the class's tests)."""
        self = cls()
        manager = AuthManager.from_config(contract_config())
        try:
            with self.serve(manager, self.contract_settings()) as base:
                yield ContractServer(base, base + self.prefix, manager)
        finally:
            manager.close()

    @pytest.fixture
    def http(self, contract_server: ContractServer) -> Iterator[httpx.Client]:
        """A client with its own cookie jar, redirects not followed."""
        with httpx.Client(base_url=contract_server.base, timeout=10) as client:
            yield client

    # ----------------------------------------------------------------- helpers

    def login(self, http: httpx.Client, login: str, password: str) -> dict[str, Any]:
        """Log in (JSON); the cookie session lands in *http*'s jar."""
        response = http.post(
            f"{self.prefix}/auth/login", json={"plugin": "contract", "login": login, "password": password}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        """An ``Authorization`` header."""
        return {"Authorization": f"Bearer {token}"}

    def path(self, route: Route, **params: str) -> str:
        """*route*'s path with *params* filled in."""
        return route.full_path(self.prefix).format(**params)

    # ----------------------------------------------------------------- every row

    def row_calls(self, http: httpx.Client, admin: dict[str, str]) -> dict[str, Callable[[], httpx.Response]]:
        """How to exercise every row successfully, by route name, in an order that works."""
        p, users = self.prefix, f"{self.prefix}/auth/users/contract"
        self.login(http, "alice", "wonderland")  # the cookie session of the refresh_session rows

        def csrf() -> dict[str, str]:  # a fresh session: another row may have rotated this one
            return {"X-CSRF-Token": self.login(http, "alice", "wonderland")["csrf_token"]}

        body = {"plugin": "contract", "login": "alice", "password": "wonderland"}
        refresh = self.login(httpx.Client(base_url=http.base_url), "alice", "wonderland")["refresh_token"]

        def sso() -> httpx.Response:
            started = http.get(f"{p}/auth/sso/contract/login")
            assert started.status_code == 302, started.text
            query = parse_qs(urlsplit(started.headers["location"]).query)
            return http.get(
                f"{p}/auth/sso/contract/callback", params={"code": query["code"][0], "state": query["state"][0]}
            )

        return {
            "login": lambda: http.post(f"{p}/auth/login", json=body),
            "config": lambda: http.get(f"{p}/auth/config"),
            "refresh": lambda: http.post(f"{p}/auth/refresh", json={"refresh_token": refresh}),
            "refresh_session_get": lambda: http.get(f"{p}/auth/refresh_session"),
            "refresh_session_post": lambda: http.post(f"{p}/auth/refresh_session", headers=csrf()),
            "me": lambda: http.get(f"{p}/auth/me", headers=admin),
            "self_update": lambda: http.patch(f"{p}/auth/me", headers=admin, json={"email": "admin@example.org"}),
            "register": lambda: http.post(
                f"{p}/auth/register/contract", json={"login": "carol", "password": "carolpw"}
            ),
            "users_create": lambda: http.post(users, headers=admin, json={"login": "bob", "password": "bobpw"}),
            "users_list": lambda: http.get(users, headers=admin),
            "users_get": lambda: http.get(f"{users}/bob", headers=admin),
            "users_update": lambda: http.patch(f"{users}/bob", headers=admin, json={"email": "bob@example.org"}),
            "users_add_roles": lambda: http.post(f"{users}/bob/roles", headers=admin, json={"roles": ["staff"]}),
            "users_remove_roles": lambda: http.request(
                "DELETE", f"{users}/bob/roles", headers=admin, json={"roles": ["staff"]}
            ),
            "users_disable": lambda: http.post(f"{users}/bob/disable", headers=admin),
            "users_enable": lambda: http.post(f"{users}/bob/enable", headers=admin),
            "users_delete": lambda: http.delete(f"{users}/bob", headers=admin),
            "sso_login": lambda: http.get(f"{p}/auth/sso/contract/login"),
            "sso_callback": sso,
            "health": lambda: http.get(f"{p}/auth/health"),
            "jwks": lambda: http.get("/.well-known/jwks.json"),
            **self.own_rows(http, admin),
            **self_service_rows(self, http, admin),
            **second_factor_rows(self, http, admin),
            "logout": lambda: http.post(f"{p}/auth/logout", headers=admin),
        }

    def own_rows(self, http: httpx.Client, admin: dict[str, str]) -> dict[str, Callable[[], httpx.Response]]:
        """The rows of a user's own sessions and personal access tokens, and an admin's view of a user's."""
        p, users = self.prefix, f"{self.prefix}/auth/users/contract"
        alice = self.bearer(self.login(httpx.Client(base_url=http.base_url), "alice", "wonderland")["token"])

        def other_session() -> httpx.Response:  # alice signs in on another device, then ends that one
            self.login(httpx.Client(base_url=http.base_url), "alice", "wonderland")
            listed = http.get(f"{p}/auth/sessions", headers=alice).json()["sessions"]
            other = next(s["session_id"] for s in listed if not s["current"])
            return http.delete(f"{p}/auth/sessions/{other}", headers=alice)

        def revoke_token() -> httpx.Response:
            token_id = http.get(f"{p}/auth/tokens", headers=alice).json()["tokens"][0]["token_id"]
            return http.delete(f"{p}/auth/tokens/{token_id}", headers=alice)

        return {
            "personal_token_create": lambda: http.post(f"{p}/auth/tokens", headers=alice, json={"name": "ci"}),
            "personal_tokens": lambda: http.get(f"{p}/auth/tokens", headers=alice),
            "personal_token_revoke": revoke_token,
            "sessions": lambda: http.get(f"{p}/auth/sessions", headers=alice),
            "session_end": other_session,
            "sessions_end": lambda: http.delete(f"{p}/auth/sessions", headers=alice),  # after the rows above
            "users_sessions": lambda: http.get(f"{users}/eve/sessions", headers=admin),
            "users_end_sessions": lambda: http.delete(f"{users}/eve/sessions", headers=admin),
        }

    def test_every_row_answers_its_status(self, http: httpx.Client) -> None:
        admin = self.bearer(self.login(httpx.Client(base_url=http.base_url), "admin", "adminpw")["token"])
        calls = self.row_calls(http, admin)
        assert sorted(calls) == sorted(r.name for r in ROUTES), "the contract must exercise every row of ROUTES"
        statuses = {name: call().status_code for name, call in calls.items()}
        expected = {route.name: route.status for route in ROUTES}
        assert statuses == expected

    @pytest.mark.parametrize("route", [r for r in ROUTES if r.guard != "public"], ids=lambda r: r.name)
    def test_guarded_rows_refuse_anonymous_callers(self, http: httpx.Client, route: Route) -> None:
        response = http.request(
            route.method,
            self.path(route, **_PARAMS),
            json={},
        )
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
        assert response.headers["www-authenticate"] == 'Bearer realm="authcore"'

    @pytest.mark.parametrize("route", [r for r in ROUTES if r.guard == "admin"], ids=lambda r: r.name)
    def test_admin_rows_refuse_other_users(self, http: httpx.Client, route: Route) -> None:
        alice = self.bearer(self.login(http, "alice", "wonderland")["token"])
        response = http.request(
            route.method,
            self.path(route, **_PARAMS),
            headers=alice,
            json={},
        )
        assert response.status_code == 403 and response.json()["code"] == "forbidden"

    def test_a_path_outside_the_table_is_not_served(self, http: httpx.Client) -> None:
        assert http.get(f"{self.prefix}/auth/nothing-here").status_code == 404

    # ----------------------------------------------------------------- failure cases

    def test_tokens(self, http: httpx.Client, contract_server: ContractServer) -> None:
        protected = f"{self.prefix}/protected"
        cases = {
            "none": ({}, "not_authenticated"),
            "bad": (self.bearer("not-a-token"), "invalid_token"),
            "scheme": ({"Authorization": "Basic YTpi"}, "invalid_token"),
        }
        for name, (headers, code) in cases.items():
            response = http.get(protected, headers=headers)
            assert (name, response.status_code, response.json()["code"]) == (name, 401, code)
        past = time.time() - 3600
        claims = {"sub": "alice", "sid": "s", "exp": int(past) + 60, "prv": "contract", "permissions": ["read"]}
        expired = TokenService(contract_server.manager.config.tokens).issue(claims, now=past)
        response = http.get(protected, headers=self.bearer(expired))
        assert response.status_code == 401 and response.json()["code"] in ("token_expired", "invalid_token")
        token = self.login(http, "alice", "wonderland")["token"]
        http.cookies.clear()
        assert http.get(protected, headers=self.bearer(token)).json() == {"login": "alice"}
        assert http.get(protected, params={"token": token}).status_code == 401  # query tokens: websockets only

    def test_forbidden(self, http: httpx.Client) -> None:
        token = self.login(http, "eve", "evepw")["token"]
        http.cookies.clear()
        response = http.get(f"{self.prefix}/protected", headers=self.bearer(token))
        assert response.status_code == 403 and response.json()["code"] == "forbidden"

    def test_login_bodies(self, http: httpx.Client) -> None:
        url = f"{self.prefix}/auth/login"
        cases = [
            (
                http.post(
                    url, content=b"plugin=contract", headers={"Content-Type": "application/x-www-form-urlencoded"}
                ),
                415,
            ),
            (http.post(url, content=b"{}", headers={"Content-Type": "text/plain"}), 415),
            (http.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 400),
            (http.post(url, json=["a list"]), 400),
            (http.post(url, json={"plugin": "nope", "login": "a", "password": "b"}), 400),
            (http.post(url, json={"login": "a", "password": "b"}), 400),
            (http.post(url, json={"plugin": "contract", "login": 5, "password": "b"}), 422),
            (http.post(url, content=b"x" * 70_000, headers={"Content-Type": "application/json"}), 413),
        ]
        assert [(r.status_code, r.json()["code"]) for r, _ in cases] == [
            (status, code)
            for status, code in zip(
                [s for _, s in cases],
                ["unsupported_media_type"] * 2
                + ["bad_request"] * 2
                + ["unknown_provider"] * 2
                + ["bad_request", "payload_too_large"],
                strict=True,
            )
        ]

    def test_unknown_login_and_wrong_password_are_byte_identical(self, http: httpx.Client) -> None:
        url = f"{self.prefix}/auth/login"
        unknown = http.post(url, json={"plugin": "contract", "login": "nobody", "password": "x"})
        wrong = http.post(url, json={"plugin": "contract", "login": "admin", "password": "x"})
        assert unknown.status_code == wrong.status_code == 401 and unknown.content == wrong.content

    def test_throttled(self, http: httpx.Client) -> None:
        url = f"{self.prefix}/auth/login"
        for _ in range(3):
            assert (
                http.post(url, json={"plugin": "contract", "login": "bob-throttled", "password": "x"}).status_code
                == 401
            )
        blocked = http.post(url, json={"plugin": "contract", "login": "BOB-THROTTLED", "password": "x"})
        assert blocked.status_code == 429 and blocked.json()["code"] == "too_many_requests"
        assert int(blocked.headers["retry-after"]) >= 1

    def test_cookie_session_needs_csrf_on_unsafe_methods(self, http: httpx.Client) -> None:
        data = self.login(http, "alice", "wonderland")
        me = f"{self.prefix}/auth/me"
        assert http.get(me).json()["login"] == "alice"  # safe method: the cookie suffices
        refused = http.patch(me, json={})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert http.post(f"{self.prefix}/auth/logout").status_code == 403
        assert http.post(f"{self.prefix}/auth/logout", headers={"X-CSRF-Token": data["csrf_token"]}).status_code == 204
        assert http.get(me).status_code == 401

    def test_sso_callback_refuses_a_forged_state(self, http: httpx.Client) -> None:
        http.get(f"{self.prefix}/auth/sso/contract/login")
        forged = http.get(f"{self.prefix}/auth/sso/contract/callback", params={"code": "c", "state": "forged"})
        assert forged.status_code == 401 and forged.json()["code"] == "invalid_token"
        unknown = http.get(f"{self.prefix}/auth/sso/nope/login")
        assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_provider"

    def test_cors(self, http: httpx.Client) -> None:
        url = f"{self.prefix}/auth/login"
        allowed = http.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"
        other = http.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        simple = http.get(f"{self.prefix}/auth/config", headers={"Origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN
        for headers in ({"Origin": ORIGIN}, {"Origin": "https://evil.example"}, {}):  # Vary: no cache mix-ups
            assert "origin" in http.get(f"{self.prefix}/auth/config", headers=headers).headers["vary"].lower()

    def test_refresh_session_reply_carries_the_current_csrf_token(self) -> None:
        """An early refresh may rotate the CSRF token (cookie storage derives it from the access
        token): the reply of refresh_session carries the one the next unsafe call needs."""
        manager = AuthManager.from_config(contract_config(access_ttl=2))  # its own server: short tokens
        try:
            with self.serve(manager, self.contract_settings()) as base, httpx.Client(base_url=base, timeout=10) as http:
                data = self.login(http, "alice", "wonderland")
                issued = manager.verify(data["token"]).issued_at
                while time.time() <= issued + 1:  # past half its life: refresh_session refreshes early
                    time.sleep(0.05)
                refreshed = http.get(f"{self.prefix}/auth/refresh_session")
                assert refreshed.status_code == 200, refreshed.text
                csrf = refreshed.json()["csrf_token"]
                updated = http.patch(f"{self.prefix}/auth/me", json={}, headers={"X-CSRF-Token": csrf})
                assert updated.status_code == 200, updated.text
        finally:
            manager.close()

    def test_sso_next_with_non_ascii_characters_redirects(self, http: httpx.Client) -> None:
        """A ``Location`` header is ASCII: a non-ASCII ``next`` comes back percent-encoded, not as a 500."""
        started = http.get(f"{self.prefix}/auth/sso/contract/login", params={"next": "/\u20ac?q=\u00fc"})
        assert started.status_code == 302, started.text
        query = parse_qs(urlsplit(started.headers["location"]).query)
        params = {"code": query["code"][0], "state": query["state"][0]}
        done = http.get(f"{self.prefix}/auth/sso/contract/callback", params=params)
        assert done.status_code == 303 and done.headers["location"] == "/%E2%82%AC?q=%C3%BC"
        assert http.get(f"{self.prefix}/auth/me").json()["login"] == "sso-user"  # the session was made
