"""Tokens interoperate with py-ispyb both ways.

Ours reach py-ispyb under ``tokens.profile: pyispyb``: its check is
``jwt.decode(token, settings.secret_key, algorithms=settings.jwt_coding_algorithm)`` (PyJWT,
no audience), re-typed below with the seed's claims. Tokens a py-ispyb service minted reach
us through the ``PyIspybTokens`` provider: they carry no ``sid`` and no ``typ`` of ours,
belong to no session, and verify until their ``exp``.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from authcore import AuthManager, hookimpl
from authcore.compat.pyispyb import PyIspybTokens
from authcore.errors import ConfigError, InvalidCredentials, InvalidToken, TokenExpired
from authcore.testing import Login, ProviderConformance

SECRET = "py-ispyb-and-authcore-share-this-secret"
SEED_CLAIMS = ("username", "groups", "permissions", "iat", "exp")

# ispyb-models' mappers warn under SQLAlchemy 2.1 (overlapping relationships of tables we never use).
pytestmark = pytest.mark.filterwarnings(
    "ignore::sqlalchemy.exc.SAWarning", "ignore::sqlalchemy.exc.SADeprecationWarning"
)


class Seed:
    """A py-ispyb plugin: the seed's dummy (the password names the groups)."""

    def authenticate_by_login(self, login: str, password: str) -> Any:
        from ispyb import models

        return models.Person(login=login, givenName="Test")


def config(profile: str = "pyispyb", **tokens: Any) -> dict[str, Any]:
    return {
        "tokens": {"secret": SECRET, "profile": profile, **tokens},
        "providers": [
            {"name": "dummy", "class": f"{__name__}:Seed"},
            {"name": "pyispyb", "class": "authcore.compat.pyispyb:PyIspybTokens", "config": {"secret": SECRET}},
        ],
        "permissions": {"groups": {"Admin": ["all_proposals", "all_sessions"]}, "authenticated": ["own_proposals"]},
    }


def pyispyb_decode(token: str) -> dict[str, Any]:
    """py-ispyb's ``decode_token`` (pyispyb/app/extensions/auth/token.py), as it calls PyJWT."""
    return jwt.decode(token, SECRET, algorithms="HS256")


def pyispyb_mint(claims: dict[str, Any], secret: str = SECRET) -> str:
    """A token as py-ispyb's ``generate_token`` signs it (PyJWT's default header: alg, typ JWT)."""
    return jwt.encode(claims, secret, algorithm="HS256")


def test_our_tokens_decode_as_py_ispyb_decodes_them() -> None:
    with AuthManager.from_config(config()) as manager:
        token = manager.login("dummy", login="test", password="Admin").access_token
        claims = pyispyb_decode(token)
        assert set(SEED_CLAIMS) <= set(claims) and "aud" not in claims
        assert claims["username"] == "test" and claims["permissions"] == ["own_proposals"]
        # py-ispyb's set_token_data reads these three.
        assert (claims["login"], claims["personId"], claims["permissions"]) == ("test", None, ["own_proposals"])
        verified = manager.verify(token)  # and we still accept our own, without aud
        assert verified.login == "test" and verified.session_id == claims["sid"]
        manager.logout(token)
        with pytest.raises(InvalidToken):
            manager.verify(token)


class Impersonator:
    """A plugin that tries to make py-ispyb read another user from our token."""

    @hookimpl
    def authcore_token_claims(self, identity: Any) -> dict[str, Any]:
        return {"login": "admin", "personId": 1}


def test_login_claim_is_always_the_subject() -> None:
    with AuthManager.from_config(config()) as manager:
        manager.plugins.register(Impersonator())
        claims = pyispyb_decode(manager.login("dummy", login="test", password="x").access_token)
        assert (claims["login"], claims["sub"], claims["personId"]) == ("test", "test", 1)


def test_the_default_profile_is_refused_by_py_ispyb_for_its_audience() -> None:
    with AuthManager.from_config(config(profile="authcore")) as manager:
        token = manager.login("dummy", login="test", password="x").access_token
        with pytest.raises(jwt.InvalidAudienceError):
            pyispyb_decode(token)
    # Under the default profile a token of ours without aud is refused.
    with (
        AuthManager.from_config(config(profile="authcore")) as manager,
        AuthManager.from_config(config()) as other,
        pytest.raises(InvalidToken, match="audience"),
    ):
        manager.verify(other.login("dummy", login="test", password="x").access_token)


def test_tokens_py_ispyb_minted_verify_without_a_session() -> None:
    now = int(time.time())
    seed = pyispyb_mint(
        {"username": "test", "groups": ["Admin"], "permissions": ["Admin"], "iat": now, "exp": now + 600}
    )
    current = pyispyb_mint(
        {"login": "curie", "personId": 12, "permissions": ["own_sessions"], "iat": now, "exp": now + 60}
    )
    with AuthManager.from_config(config()) as manager:
        verified = manager.verify(seed)
        assert (verified.login, verified.provider, verified.session_id) == ("test", "pyispyb", "")
        assert verified.permissions == {"Admin", "all_proposals", "all_sessions", "own_proposals"}
        assert verified.expires_at == now + 600
        other = manager.verify(current)
        assert other.login == "curie" and other.claims["personId"] == 12 and "own_sessions" in other.permissions
        # No session binds it: logout has nothing to end, and the token verifies until exp.
        with pytest.raises(InvalidToken):
            manager.logout(seed)
        assert manager.verify(seed).login == "test"
        # As a login it starts an authcore session of its own.
        result = manager.login("pyispyb", token=seed)
        assert result.login == "test" and manager.verify(result.access_token).session_id == result.session_id


@pytest.mark.parametrize(
    ("claims", "secret", "error"),
    [
        ({"username": "t", "permissions": [], "iat": 0, "exp": 10}, SECRET, TokenExpired),
        ({"username": "t", "permissions": [], "iat": "now", "exp": 2e9}, SECRET, InvalidToken),
        ({"username": "t", "permissions": [], "exp": 2e9}, SECRET, InvalidToken),  # no iat
        ({"username": "t", "permissions": [], "iat": 0, "exp": 2e9, "aud": "x"}, SECRET, InvalidToken),
        ({"username": "", "permissions": [], "iat": 0, "exp": 2e9}, SECRET, InvalidToken),
        ({"username": "t", "permissions": "Admin", "iat": 0, "exp": 2e9}, SECRET, InvalidToken),
        ({"login": "t", "personId": "12", "permissions": [], "iat": 0, "exp": 2e9}, SECRET, InvalidToken),
        ({"username": "t", "permissions": [], "iat": 0, "exp": 2e9}, "another-secret-another-secret-xx", InvalidToken),
    ],
)
def test_bad_py_ispyb_tokens_are_refused(claims: dict[str, Any], secret: str, error: type[Exception]) -> None:
    token = pyispyb_mint(claims, secret)
    with AuthManager.from_config(config()) as manager:
        with pytest.raises(error) as refused:
            manager.verify(token)
        assert token not in str(refused.value)
        with pytest.raises(InvalidCredentials):
            manager.login("pyispyb", token=token)


def test_only_plain_jwt_headers_are_py_ispybs() -> None:
    now = int(time.time())
    claims = {"username": "t", "permissions": [], "iat": now, "exp": now + 60}
    provider = PyIspybTokens("p", PyIspybTokens.Config.model_validate({"secret": SECRET}))
    assert provider.verify_bearer(jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "k"})) is None
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT: HS512 wants 64 bytes
        hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    assert provider.verify_bearer(hs512) is None  # the pinned algorithm is HS256
    assert provider.verify_bearer("not.a.jwt") is None
    typed = jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
    assert provider.verify_bearer(typed) is None
    assert provider.verify_bearer(jwt.encode(claims, SECRET, algorithm="HS256")) is not None
    assert SECRET not in repr(provider.config)


def test_profile_and_provider_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="profile 'pyispyb' needs an HS"):
        AuthManager.from_config(
            {**config(), "tokens": {"profile": "pyispyb", "algorithm": "ES256", "private_key_file": "/nonexistent.pem"}}
        )
    production = {**config(), "production": True}
    production["providers"] = [{**production["providers"][1], "config": {"secret": "short"}}]
    with pytest.raises(ConfigError, match="secret is shorter than 32 bytes"):
        AuthManager.from_config(production)


#: Minted once for the suite; valid for a day, so no test sees it expire.
_NOW = int(time.time())
_MINTED = {
    login: pyispyb_mint({"username": login, "groups": groups, "permissions": perms, "iat": _NOW, "exp": _NOW + 86400})
    for login, groups, perms in (("test", ["Admin"], ["Admin"]), ("curie", [], ["own_proposals"]))
}


class TestPyIspybTokensConformance(ProviderConformance):
    """Logging in with a py-ispyb token passes the suite every authcore provider passes."""

    provider_name = "pyispyb"

    @pytest.fixture
    def conformance_config(self) -> dict[str, Any]:
        return {k: v for k, v in config().items() if k != "providers"} | {"providers": config()["providers"][1:]}

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(token=_MINTED["test"], expect_login="test", expect_permissions=("Admin", "all_proposals")),
            Login(token=_MINTED["curie"], expect_login="curie", expect_permissions=("own_proposals",)),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        expired = pyispyb_mint({"username": "test", "permissions": [], "iat": 0, "exp": 1})
        forged = pyispyb_mint({"username": "test", "permissions": [], "iat": _NOW, "exp": _NOW + 60}, "x" * 40)
        return [Login(token=expired), Login(token=forged)]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [SECRET]
