"""The RS256 floor of bench_keycloak and bench_oidc makes every check it claims to make.

A floor that skipped a check would be cheaper than any correct provider, so the providers'
ratios against it would look worse than they are; one that accepted a bad token would not be a
verifier at all. Tokens here are signed by PyJWT, not by the floor's own code.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://issuer.test/realms/r"
LEEWAY = 10.0


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_rs256", ROOT / "benchmarks" / "_rs256.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RS256 = _module()  # benchmarks/ is not a package: the file is loaded once, by path
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _floor(typ: str | None = "Bearer") -> Callable[[str], dict[str, Any]]:
    floor: Callable[[str], dict[str, Any]] = RS256.make_floor(
        KEY.public_key(), issuer=ISSUER, client_claim="azp", client_id="app", audience="api", typ=typ, leeway=LEEWAY
    )
    return floor


class FromNow(int):
    """A time claim *n* seconds from when the token is made (negative: ago).

    Parameters are built when pytest collects the module, minutes before a test may run in a
    busy worker; a time read then would have drifted by the time the token is signed.
    """


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "u1", "typ": "Bearer", "azp": "app", "exp": now + 60, "iat": now}
    claims.update({name: now + value if isinstance(value, FromNow) else value for name, value in changes.items()})
    return {name: value for name, value in claims.items() if value is not None}


def _token(key: rsa.RSAPrivateKey = KEY, **changes: Any) -> str:
    return jwt.encode(_claims(**changes), key, algorithm="RS256")


def test_a_good_token_gives_its_claims() -> None:
    assert _floor()(_token())["sub"] == "u1"


@pytest.mark.parametrize(
    "changes",
    [{"azp": None, "aud": "api"}, {"azp": None, "aud": ["other", "api"]}, {"exp": FromNow(-5)}],
    ids=["audience", "audience-in-list", "expired-within-leeway"],
)
def test_the_floor_accepts_what_the_providers_accept(changes: dict[str, Any]) -> None:
    assert _floor()(_token(**changes))["sub"] == "u1"


def test_typ_is_checked_only_when_asked() -> None:
    assert _floor(typ=None)(_token(typ=None))["sub"] == "u1"
    with pytest.raises(ValueError):
        _floor()(_token(typ=None))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://elsewhere.test/"}, "iss"),
        ({"typ": "Refresh"}, "typ"),
        ({"events": {"logout": {}}}, "typ"),
        ({"exp": None}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
        ({"exp": 10**12}, "exp"),
        ({"exp": FromNow(-int(LEEWAY))}, "expired"),
        ({"nbf": FromNow(3600)}, "nbf"),
        ({"iat": FromNow(3600)}, "iat"),
        ({"iat": "now"}, "iat"),
        ({"azp": "someone-else"}, "client"),
        ({"azp": None, "aud": ["other"]}, "client"),
    ],
)
def test_a_claim_out_of_bounds_is_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        _floor()(_token(**changes))


def test_a_signature_of_another_key_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        _floor()(_token(OTHER_KEY))


@pytest.mark.parametrize("mangle", [lambda t: t.replace("-", "+"), lambda t: t + "=", lambda t: t.replace("_", "/")])
def test_a_token_outside_the_base64url_alphabet_is_refused(mangle: Callable[[str], str]) -> None:
    token = _token()
    while "-" not in token or "_" not in token:  # each mangling needs its character present
        token = _token(sub=f"u1-{time.perf_counter_ns()}")
    with pytest.raises((ValueError, InvalidSignature)):  # the header is checked by the signature alone
        _floor()(mangle(token))
