"""The shared offline JWT checks (authcore.jose): keys by kid with refetch rules, access and ID tokens.

Tokens are signed with PyJWT (an independent JOSE implementation) from keys made here; the
issuer's JWKS is served by a fetch function the tests control (the providers' HTTP fetches
are tested against real servers in auth-keycloak and auth-oidc).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authcore import InvalidToken, ProviderUnavailable, TokenExpired
from authcore.jose import MAX_JWKS_KEYS, JWTVerifier, KeyCache, flow, token_hash

ISSUER = "https://idp.example.org/realms/test"
CLIENT = "app"

_RSA = rsa.generate_private_key(65537, 2048)
_EC = {
    crv: ec.generate_private_key(curve())
    for crv, curve in (("P-256", ec.SECP256R1), ("P-384", ec.SECP384R1), ("P-521", ec.SECP521R1))
}
_ED = ed25519.Ed25519PrivateKey.generate()
_PRIVATE: dict[str, Any] = {
    **{alg: _RSA for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": _EC["P-256"],
    "ES384": _EC["P-384"],
    "ES512": _EC["P-521"],
    "EdDSA": _ED,
}


def public_jwk(alg: str, kid: str, *, pin: bool = True) -> dict[str, Any]:
    key = _PRIVATE[alg].public_key()
    jwk: dict[str, Any] = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key))
    jwk.update(kid=kid, use="sig")
    if pin:
        jwk["alg"] = alg
    return jwk


def sign(claims: dict[str, Any], alg: str = "RS256", kid: str = "k1", **header: Any) -> str:
    return jwt.encode(claims, _PRIVATE[alg], algorithm=alg, headers={"kid": kid, **header})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "sub": "u1", "aud": CLIENT, "azp": CLIENT, "exp": now + 300, "iat": now, **overrides}


class Issuer:
    """The issuer's JWKS endpoint, as a fetch function: serves ``document`` or raises ``error``."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.document: Any = {"keys": list(jwks)}
        self.error: Exception | None = None
        self.fetches = 0

    def __call__(self) -> Any:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return self.document


def verifier(
    issuer: Issuer, *, algorithms: tuple[str, ...] = ("RS256",), clock: list[float] | None = None, **kwargs: Any
) -> JWTVerifier:
    monotonic = (lambda: clock[0]) if clock is not None else time.monotonic
    keys = KeyCache(issuer, algorithms=algorithms, ttl=60, cooldown=5, max_stale=100, clock=monotonic)
    options: dict[str, Any] = {
        "clients": frozenset({CLIENT}),
        "audiences": frozenset({CLIENT}),
        "client_check": "either",
        "leeway": 0.0,
    }
    options.update(kwargs)
    return JWTVerifier(issuer=ISSUER, keys=keys, **options)


@pytest.mark.parametrize("alg", sorted(_PRIVATE))
def test_every_asymmetric_algorithm_of_the_table_verifies(alg: str) -> None:
    check = verifier(Issuer(public_jwk(alg, "k1")), algorithms=(alg,))
    assert check.claims(sign(claims(), alg)) is not None


@pytest.mark.parametrize("alg", ["PS256", "RS512"])
def test_an_rsa_key_without_alg_serves_only_the_algorithms_accepted(alg: str) -> None:
    issuer = Issuer(public_jwk("RS256", "k1", pin=False))
    assert verifier(issuer, algorithms=("RS256", alg)).claims(sign(claims(), alg)) is not None
    with pytest.raises(InvalidToken, match="algorithm not accepted"):  # the issuer does not publish it
        verifier(issuer, algorithms=("RS256",)).claims(sign(claims(), alg))


def test_a_pinned_key_refuses_another_algorithm_and_curves_must_fit() -> None:
    check = verifier(
        Issuer(public_jwk("RS256", "k1"), public_jwk("ES256", "e1")), algorithms=("RS256", "PS256", "ES384")
    )
    with pytest.raises(InvalidToken, match="does not match its key"):
        check.claims(sign(claims(), "PS256"))
    with pytest.raises(InvalidToken, match="does not match its key"):  # a P-256 key for ES384
        check.claims(_forge_alg(sign(claims(), "ES256", kid="e1"), "ES384"))


def _forge_alg(token: str, alg: str) -> str:
    import base64

    head, body, sig = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["alg"] = alg
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{body}.{sig}"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "HS256"},
        {"jku": "https://evil.example.org/keys"},
        {"jwk": {"kty": "oct"}},
        {"crit": ["exp"]},
        {"typ": "logout+jwt"},
        {"typ": 7},
    ],
)
def test_hostile_headers_are_refused(header: dict[str, Any]) -> None:
    check = verifier(Issuer(public_jwk("RS256", "k1")))
    token = sign(claims())
    if "alg" in header:
        token = _forge_alg(token, header["alg"])
    else:
        token = sign(claims(), **header)
    with pytest.raises(InvalidToken):
        check.claims(token)


def test_a_token_of_another_issuer_is_not_ours_and_same_kid_from_another_key_fails() -> None:
    check = verifier(Issuer(public_jwk("RS256", "k1")))
    assert check.claims(sign(claims(iss="https://other.example.org"))) is None
    other = rsa.generate_private_key(65537, 2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="bad token signature"):
        check.claims(forged)


def test_time_checks_are_exclusive_at_exp() -> None:
    exp = int(time.time()) + 100
    now = [exp - 0.001]
    keys = KeyCache(Issuer(public_jwk("RS256", "k1")), algorithms=("RS256",), ttl=60, cooldown=5)
    check = JWTVerifier(
        issuer=ISSUER,
        keys=keys,
        clients=frozenset({CLIENT}),
        audiences=frozenset(),
        client_check="azp",
        leeway=0,
        clock=lambda: now[0],
    )
    token = sign(claims(exp=exp, iat=exp - 200))
    assert check.claims(token) is not None
    now[0] = exp
    with pytest.raises(TokenExpired):
        check.claims(token)
    with pytest.raises(InvalidToken, match="not valid yet"):
        check.claims(sign(claims(exp=exp + 500, nbf=exp + 100)))


@pytest.mark.parametrize(
    ("policy", "token_claims", "ok"),
    [
        ("aud", {"aud": CLIENT, "azp": "other"}, True),
        ("aud", {"aud": ["api", CLIENT]}, True),
        ("aud", {"aud": "api", "azp": CLIENT}, False),
        ("azp", {"aud": "api", "azp": CLIENT}, True),
        ("azp", {"aud": "api", "client_id": CLIENT, "azp": None}, True),  # RFC 9068 names the client in client_id
        ("azp", {"aud": CLIENT, "azp": "other"}, False),
        ("either", {"aud": "api", "azp": "other"}, False),
        ("both", {"aud": CLIENT, "azp": "other"}, False),
        ("both", {"aud": CLIENT, "azp": CLIENT}, True),
    ],
)
def test_client_policy(policy: str, token_claims: dict[str, Any], ok: bool) -> None:
    check = verifier(Issuer(public_jwk("RS256", "k1")), client_check=policy)
    body = {k: v for k, v in claims(**token_claims).items() if v is not None}
    if ok:
        assert check.claims(sign(body)) is not None
    else:
        with pytest.raises(InvalidToken, match="another client"):
            check.claims(sign(body))


def test_logout_tokens_never_pass() -> None:
    check = verifier(Issuer(public_jwk("RS256", "k1")))
    with pytest.raises(InvalidToken, match="unexpected token type"):
        check.claims(sign(claims(events={"http://schemas.openid.net/event/backchannel-logout": {}})))


def test_id_token_rules() -> None:
    check = verifier(Issuer(public_jwk("ES256", "k1")), algorithms=("ES256",))
    access = "an-opaque-access-token"
    good = claims(nonce="n-1", at_hash=token_hash(access, "ES256"))
    result = check.id_token_claims(sign(good, "ES256"), client_id=CLIENT, nonce="n-1", access_token=access)
    assert result["sub"] == "u1"
    cases = [
        ({**good, "nonce": "n-2"}, "nonce"),
        ({**good, "aud": "other"}, "another client"),
        ({**good, "aud": [CLIENT, "other"], "azp": "other"}, "another client"),
        ({**good, "aud": [CLIENT, "other"], "azp": None}, "another client"),  # several audiences need azp
        ({**good, "at_hash": token_hash("another-token", "ES256")}, "at_hash"),
        ({**good, "iat": None}, "issue time"),
        ({**good, "iss": "https://other.example.org"}, "another issuer"),
    ]
    for body, message in cases:
        body = {k: v for k, v in body.items() if v is not None}
        with pytest.raises(InvalidToken, match=message):
            check.id_token_claims(sign(body, "ES256"), client_id=CLIENT, nonce="n-1", access_token=access)
    with pytest.raises(InvalidToken, match="unexpected token type"):  # an access token is no ID token
        check.id_token_claims(sign(good, "ES256", typ="at+jwt"), client_id=CLIENT, nonce="n-1")


def test_at_hash_of_eddsa_uses_sha512() -> None:
    import base64
    import hashlib

    digest = hashlib.sha512(b"tok").digest()[:32]
    assert token_hash("tok", "EdDSA") == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_thousand_keys_cost_one_fetch_and_load_only_the_key_used() -> None:
    jwks = [public_jwk("RS256", f"k{i}") for i in range(1000)]
    issuer = Issuer(*jwks)
    check = verifier(issuer)
    assert check.claims(sign(claims(), kid="k999")) is not None
    assert issuer.fetches == 1
    assert len(check.keys.kids) == 1000
    loaded = [kid for kid in check.keys.kids if check.keys.get(kid).verifiers]  # type: ignore[union-attr]
    assert loaded == ["k999"]


def test_a_jwks_above_the_bound_is_garbage_and_old_keys_stay() -> None:
    issuer = Issuer(public_jwk("RS256", "k1"))
    clock = [0.0]
    check = verifier(issuer, clock=clock)
    assert check.claims(sign(claims())) is not None
    issuer.document = {"keys": [public_jwk("RS256", f"x{i}") for i in range(MAX_JWKS_KEYS + 1)]}
    clock[0] = 61  # past the ttl: the next verify refetches, gets garbage, keeps k1
    assert check.claims(sign(claims())) is not None
    assert check.keys.kids == ("k1",)


@pytest.mark.parametrize("garbage", [None, "", [], {"keys": "x"}, {"keys": [1, "a", {"kty": "RSA"}]}, {"nokeys": []}])
def test_garbage_documents_never_break_held_keys(garbage: Any) -> None:
    issuer = Issuer(public_jwk("RS256", "k1"))
    clock = [0.0]
    check = verifier(issuer, clock=clock)
    check.claims(sign(claims()))
    issuer.document = garbage
    clock[0] = 61
    assert check.claims(sign(claims())) is not None


def test_stale_keys_work_for_max_stale_then_the_provider_is_unavailable() -> None:
    issuer = Issuer(public_jwk("RS256", "k1"))
    clock = [0.0]
    check = verifier(issuer, clock=clock)
    token = sign(claims())
    assert check.claims(token) is not None
    issuer.error = ProviderUnavailable("down")
    clock[0] = 60 + 99  # fresh for 60 s, stale for at most 100 more
    assert check.claims(token) is not None
    clock[0] = 60 + 100 + 6  # past max_stale (and past the cooldown after the last failure)
    with pytest.raises(ProviderUnavailable):
        check.claims(token)
    assert check.keys.kids == ()
    issuer.error = None  # back: a fetch after the cooldown brings the keys again
    clock[0] += 6
    assert check.claims(token) is not None


def test_unknown_kids_refetch_at_most_once_per_cooldown_and_share_one_fetch() -> None:
    issuer = Issuer(public_jwk("RS256", "k1"))
    clock = [0.0]
    check = verifier(issuer, clock=clock)
    check.claims(sign(claims()))
    for i in range(50):
        with pytest.raises(InvalidToken, match="unknown key"):
            check.claims(sign(claims(), kid=f"forged-{i}"))
    assert issuer.fetches == 2  # the first fetch, then one refetch for the first unknown kid
    clock[0] = 6
    issuer.document["keys"].append(public_jwk("ES256", "k2"))
    # After the cooldown, a rotation is picked up by one refetch.
    assert check.keys.get("k2") is not None and issuer.fetches == 3


def test_concurrent_first_use_fetches_once() -> None:
    gate = threading.Event()
    issuer = Issuer(public_jwk("RS256", "k1"))

    def slow() -> Any:
        gate.wait(5)
        return issuer()

    keys = KeyCache(slow, algorithms=("RS256",), ttl=60, cooldown=5)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(keys.get("k1"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    assert issuer.fetches == 1 and all(r is not None for r in results)


def test_no_keys_and_issuer_down_is_unavailable_not_invalid() -> None:
    issuer = Issuer()
    issuer.error = OSError("connection refused")
    with pytest.raises(ProviderUnavailable):
        verifier(issuer).claims(sign(claims()))


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "x" * 20000, "é.é.é", ".."])
def test_malformed_tokens_are_not_ours(token: str) -> None:
    assert verifier(Issuer(public_jwk("RS256", "k1"))).peek(token) is None


def test_authorization_url_keeps_its_parameters_and_takes_extras() -> None:
    url = flow.authorization_url(
        "https://idp.example.org/auth?tenant=x",
        client_id=CLIENT,
        redirect_uri="https://app.example.org/cb",
        scope="openid",
        state="s",
        nonce="n",
        code_verifier="v" * 43,
        extra={"prompt": "login", "state": "hijack"},
    )
    assert url.startswith("https://idp.example.org/auth?tenant=x&")
    assert "state=s&" in url and "hijack" not in url and "prompt=login" in url
    assert "code_challenge_method=S256" in url
