"""The second step of a login over real HTTP (FastAPI and Flask): the 401 that carries the
challenge, the throttle not counting a right password, the session it ends in, a signed-in user
enrolling and removing a factor, and what a personal access token may not do."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from authcore import AuthManager
from authcore.testing.contract_provider import contract_config
from authcore.testing.contract_second_factor import totp_code
from authcore.testing.servers import run_asgi, run_wsgi
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth
from authcore.web.settings import WebSettings
from authcore.web.throttle import Throttle


@pytest.fixture
def manager() -> Iterator[AuthManager]:
    with AuthManager.from_config(contract_config()) as made:
        yield made


@pytest.fixture(params=["fastapi", "flask"])
def http(request: pytest.FixtureRequest, manager: AuthManager) -> Iterator[httpx.Client]:
    settings = WebSettings(throttle=Throttle(max_per_login=2, max_per_address=1000, window=600))
    if request.param == "fastapi":
        api = FastAPI()
        FastAPIAuth(manager, settings).install(api)
        served = run_asgi(api)
    else:
        app = Flask(__name__)
        FlaskAuth(manager, settings=settings).init_app(app)
        served = run_wsgi(app)
    with served as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _password(http: httpx.Client, login: str = "alice", password: str = "wonderland") -> httpx.Response:
    return http.post("/auth/login", json={"plugin": "contract", "login": login, "password": password})


def _bearer(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _enrol(http: httpx.Client, alice: dict[str, str]) -> dict[str, list[str]]:
    enrolment = http.post("/auth/me/second-factor", headers=alice)
    assert enrolment.status_code == 200 and enrolment.headers["content-type"] == "application/json"
    body: dict[str, list[str]] = enrolment.json()
    assert str(body["uri"]).startswith("otpauth://totp/")
    confirmed = http.post(
        "/auth/me/second-factor/confirm", headers=alice, json={"code": totp_code(str(body["secret"]))}
    )
    assert confirmed.status_code == 204, confirmed.text
    return body


def test_the_login_answers_a_challenge_and_the_second_step_a_session(http: httpx.Client) -> None:
    alice = _bearer(_password(http))
    enrolment = _enrol(http, alice)
    assert http.get("/auth/me/second-factor", headers=alice).json() == {
        "enrolled": True,
        "required": False,
        "recovery_codes_left": 4,
    }
    # More right-password logins than the throttle's per-login limit: none counts as a failure.
    for _ in range(3):
        asked = _password(http)
        assert asked.status_code == 401 and asked.headers["www-authenticate"].startswith("Bearer")
        body = asked.json()
        assert (body["code"], body["methods"], body["expires_in"]) == (
            "second_factor_required",
            ["totp", "recovery"],
            300,
        )
    wrong = http.post("/auth/login/second-factor", json={"challenge": body["challenge"], "code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    step = {"challenge": body["challenge"], "code": enrolment["recovery_codes"][0], "method": "recovery"}
    done = http.post("/auth/login/second-factor", json=step)
    assert http.get("/auth/me", headers=_bearer(done)).json()["login"] == "alice"
    again = http.post("/auth/login/second-factor", json={**step, "code": enrolment["recovery_codes"][1]})
    assert again.status_code == 401 and again.json()["code"] == "invalid_token"


def test_removing_the_factor_takes_a_code_and_a_person(http: httpx.Client) -> None:
    alice = _bearer(_password(http))
    enrolment = _enrol(http, alice)
    pat = http.post("/auth/tokens", headers=alice, json={"name": "script"}).json()["token"]
    scripted = {"Authorization": f"Bearer {pat}"}
    remove = {"code": enrolment["recovery_codes"][0]}
    assert http.request("DELETE", "/auth/me/second-factor", headers=scripted, json=remove).status_code == 403
    assert http.post("/auth/me/second-factor", headers=scripted).status_code == 403
    wrong = http.request("DELETE", "/auth/me/second-factor", headers=alice, json={"code": "000000"})
    assert wrong.status_code == 401
    assert http.request("DELETE", "/auth/me/second-factor", headers=alice, json=remove).status_code == 204
    assert _password(http).status_code == 200


def test_a_required_user_enrols_during_the_login(http: httpx.Client) -> None:
    asked = _password(http, "tess", "tesspw").json()
    assert asked["methods"] == ["enrol"]
    enrolment = http.post("/auth/login/second-factor/enrolment", json={"challenge": asked["challenge"]}).json()
    code = totp_code(enrolment["secret"])
    done = http.post(
        "/auth/login/second-factor", json={"challenge": asked["challenge"], "code": code, "method": "enrol"}
    )
    assert http.get("/auth/me", headers=_bearer(done)).json()["login"] == "tess"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{",
        b'{"challenge": "", "code": "1"}',
        b'{"challenge": "mfa_x", "code": ""}',
        b'{"challenge": "mfa_x", "code": "1", "extra": 1}',
        ('{"challenge": "' + "x" * 200 + '", "code": "1"}').encode(),
        '{"challenge": "mfa_é", "code": "١٢٣"}'.encode(),
    ],
)
def test_hostile_second_step_bodies_are_typed_refusals(http: httpx.Client, body: bytes) -> None:
    answer = http.post("/auth/login/second-factor", content=body, headers={"content-type": "application/json"})
    assert answer.status_code in (400, 401, 422), answer.text
    assert "mfa_" not in answer.text and "١٢٣" not in answer.text


def test_the_openapi_schema_shows_the_second_step_bodies(manager: AuthManager) -> None:
    api = FastAPI()
    FastAPIAuth(manager).install(api)
    paths = api.openapi()["paths"]
    for path, method in (
        ("/auth/login/second-factor", "post"),
        ("/auth/login/second-factor/enrolment", "post"),
        ("/auth/me/second-factor/confirm", "post"),
        ("/auth/password/reset", "post"),
    ):
        assert paths[path][method]["requestBody"]["required"] is True, path


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_the_second_step_takes_json_only(http: httpx.Client, content_type: str | None) -> None:
    """A cross-site form or simple fetch (no CORS preflight) cannot drive the step that starts a
    session: as for the login itself (login CSRF), any other body is 415."""
    alice = _bearer(_password(http))
    enrolment = _enrol(http, alice)
    challenge = _password(http).json()["challenge"]
    body = json.dumps({"challenge": challenge, "code": enrolment["recovery_codes"][0], "method": "recovery"})
    headers = {"content-type": content_type} if content_type else {}
    refused = http.post("/auth/login/second-factor", content=body.encode(), headers=headers)
    assert refused.status_code == 415 and "set-cookie" not in refused.headers
    taken = http.post("/auth/login/second-factor", content=body.encode(), headers={"content-type": "application/json"})
    assert taken.status_code == 200  # the challenge and the code were left unspent
