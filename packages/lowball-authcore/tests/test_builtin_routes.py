"""lowball's ``/builtins/auth`` routes served by authcore's web layer (``web.lowball``), checked
against real lowball 1.0 serving the same users.

Every scenario runs three times over real HTTP: on a real ``Lowball`` app whose auth provider is
authcore (:class:`~lowball_authcore.AuthcoreAuthProvider`), and on authcore's Flask and FastAPI
adapters with ``web.lowball`` on, each over the same authcore configuration (a lowball provider
written as lowball's documentation shows, loaded as type ``lowball``). A lowball script must not
tell them apart: the same routes, the same success statuses and bodies. Refusals are refusals on
all three; authcore answers them with its own statuses (403 where lowball says 401 for missing
roles, 401 where lowball says 400 for a missing token), listed in docs/migration.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml

from authcore import AuthManager
from authcore.testing.servers import run_asgi, run_wsgi

BASE = "/builtins/auth"

CONFIG = """\
tokens: {secret: lowball-routes-test-only-secret-0123456789}
providers:
  - name: legacy
    type: lowball
    config:
      auth_provider: lowball_sample_provider:SampleAuthProvider
      auth_provider_config:
        users:
          alice: {password: alice-Secret-1, roles: [admins, staff]}
          bob: {password: bob-Secret-2, roles: [staff]}
          zoë: {password: zoë-pässwörd, roles: [guests]}
permissions:
  groups: {admins: [admin, all_proposals], staff: [own_proposals], guests: ["contents:read"]}
web:
  lowball: {enabled: true, default_token_life: 600}
"""
ALICE = ["admin", "all_proposals", "own_proposals"]
#: lowball 1.0.4's file token database cannot list: ``list_tokens`` hands ``_load_token`` the paths
#: ``Path.iterdir`` yields, which fail its token-id check (ValueError, a 500). authcore's listings are
#: checked on their own; lowball's answer is pinned so that a fixed lowball shows up here.
LOWBALL_LISTING_BUG = "lowball's own token listing answers 500"
TOKEN_DATA_KEYS = {"cid", "r", "cts", "ets", "rcid", "tid"}


class Site:
    """One server of lowball's routes and an HTTP client for it."""

    def __init__(self, kind: str, url: str, manager: AuthManager) -> None:
        self.kind = kind
        self.url = url
        self.manager = manager
        self.http = httpx.Client(base_url=url, timeout=30)

    @property
    def authcore(self) -> bool:
        return self.kind != "lowball"

    def login(self, **body: Any) -> httpx.Response:
        return self.http.post(BASE, json=body)

    def token(self, username: str, password: str) -> str:
        response = self.login(username=username, password=password)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return self.http.request(method, BASE + path, headers=headers, **kwargs)


def refused(response: httpx.Response) -> bool:
    """A refusal as lowball and authcore both give one: a 4xx with lowball's ``message``."""
    return 400 <= response.status_code < 500 and bool(response.json().get("message"))


@pytest.fixture(params=["lowball", "authcore-flask", "authcore-fastapi"])
def site(request: pytest.FixtureRequest, lowball_site: Callable[..., Any]) -> Iterator[Site]:
    manager = AuthManager.from_config(yaml.safe_load(CONFIG))
    try:
        if request.param == "lowball":
            real = lowball_site(manager=manager, provider="legacy")
            one = Site("lowball", real.url, manager)
            yield one
            one.http.close()
        elif request.param == "authcore-flask":
            from flask import Flask

            from authcore.web.flask import FlaskAuth

            app = Flask("lowball-routes")
            app.secret_key = "flask-test-only-key"
            FlaskAuth(manager, app)
            with run_wsgi(app) as url:
                one = Site(request.param, url, manager)
                yield one
                one.http.close()
        else:
            from fastapi import FastAPI

            from authcore.web.fastapi import FastAPIAuth

            api = FastAPI()
            FastAPIAuth(manager).install(api)
            with run_asgi(api) as url:
                one = Site(request.param, url, manager)
                yield one
                one.http.close()
    finally:
        manager.close()


def _stamp(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def test_login_whoami_logout(site: Site) -> None:
    response = site.login(username="alice", password="alice-Secret-1")
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"token", "token_data"}
    token_data = data["token_data"]
    assert set(token_data) == TOKEN_DATA_KEYS
    assert (token_data["cid"], token_data["r"], token_data["rcid"]) == ("alice", ALICE, "alice")
    life = _stamp(token_data["ets"]) - _stamp(token_data["cts"])
    assert datetime.timedelta(seconds=590) <= life <= datetime.timedelta(seconds=610)  # default_token_life

    token = data["token"]
    whoami = site.call("GET", "", token)
    assert whoami.status_code == 200
    assert whoami.json()["cid"] == "alice" and whoami.json()["tid"] == token_data["tid"]
    assert whoami.json()["r"] == ALICE

    assert site.call("DELETE", "", token).status_code == 204
    assert refused(site.call("GET", "", token))
    assert refused(site.login(username="alice", password="wrong"))
    assert refused(site.login(username="nobody", password="alice-Secret-1"))
    assert refused(site.call("GET", ""))  # no token
    assert site.login(username="zoë", password="zoë-pässwörd").json()["token_data"]["r"] == ["contents:read"]


def test_self_service_tokens(site: Site) -> None:
    alice = site.token("alice", "alice-Secret-1")
    minted = site.call("POST", "/tokens", alice, json={"roles": ["own_proposals"], "token_life": 60})
    assert minted.status_code == 201, minted.text
    data = minted.json()
    assert set(data) == {"token", "token_data"}
    assert (data["token_data"]["cid"], data["token_data"]["r"], data["token_data"]["rcid"]) == (
        "alice",
        ["own_proposals"],
        "alice",
    )
    assert _stamp(data["token_data"]["ets"]) - _stamp(data["token_data"]["cts"]) <= datetime.timedelta(seconds=61)
    script = data["token"]
    assert site.call("GET", "", script).json()["r"] == ["own_proposals"]  # the roles are in the token

    listed = site.call("GET", "/tokens", alice)
    if not site.authcore:
        assert listed.status_code == 500, LOWBALL_LISTING_BUG
    else:
        assert listed.status_code == 200
        tids = {t["tid"] for t in listed.json()}
        assert data["token_data"]["tid"] in tids and len(tids) == 2
        assert all(set(t) == TOKEN_DATA_KEYS for t in listed.json())
        by_role = site.call("GET", "/tokens", alice, params={"roles": ["admin"]}).json()
        assert [t["tid"] for t in by_role] == [t for t in tids if t != data["token_data"]["tid"]]

    tid = data["token_data"]["tid"]
    one = site.call("GET", f"/tokens/{tid}", alice)
    assert one.status_code == 200 and one.json()["r"] == ["own_proposals"]
    assert site.call("DELETE", f"/tokens/{tid}", alice).status_code == 204
    assert refused(site.call("GET", "", script))  # revoked: refused at once
    assert site.call("GET", "", alice).status_code == 200  # the others live on

    default_life = site.call("POST", "/tokens", alice, json={}).json()["token_data"]
    assert _stamp(default_life["ets"]) - _stamp(default_life["cts"]) >= datetime.timedelta(seconds=590)
    if site.authcore:
        assert site.call("DELETE", "/tokens", alice).status_code == 204  # every token of alice's
        assert refused(site.call("GET", "", alice))
    else:
        assert site.call("DELETE", "/tokens", alice).status_code == 500, LOWBALL_LISTING_BUG


def test_minting_is_bounded(site: Site) -> None:
    bob = site.token("bob", "bob-Secret-2")
    assert refused(site.call("POST", "/tokens", bob, json={"roles": ["admin"]}))  # a role bob lacks
    assert refused(site.call("POST", "/tokens", bob, json={"client_id": "alice"}))  # someone else's
    for life in (5, 0, -1, "soon", 10**12):
        assert site.call("POST", "/tokens", bob, json={"token_life": life}).status_code == 400, life
    assert site.call("POST", "/tokens", bob, json={"token_life": 10}).status_code == 201
    alice = site.token("alice", "alice-Secret-1")
    for_bob = site.call("POST", "/tokens", alice, json={"client_id": "bob", "roles": ["own_proposals"]})
    assert for_bob.status_code == 201, for_bob.text  # the admin mints for others
    assert (for_bob.json()["token_data"]["cid"], for_bob.json()["token_data"]["rcid"]) == ("bob", "alice")
    assert site.call("GET", "", for_bob.json()["token"]).json()["cid"] == "bob"


def test_admin_token_routes(site: Site) -> None:
    alice = site.token("alice", "alice-Secret-1")
    bob = site.token("bob", "bob-Secret-2")
    site.token("bob", "bob-Secret-2")
    bobs = site.call("GET", "/tokens/all", alice, params={"client_ids": ["bob"]})
    if not site.authcore:
        assert bobs.status_code == 500, LOWBALL_LISTING_BUG
        assert site.call("DELETE", "/tokens/all", alice, params={"client_ids": ["bob"]}).status_code == 500
        return
    assert bobs.status_code == 200
    assert {t["cid"] for t in bobs.json()} == {"bob"} and len(bobs.json()) == 2
    assert refused(site.call("GET", "/tokens/all", bob, params={"client_ids": ["bob"]}))  # not an admin
    bob_tid = bobs.json()[0]["tid"]
    assert site.call("GET", f"/tokens/{bob_tid}", alice).status_code == 200  # an admin sees any
    alice_tid = site.call("GET", "", alice).json()["tid"]
    assert refused(site.call("GET", f"/tokens/{alice_tid}", bob))  # bob does not
    assert refused(site.call("DELETE", f"/tokens/{alice_tid}", bob))
    assert site.call("DELETE", "/tokens/all", alice, params={"client_ids": ["bob"]}).status_code == 204
    assert refused(site.call("GET", "", bob))
    assert site.call("GET", "", alice).status_code == 200
    assert site.call("POST", "/tokens/cleanup", alice).status_code == 204


def test_client_routes(site: Site) -> None:
    alice = site.token("alice", "alice-Secret-1")
    bob = site.token("bob", "bob-Secret-2")
    assert site.call("GET", "/clients", bob).json() == {"client_id": "bob", "roles": ["own_proposals"]}
    clients = site.call("GET", "/clients/all", alice)
    assert clients.status_code == 200
    assert {c["client_id"]: c["roles"] for c in clients.json()} == {
        "alice": ALICE,
        "bob": ["own_proposals"],
        "zoë": ["contents:read"],
    }
    assert refused(site.call("GET", "/clients/all", bob))
    assert site.call("GET", "/clients/bob", alice).json()["roles"] == ["own_proposals"]
    assert site.call("GET", "/clients/nobody", alice).status_code == 404

    assert site.call("POST", "/clients/bob/roles/guests", alice).status_code == 204
    assert site.call("GET", "/clients/bob", alice).json()["roles"] == ["contents:read", "own_proposals"]
    assert site.call("DELETE", "/clients/bob/roles/staff", alice).status_code == 204
    assert site.login(username="bob", password="bob-Secret-2").json()["token_data"]["r"] == ["contents:read"]
    assert site.call("DELETE", "/clients/bob/roles", alice).status_code == 204
    assert site.call("GET", "/clients/bob", alice).json()["roles"] == []

    assert site.call("POST", "/clients/bob/disable", alice).status_code == 204
    assert refused(site.login(username="bob", password="bob-Secret-2"))
    assert site.call("POST", "/clients/bob/enable", alice).status_code == 204
    assert site.login(username="bob", password="bob-Secret-2").status_code == 200

    body = {"client_id": "dave", "password": "dave-Secret-1"}
    created = site.call("POST", "/clients/create", alice, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["client_id"] == "dave"
    assert site.login(username="dave", password="dave-Secret-1").status_code == 200
    assert site.call("DELETE", "/clients/dave", alice).status_code == 204
    assert refused(site.login(username="dave", password="dave-Secret-1"))
    assert site.call("POST", "/clients/register", json={"client_id": "eve", "password": "x"}).status_code == 501


# --------------------------------------------------------------------------- authcore's own guarantees


authcore_only = pytest.mark.parametrize("site", ["authcore-flask", "authcore-fastapi"], indirect=True)


@authcore_only
def test_disabling_a_client_ends_its_tokens_at_once(site: Site) -> None:
    """lowball keeps a disabled client's tokens valid until they expire; authcore ends them."""
    alice = site.token("alice", "alice-Secret-1")
    bob = site.token("bob", "bob-Secret-2")
    script = site.call("POST", "/tokens", bob, json={"token_life": 3600}).json()["token"]
    assert site.call("POST", "/clients/bob/disable", alice).status_code == 204
    assert site.call("GET", "", bob).status_code == 401
    assert site.call("GET", "", script).status_code == 401
    assert site.manager.sessions_of("bob") == []


@authcore_only
def test_a_restricted_token_mints_no_broader_one(site: Site) -> None:
    alice = site.token("alice", "alice-Secret-1")
    narrow = site.call("POST", "/tokens", alice, json={"roles": ["own_proposals"]}).json()["token"]
    assert site.call("POST", "/tokens", narrow, json={"roles": ["admin"]}).status_code == 403
    assert site.call("POST", "/tokens", narrow, json={"roles": ["own_proposals"]}).status_code == 201


@authcore_only
@pytest.mark.parametrize(
    "path",
    ["/tokens/" + "A" * 65, "/tokens/..%2F..", "/tokens/%00", "/tokens/zo%C3%AB", "/tokens/AAAAAAAAAAAAAAAA"],
)
def test_hostile_token_ids(site: Site, path: str) -> None:
    alice = site.token("alice", "alice-Secret-1")
    for method in ("GET", "DELETE"):
        response = site.call(method, path, alice)
        assert response.status_code in (400, 404), (method, path, response.text)
        if "/" not in unquote(path.removeprefix("/tokens/")):  # else no route matches: the framework's 404
            assert response.json()["message"]
    assert site.call("GET", "", alice).status_code == 200


@authcore_only
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{",
        b'{"roles": "admin"}',
        b'{"roles": [1]}',
        b'{"roles": [""]}',
        b'{"client_id": 7}',
        b'{"token_life": true}',
        b'{"token_life": 1e400}',
        ('{"roles": ["' + "r" * 100_000 + '"]}').encode(),
        b'{"roles": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
)
def test_malformed_mint_bodies(site: Site, body: bytes) -> None:
    alice = site.token("alice", "alice-Secret-1")
    response = site.call("POST", "/tokens", alice, content=body, headers={"Content-Type": "application/json"})
    if body == b"":
        assert response.status_code == 201  # no body: a token with the defaults, as lowball
        return
    assert 400 <= response.status_code < 500, response.text
    assert len(site.manager.sessions_of("alice")) == 1


@authcore_only
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": ""},
        {"username": "alice"},
        {"username": "alice", "password": ["alice-Secret-1"]},
        {"username": "a" * 5000, "password": "x"},
        {"username": "alice\x00", "password": "alice-Secret-1"},
    ],
)
def test_malformed_logins_lose_nothing(site: Site, body: dict[str, Any]) -> None:
    response = site.login(**body)
    assert 400 <= response.status_code < 500
    assert "alice-Secret-1" not in response.text
    assert site.manager.sessions_of("alice") == []
    assert site.login(username="alice", password="alice-Secret-1").status_code == 200


@authcore_only
def test_login_body_must_be_json(site: Site) -> None:
    form = site.http.post(BASE, data={"username": "alice", "password": "alice-Secret-1"})
    assert form.status_code == 415  # a cross-site form cannot log anyone in


def test_routes_are_off_by_default(lowball_site: Callable[..., Any]) -> None:
    config = yaml.safe_load(CONFIG)
    del config["web"]
    from fastapi import FastAPI

    from authcore.web.fastapi import FastAPIAuth

    with AuthManager.from_config(config) as manager:
        api = FastAPI()
        FastAPIAuth(manager).install(api)
        with run_asgi(api) as url:
            response = httpx.post(url + BASE, json={"username": "alice", "password": "alice-Secret-1"})
    assert response.status_code == 404
