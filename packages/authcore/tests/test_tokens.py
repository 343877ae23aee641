"""Access tokens: round trips, the verification threat list, keys and JWKS, and the verified-token cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import ValidationError

from authcore.algorithms import ALGORITHMS
from authcore.config import TokenConfig
from authcore.errors import ConfigError, InvalidToken, TokenExpired
from authcore.models import VerifiedToken
from authcore.testing.race import outcomes, race
from authcore.token_cache import TokenCache
from authcore.tokens import MAX_ACCESS_TOKEN_LENGTH, TokenService

SECRET = "unit-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789ABCDEF"
NOW = 1_700_000_000
LEEWAY = 10


# --------------------------------------------------------------------------- helpers


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    """A base64url JSON segment; a str is used as raw JSON text (to write duplicate keys and the like)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return b64(text.encode("utf-8"))


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims at NOW; a change to ``None`` removes the claim."""
    base: dict[str, Any] = {
        "iss": "authcore",
        "aud": "authcore",
        "sub": "alice",
        "sid": "session-1",
        "jti": "token-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
        "username": "alice",
        "groups": ["staff"],
        "permissions": ["all_proposals"],
        "provider": "dummy",
    }
    for name, value in changes.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


HS_HEADER = {"alg": "HS256", "typ": "at+jwt"}


def hs_token(
    header: Any = None, payload: Any = None, *, key: bytes = SECRET.encode(), digest: Any = hashlib.sha256
) -> str:
    """A token signed with HMAC over whatever header and payload it is given."""
    signing_input = (
        f"{segment(HS_HEADER if header is None else header)}.{segment(claims() if payload is None else payload)}"
    )
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def rsa_token(private: rsa.RSAPrivateKey, header: Any, payload: Any = None) -> str:
    signing_input = f"{segment(header)}.{segment(claims() if payload is None else payload)}"
    signature = private.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def hs_service(**changes: Any) -> TokenService:
    return TokenService(TokenConfig(secret=SECRET, leeway=LEEWAY, **changes))


def reject(
    service: TokenService, token: Any, *, expected: type[InvalidToken] = InvalidToken, now: float = NOW
) -> InvalidToken:
    """Assert *token* is refused with *expected*, and that the error leaks nothing."""
    with pytest.raises(InvalidToken) as caught:
        service.decode(token, now=now)
    error = caught.value
    assert type(error) is expected, f"{type(error).__name__}: {error}"
    assert_no_leak(error, token)
    return error


def assert_no_leak(error: BaseException, token: Any) -> None:
    texts = [str(error), repr(error)]
    # Nothing chained either: a context exception could carry token bytes into a traceback.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    for text in texts:
        assert SECRET not in text
        if isinstance(token, str):
            for part in token.split("."):
                if len(part) >= 6:
                    assert part not in text


# --------------------------------------------------------------------------- keys


@dataclass
class KeyPair:
    private: Any
    private_file: Path
    public_file: Path


def _write(directory: Path, name: str, private: Any) -> KeyPair:
    private_file = directory / f"{name}.pem"
    public_file = directory / f"{name}.pub.pem"
    private_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public_file.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return KeyPair(private, private_file, public_file)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    directory = tmp_path_factory.mktemp("keys")
    made: dict[str, Any] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa1024": rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ec2": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ec384b": ec.generate_private_key(ec.SECP384R1()),
        "ec521": ec.generate_private_key(ec.SECP521R1()),
        "ec521b": ec.generate_private_key(ec.SECP521R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "ed2": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }
    pairs = {name: _write(directory, name, key) for name, key in made.items()}
    encrypted = directory / "encrypted.pem"
    encrypted.write_bytes(
        made["rsa"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    pairs["encrypted"] = KeyPair(made["rsa"], encrypted, pairs["rsa"].public_file)
    return pairs


#: Every asymmetric row of the algorithm table, with its signing key and a rotation-era key.
ASYMMETRIC = {
    **{f"{family}{bits}": ("rsa", "rsa2") for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("ec", "ec2"),
    "ES384": ("ec384", "ec384b"),
    "ES512": ("ec521", "ec521b"),
    "EdDSA": ("ed", "ed2"),
}
HMAC = ("HS256", "HS384", "HS512")


def asym_service(keys: dict[str, KeyPair], algorithm: str, name: str, *old: str) -> TokenService:
    return TokenService(
        TokenConfig(
            algorithm=algorithm,
            private_key_file=keys[name].private_file,
            public_key_files=tuple(keys[o].public_file for o in old),
            leeway=LEEWAY,
        )
    )


def issue(service: TokenService, now: float = NOW, **extra: Any) -> str:
    base = {"sub": "alice", "sid": "session-1", "exp": now + 900, "username": "alice", "provider": "dummy"}
    return service.issue({**base, **extra}, now=now)


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    pad = "=" * (-len(header) % 4), "=" * (-len(payload) % 4)
    return (
        json.loads(base64.urlsafe_b64decode(header + pad[0])),
        json.loads(base64.urlsafe_b64decode(payload + pad[1])),
    )


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("algorithm", HMAC)
def test_hmac_round_trip(algorithm: str) -> None:
    service = hs_service(algorithm=algorithm)
    token = issue(service, groups=["staff"], permissions=["all_proposals"])
    decoded = service.decode(token, now=NOW + 1)
    assert decoded["sub"] == "alice" and decoded["sid"] == "session-1" and decoded["groups"] == ["staff"]
    assert decoded["iss"] == "authcore" and decoded["aud"] == "authcore"
    assert decoded["iat"] == decoded["nbf"] == NOW
    header, _ = parts(token)
    assert header == {"alg": algorithm, "typ": "at+jwt"}
    # PyJWT agrees with what we produce (interoperability), without typ/kid knowledge.
    assert jwt.decode(token, SECRET, algorithms=[algorithm], audience="authcore", options={"verify_exp": False})


@pytest.mark.parametrize("algorithm", list(ASYMMETRIC))
def test_asymmetric_round_trip(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    token = issue(service)
    assert service.decode(token, now=NOW)["sub"] == "alice"
    header, _ = parts(token)
    [jwk] = service.jwks()["keys"]
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": jwk["kid"]}
    # Another service verifies offline from the published JWKS alone (PyJWT as the independent verifier).
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=[algorithm], audience="authcore", options={"verify_exp": False})


def test_issued_token_shape() -> None:
    service = hs_service()
    first, second = issue(service), issue(service)
    header_segment, payload_segment, _ = first.split(".")
    assert " " not in base64.urlsafe_b64decode(payload_segment + "==").decode()
    assert base64.urlsafe_b64decode(header_segment + "==") == b'{"alg":"HS256","typ":"at+jwt"}'
    jti_a, jti_b = parts(first)[1]["jti"], parts(second)[1]["jti"]
    assert (
        jti_a != jti_b
        and len(jti_a) == 22
        and set(jti_a) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )


def test_issue_uses_floor_of_now_and_clock() -> None:
    service = hs_service()
    token = service.issue({"sub": "a", "sid": "s", "exp": NOW + 60}, now=NOW + 0.75)
    assert parts(token)[1]["iat"] == NOW
    # Without now= the wall clock is used: a fresh token verifies right away.
    fresh = service.issue({"sub": "a", "sid": "s", "exp": 2**33})
    assert service.decode(fresh)["sub"] == "a"


@pytest.mark.parametrize("name", ["iss", "aud", "iat", "nbf", "jti"])
def test_issue_refuses_reserved_claims(name: str) -> None:
    with pytest.raises(ValueError, match=name) as caught:
        hs_service().issue({"sub": "a", "sid": "s", "exp": NOW + 1, name: "x"}, now=NOW)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"sid": "s", "exp": NOW}, ValueError),
        ({"sub": "a", "exp": NOW}, ValueError),
        ({"sub": "a", "sid": "s"}, ValueError),
        ({"sub": "", "sid": "s", "exp": NOW}, TypeError),
        ({"sub": "a", "sid": 1, "exp": NOW}, TypeError),
        ({"sub": "a", "sid": "s", "exp": True}, TypeError),
        ({"sub": "a", "sid": "s", "exp": float("nan")}, TypeError),
    ],
)
def test_issue_refuses_tokens_that_would_not_verify(bad: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        hs_service().issue(bad, now=NOW)


def test_issue_refuses_oversized_tokens() -> None:
    with pytest.raises(ValueError, match="longer than"):
        issue(hs_service(), permissions=[f"permission_{i}" for i in range(1000)])


# --------------------------------------------------------------------------- alg: none and algorithm confusion


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_refused(alg: str, signature: str) -> None:
    token = f"{segment({'alg': alg, 'typ': 'at+jwt'})}.{segment(claims())}.{signature}"
    reject(hs_service(), token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS384", "HS512", "RS256", "ES256", "EdDSA", "", None])
def test_header_alg_must_equal_the_pinned_one_even_when_the_signature_is_ours(alg: Any) -> None:
    """The header's alg is checked, not trusted: even a token correctly HMAC-SHA256-signed with our
    secret is refused when its header claims another algorithm."""
    header: dict[str, Any] = {"typ": "at+jwt"} if alg is None else {"alg": alg, "typ": "at+jwt"}
    reject(hs_service(), hs_token(header))


@pytest.mark.parametrize("alg", ["none", "NONE"])
def test_alg_none_is_refused_when_asymmetric(keys: dict[str, KeyPair], alg: str) -> None:
    service = asym_service(keys, "RS256", "rsa")
    reject(service, f"{segment({'alg': alg, 'typ': 'at+jwt'})}.{segment(claims())}.")
    reject(service, f"{segment({'alg': alg, 'typ': 'at+jwt'})}.{segment(claims())}.AAAA")


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
@pytest.mark.parametrize("with_kid", [False, True])
def test_hs256_keyed_with_the_public_key_is_refused(keys: dict[str, KeyPair], encoding: Any, with_kid: bool) -> None:
    service = asym_service(keys, "RS256", "rsa")
    public_bytes = (
        keys["rsa"].private.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt"}
    if with_kid:
        header["kid"] = service.jwks()["keys"][0]["kid"]
    reject(service, hs_token(header, key=public_bytes))
    # The same with the PEM file's exact bytes, which is what a confused library would use.
    reject(service, hs_token(header, key=keys["rsa"].public_file.read_bytes()))


@pytest.mark.parametrize(
    ("alg", "digest"), [("HS384", hashlib.sha384), ("HS512", hashlib.sha512), ("hs256", hashlib.sha256)]
)
def test_other_hmac_algorithms_are_refused(alg: str, digest: Any) -> None:
    reject(hs_service(), hs_token({"alg": alg, "typ": "at+jwt"}, digest=digest))


def test_rs256_token_refused_by_hs256_service(keys: dict[str, KeyPair]) -> None:
    token = issue(asym_service(keys, "RS256", "rsa"))
    reject(hs_service(), token)


@pytest.mark.parametrize("signer", ["ES256", "EdDSA"])
def test_asymmetric_algorithm_mismatch(keys: dict[str, KeyPair], signer: str) -> None:
    token = issue(asym_service(keys, signer, ASYMMETRIC[signer][0]))
    reject(asym_service(keys, "RS256", "rsa"), token)


# --------------------------------------------------------------------------- the algorithm table


def test_every_row_of_the_table_is_configurable_and_tested() -> None:
    """The schema takes its algorithm names from the table, and this file tests every row."""
    annotation = TokenConfig.model_fields["algorithm"].annotation
    assert set(get_args(annotation)) == set(ALGORITHMS) == {*HMAC, *ASYMMETRIC}
    for name, row in ALGORITHMS.items():
        assert row.name == name and row.symmetric == (name in HMAC)
    with pytest.raises(ValidationError):
        TokenConfig(algorithm="PS257", private_key_file=Path("key.pem"))


@pytest.mark.parametrize("algorithm", list(ASYMMETRIC))
def test_tokens_signed_by_pyjwt_with_our_key_verify(keys: dict[str, KeyPair], algorithm: str) -> None:
    """An independent signer (PyJWT) with the same key and algorithm: padding, hash and encoding agree."""
    service = asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    kid = service.jwks()["keys"][0]["kid"]
    token = jwt.encode(
        claims(), keys[ASYMMETRIC[algorithm][0]].private, algorithm, headers={"typ": "at+jwt", "kid": kid}
    )
    assert service.decode(token, now=NOW)["sub"] == "alice"


@pytest.mark.parametrize("algorithm", [name for name in ASYMMETRIC if name.startswith(("RS", "PS"))])
def test_one_rsa_key_other_rsa_algorithm_is_refused(keys: dict[str, KeyPair], algorithm: str) -> None:
    """Algorithm confusion with one RSA key: padding and hash follow the pinned algorithm, not the key.

    A token of every other RSA algorithm, made with the very same key and naming our kid, is
    refused, whether its header says what it is or claims our algorithm.
    """
    service = asym_service(keys, algorithm, "rsa")
    kid = service.jwks()["keys"][0]["kid"]
    private = keys["rsa"].private
    for other in ASYMMETRIC:
        if other == algorithm or not other.startswith(("RS", "PS")):
            continue
        honest = jwt.encode(claims(), private, other, headers={"typ": "at+jwt", "kid": kid})
        assert str(reject(service, honest)) == "token algorithm not accepted"
        # Our header, signed with the other algorithm's padding and hash: only the signature differs.
        signing_input = f"{segment({'alg': algorithm, 'typ': 'at+jwt', 'kid': kid})}.{segment(claims())}"
        forged = f"{signing_input}.{b64(_rsa_sign(private, other, signing_input.encode()))}"
        assert str(reject(service, forged)) == "token signature invalid"
        # The control: the same, signed as the pinned algorithm, is accepted.
        genuine = f"{signing_input}.{b64(_rsa_sign(private, algorithm, signing_input.encode()))}"
        assert service.decode(genuine, now=NOW)["sub"] == "alice"


def _rsa_sign(private: rsa.RSAPrivateKey, algorithm: str, data: bytes) -> bytes:
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[2:]]
    if algorithm.startswith("PS"):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.DIGEST_LENGTH)
        return private.sign(data, pss, digest)
    return private.sign(data, padding.PKCS1v15(), digest)


@pytest.mark.parametrize("algorithm", ["ES384", "ES512"])
def test_ecdsa_signature_length_follows_the_curve(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    header, payload, signature = issue(service).split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert len(raw) == {"ES384": 96, "ES512": 132}[algorithm]
    reject(service, f"{header}.{payload}.{b64(raw[:-1])}")
    reject(service, f"{header}.{payload}.{b64(raw + bytes(1))}")


# --------------------------------------------------------------------------- signatures


def test_wrong_hmac_key() -> None:
    reject(hs_service(), hs_token(key=b"another secret of sufficient length!!"))


@pytest.mark.parametrize("algorithm", list(ASYMMETRIC))
def test_wrong_asymmetric_key_even_with_our_kid(keys: dict[str, KeyPair], algorithm: str) -> None:
    ours = asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    theirs = asym_service(keys, algorithm, ASYMMETRIC[algorithm][1])
    forged = issue(theirs)
    reject(ours, forged)
    # Swap in our kid: the header then names our key, and the signature still fails.
    our_kid = ours.jwks()["keys"][0]["kid"]
    _, payload, signature = forged.split(".")
    reject(ours, f"{segment({'alg': algorithm, 'typ': 'at+jwt', 'kid': our_kid})}.{payload}.{signature}")


@pytest.mark.parametrize("algorithm", ["HS256", *ASYMMETRIC])
def test_stripped_signature(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = hs_service() if algorithm == "HS256" else asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    header, payload, _ = issue(service).split(".")
    reject(service, f"{header}.{payload}.")
    reject(service, f"{header}.{payload}")


@pytest.mark.parametrize("algorithm", ["HS256", *ASYMMETRIC])
def test_tampered_signature(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = hs_service() if algorithm == "HS256" else asym_service(keys, algorithm, ASYMMETRIC[algorithm][0])
    header, payload, signature = issue(service).split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    reject(service, f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}")
    reject(service, f"{header}.{payload}.{signature[:-4]}")  # truncated
    reject(service, f"{header}.{payload}.{signature}AAAA")  # extended


def test_es256_signature_with_padded_integers_is_refused(keys: dict[str, KeyPair]) -> None:
    """r || 0x00 || s encodes the same integers: accepting it would make token strings malleable."""
    service = asym_service(keys, "ES256", "ec")
    header, payload, signature = issue(service).split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert len(raw) == 64
    zero = bytes(1)
    reject(service, f"{header}.{payload}.{b64(raw[:32] + zero + raw[32:])}")
    reject(service, f"{header}.{payload}.{b64(zero + raw)}")


def test_es256_der_signature_is_refused(keys: dict[str, KeyPair]) -> None:
    """JOSE ES256 signatures are raw r||s; a DER signature (what cryptography emits) is not accepted."""
    service = asym_service(keys, "ES256", "ec")
    header, payload, _ = issue(service).split(".")
    der = keys["ec"].private.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    decode_dss_signature(der)  # really DER
    reject(service, f"{header}.{payload}.{b64(der)}")


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_tampered_payload(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = hs_service() if algorithm == "HS256" else asym_service(keys, algorithm, "rsa")
    header, _, signature = issue(service).split(".")
    _, original = parts(issue(service))
    forged = {**original, "sub": "admin", "permissions": ["*"]}
    reject(service, f"{header}.{segment(forged)}.{signature}")


def test_non_canonical_signature_encoding_is_refused() -> None:
    """Unused low bits in the last base64 character must be zero: one token, one string."""
    service = hs_service()
    token = hs_token()
    header, payload, signature = token.split(".")
    assert len(signature) % 4 == 3  # 32 bytes -> the last character carries 2 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = f"{header}.{payload}.{signature[:-1]}{alphabet[last | 1]}"
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "=") == base64.urlsafe_b64decode(signature + "=")
    assert service.decode(token, now=NOW)
    reject(service, twin)


# --------------------------------------------------------------------------- time claims


# RFC 7519 4.1.4: at exp (+ leeway) itself the token has expired.
@pytest.mark.parametrize(("offset", "ok"), [(LEEWAY - 1, True), (LEEWAY, False), (LEEWAY + 1, False)])
def test_exp_leeway(offset: int, ok: bool) -> None:
    service, token = hs_service(), hs_token(payload=claims(exp=NOW + 100))
    now = NOW + 100 + offset
    if ok:
        assert service.decode(token, now=now)["exp"] == NOW + 100
    else:
        reject(service, token, expected=TokenExpired, now=now)


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize(("offset", "ok"), [(LEEWAY - 1, True), (LEEWAY, True), (LEEWAY + 1, False)])
def test_nbf_and_iat_leeway(name: str, offset: int, ok: bool) -> None:
    service, token = hs_service(), hs_token(payload=claims(**{name: NOW + offset}))
    if ok:
        assert service.decode(token, now=NOW)[name] == NOW + offset
    else:
        error = reject(service, token, now=NOW)
        assert not isinstance(error, TokenExpired)


def test_float_times_are_accepted() -> None:
    service = hs_service()
    assert service.decode(hs_token(payload=claims(iat=NOW + 0.5, nbf=NOW + 0.5, exp=NOW + 60.5)), now=NOW)


def test_expired_is_an_invalid_token() -> None:
    assert issubclass(TokenExpired, InvalidToken)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [True, False, "1700000900", None, [NOW], {"t": NOW}, 10**30, -(10**30)])
def test_time_claims_must_be_real_numbers(name: str, value: Any) -> None:
    payload = claims(**{name: value}) if value is not None else claims(**{name: None})
    reject(hs_service(), hs_token(payload=payload))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_exp_is_refused(literal: str) -> None:
    raw = json.dumps(claims(exp=0), separators=(",", ":")).replace('"exp":0', f'"exp":{literal}')
    reject(hs_service(), hs_token(payload=raw))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_anywhere_are_refused(literal: str) -> None:
    raw = json.dumps(claims(), separators=(",", ":"))[:-1] + f',"score":{literal}}}'
    reject(hs_service(), hs_token(payload=raw))


# --------------------------------------------------------------------------- issuer, audience, subject


def test_wrong_issuer() -> None:
    reject(hs_service(), hs_token(payload=claims(iss="https://evil.example.org")))
    reject(hs_service(), hs_token(payload=claims(iss=None)))
    reject(hs_service(), hs_token(payload=claims(iss=["authcore"])))


def test_configured_issuer_and_audience() -> None:
    service = hs_service(issuer="https://auth.example.org", audience="api")
    token = issue(service)
    assert service.decode(token, now=NOW)["iss"] == "https://auth.example.org"
    reject(hs_service(), token)  # default issuer/audience: refused


def test_wrong_audience() -> None:
    reject(hs_service(), hs_token(payload=claims(aud="other")))
    reject(hs_service(), hs_token(payload=claims(aud=None)))
    reject(hs_service(), hs_token(payload=claims(aud=["other", "another"])))
    reject(hs_service(), hs_token(payload=claims(aud=[])))
    reject(hs_service(), hs_token(payload=claims(aud={"authcore": True})))


def test_audience_list_containing_ours() -> None:
    assert hs_service().decode(hs_token(payload=claims(aud=["other", "authcore"])), now=NOW)


@pytest.mark.parametrize(
    "changes",
    [{"sub": None}, {"sub": ""}, {"sub": 7}, {"sid": None}, {"sid": 1}, {"jti": None}, {"jti": ["x"]}],
)
def test_required_identity_claims(changes: dict[str, Any]) -> None:
    reject(hs_service(), hs_token(payload=claims(**changes)))


@pytest.mark.parametrize("payload", ["[]", '"alice"', "42", "null", "true", '[{"sub":"alice"}]'])
def test_payload_must_be_an_object(payload: str) -> None:
    reject(hs_service(), hs_token(payload=payload))


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": ["unknown-extension"], "unknown-extension": 1},
        {"jku": "https://evil.example.org/jwks.json"},
        {"x5u": "https://evil.example.org/cert.pem"},
        {"jwk": {"kty": "oct", "k": b64(b"attacker key")}},
        {"x5c": ["MIIB..."]},
        {"x5t": "abc"},
        {"x5t#S256": "abc"},
        {"enc": "A256GCM"},
        {"zip": "DEF"},
        {"cty": "JWT"},
        {"b64": False},
        {"foo": "bar"},
    ],
)
def test_header_members_that_are_refused(extra: dict[str, Any]) -> None:
    # Correctly signed with our secret: only the header member makes it fail.
    reject(hs_service(), hs_token({**HS_HEADER, **extra}))


def test_key_choosing_headers_cannot_pick_an_attacker_key(keys: dict[str, KeyPair]) -> None:
    service = asym_service(keys, "RS256", "rsa")
    attacker = keys["rsa2"].private
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    for extra in (
        {"jwk": attacker_jwk},
        {"jku": "https://evil.example.org/jwks.json"},
        {"x5u": "https://evil.example.org/cert.pem"},
        {"x5c": ["MIIB"]},
        {"kid": "attacker-key"},
        {"kid": "../../etc/passwd"},
        {"kid": 1},
        {"kid": None},
    ):
        reject(service, rsa_token(attacker, {"alg": "RS256", "typ": "at+jwt", **extra}))


def test_kid_is_refused_for_hmac() -> None:
    reject(hs_service(), hs_token({**HS_HEADER, "kid": "anything"}))
    reject(hs_service(), hs_token({**HS_HEADER, "kid": ""}))


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "AT+JWT", "application/at+jwt", "at+jwt ", 1])
def test_typ_must_be_at_jwt(typ: Any) -> None:
    header: dict[str, Any] = {"alg": "HS256"}
    if typ is not None:
        header["typ"] = typ
    reject(hs_service(), hs_token(header))


@pytest.mark.parametrize("header", ["[]", '"HS256"', "null", "1", '{"alg":"HS256","typ":"at+jwt"', "{" * 5000])
def test_header_must_be_an_object(header: str) -> None:
    reject(hs_service(), hs_token(header))


def test_duplicate_keys_in_header() -> None:
    reject(hs_service(), hs_token('{"alg":"none","alg":"HS256","typ":"at+jwt"}'))
    reject(hs_service(), hs_token('{"alg":"HS256","typ":"at+jwt","typ":"at+jwt"}'))


def test_duplicate_keys_in_payload() -> None:
    raw = json.dumps(claims(), separators=(",", ":"))
    reject(hs_service(), hs_token(payload=raw[:-1] + ',"sub":"admin"}'))
    nested = raw[:-1] + ',"extra":{"a":1,"a":2}}'
    reject(hs_service(), hs_token(payload=nested))


def test_whitespace_variant_of_our_header_is_accepted_and_cache_is_bounded() -> None:
    """A differently formatted but valid header verifies; the header cache only grows for signed ones, to a bound."""
    service = hs_service()
    for spaces in range(40):
        header = '{"alg":"HS256",' + " " * spaces + '"typ":"at+jwt"}'
        assert service.decode(hs_token(header), now=NOW)["sub"] == "alice"
        forged = hs_token(header.replace("{", "{ ", 1), key=b"wrong key, wrong key, wrong key!")
        reject(service, forged)
    assert len(service._headers) <= 32


# --------------------------------------------------------------------------- shapes


def test_jwe_five_segments() -> None:
    jwe_header = segment({"alg": "dir", "enc": "A256GCM", "typ": "at+jwt"})
    reject(hs_service(), f"{jwe_header}..{b64(b'iv' * 6)}.{b64(b'ciphertext')}.{b64(b'tag' * 5)}")
    token = hs_token()
    reject(hs_service(), f"{token}.{b64(b'x')}.{b64(b'y')}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "...",
        "abc",
        "a.b",
        "a.b.c.d",
        "not a token",
        "Bearer eyJ.eyJ.sig",
        "eyJhbGciOiJIUzI1NiJ9",
        "rt_" + "A" * 43,
        "rt_abc.def.ghi",
        "a" * 4 + "." + "b" * 5 + "." + "c" * 4,  # a 5-character segment is never base64
        "%%%.%%%.%%%",
    ],
)
def test_non_jwt_strings(token: str) -> None:
    reject(hs_service(), token)


@pytest.mark.parametrize("token", [None, 42, b"a.b.c", ["a", "b", "c"], 1.5])
def test_non_strings(token: Any) -> None:
    reject(hs_service(), token)


def test_refresh_token_presented_as_access_token() -> None:
    from authcore.config import SessionConfig
    from authcore.sessions import MemorySessionStore, Sessions

    _, refresh_token = Sessions(MemorySessionStore(), SessionConfig()).start(
        login="alice", provider="dummy", identity={}, now=NOW
    )
    reject(hs_service(), refresh_token)


def test_huge_tokens() -> None:
    valid = hs_token()
    reject(hs_service(), "A" * 1_000_000)
    reject(hs_service(), valid + "A" * 1_000_000)
    padded_claims = claims(filler="x" * MAX_ACCESS_TOKEN_LENGTH)
    reject(hs_service(), hs_token(payload=padded_claims))  # correctly signed, but too long to look at


@pytest.mark.parametrize("position", ["header", "payload", "signature"])
@pytest.mark.parametrize("intruder", ["é", "\u0430", "\uff21", "\x00", "\n", " ", "\t", "\u200b", "\udcff"])
def test_foreign_characters(position: str, intruder: str) -> None:
    header, payload, signature = hs_token().split(".")
    pieces = {"header": header, "payload": payload, "signature": signature}
    pieces[position] = pieces[position][:5] + intruder + pieces[position][5:]
    reject(hs_service(), ".".join(pieces.values()))


@pytest.mark.parametrize("position", [0, 1, 2])
def test_padding_in_segments(position: int) -> None:
    pieces = hs_token().split(".")
    pieces[position] += "="
    reject(hs_service(), ".".join(pieces))
    pieces[position] += "="
    reject(hs_service(), ".".join(pieces))


def test_standard_base64_alphabet_is_refused() -> None:
    # Find a valid token that uses '-' or '_' somewhere, then switch to '+' '/'.
    for index in range(200):
        token = hs_token(payload=claims(jti=f"token-{index}", sub="~~~>>>???"))
        if "-" in token or "_" in token:
            break
    else:  # pragma: no cover - statistically impossible
        pytest.fail("no token with - or _")
    reject(hs_service(), token.replace("-", "+").replace("_", "/"))


def test_invalid_utf8_in_signed_payload() -> None:
    payload = b'{"sub":"\xff\xfe"}'
    signing_input = f"{segment(HS_HEADER)}.{b64(payload)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    reject(hs_service(), f"{signing_input}.{b64(signature)}")


def test_bom_and_trailing_data_in_payload() -> None:
    raw = json.dumps(claims(), separators=(",", ":"))
    reject(hs_service(), hs_token(payload="\ufeff" + raw))
    reject(hs_service(), hs_token(payload=raw + "{}"))


# --------------------------------------------------------------------------- keys, rotation, JWKS


@pytest.mark.parametrize("algorithm", list(ASYMMETRIC))
def test_key_rotation_with_public_key_files(keys: dict[str, KeyPair], algorithm: str) -> None:
    old_name, new_name = ASYMMETRIC[algorithm]
    old_service = asym_service(keys, algorithm, old_name)
    new_service = asym_service(keys, algorithm, new_name, old_name)
    new_only = asym_service(keys, algorithm, new_name)
    old_token, new_token = issue(old_service), issue(new_service)
    assert new_service.decode(old_token, now=NOW)["sub"] == "alice"
    assert new_service.decode(new_token, now=NOW)["sub"] == "alice"
    reject(new_only, old_token)
    reject(old_service, new_token)
    kids = [key["kid"] for key in new_service.jwks()["keys"]]
    assert kids == [new_only.jwks()["keys"][0]["kid"], old_service.jwks()["keys"][0]["kid"]]
    assert parts(new_token)[0]["kid"] == kids[0]


def test_rotation_without_kid_tries_every_key(keys: dict[str, KeyPair]) -> None:
    service = asym_service(keys, "RS256", "rsa2", "rsa")
    token = rsa_token(keys["rsa"].private, {"alg": "RS256", "typ": "at+jwt"})
    assert service.decode(token, now=NOW)["sub"] == "alice"
    # The no-kid header is now cached; a token under the same header from the other key still verifies.
    other = rsa_token(keys["rsa2"].private, {"alg": "RS256", "typ": "at+jwt"})
    assert service.decode(other, now=NOW)["sub"] == "alice"


def test_current_key_listed_again_is_not_duplicated(keys: dict[str, KeyPair]) -> None:
    service = asym_service(keys, "ES256", "ec", "ec")
    assert len(service.jwks()["keys"]) == 1


@pytest.mark.parametrize("algorithm", list(ASYMMETRIC))
def test_jwks_is_public_only(keys: dict[str, KeyPair], algorithm: str) -> None:
    service = asym_service(keys, algorithm, *ASYMMETRIC[algorithm])
    jwks = service.jwks()
    assert len(jwks["keys"]) == 2
    for jwk in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k", "oth"} & set(jwk)
        assert jwk["use"] == "sig" and jwk["alg"] == algorithm
        required = {name: jwk[name] for name in ("crv", "e", "kty", "n", "x", "y") if name in jwk}
        canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
        assert jwk["kid"] == b64(hashlib.sha256(canonical).digest())  # RFC 7638 thumbprint
    assert json.dumps(jwks)  # serialisable as is
    jwks["keys"].clear()
    assert service.jwks()["keys"]  # callers get a copy


def test_rfc7638_thumbprint_example() -> None:
    """The worked example of RFC 7638 section 3.1."""
    from authcore.keys import _thumbprint

    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
        "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
        "kEgU8awapJzKnqDKgw"
    )
    assert _thumbprint({"e": "AQAB", "kty": "RSA", "n": n}) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_empty_for_hmac() -> None:
    assert hs_service().jwks() == {"keys": []}


def _config_error(**settings: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        TokenService(TokenConfig(**settings))
    return caught.value


def test_missing_key_file(tmp_path: Path) -> None:
    error = _config_error(algorithm="RS256", private_key_file=tmp_path / "absent.pem")
    assert "absent.pem" in str(error)


def test_garbage_key_file_is_named_not_shown(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n")
    error = _config_error(algorithm="ES256", private_key_file=garbage)
    assert "garbage.pem" in str(error) and "TOPSECRETMATERIAL" not in str(error) + repr(error)
    assert error.__cause__ is None


def test_unreadable_key_file(tmp_path: Path) -> None:
    error = _config_error(algorithm="EdDSA", private_key_file=tmp_path)  # a directory
    assert str(tmp_path) in str(error)


@pytest.mark.parametrize(
    ("algorithm", "key", "words"),
    [
        ("RS256", "ec", "RSA"),
        ("RS256", "ed", "RSA"),
        ("RS256", "rsa1024", "2048"),
        ("ES256", "rsa", "EC"),
        ("ES256", "ec384", "P-256"),
        ("ES384", "ec", "P-384"),
        ("ES512", "ec384", "P-521"),
        ("PS256", "ec", "RSA"),
        ("PS256", "rsa1024", "2048"),
        ("ES256", "ed", "EC"),
        ("EdDSA", "rsa", "Ed25519"),
        ("EdDSA", "ed448", "Ed25519"),
        ("EdDSA", "ec", "Ed25519"),
    ],
)
def test_key_of_the_wrong_kind(keys: dict[str, KeyPair], algorithm: str, key: str, words: str) -> None:
    error = _config_error(algorithm=algorithm, private_key_file=keys[key].private_file)
    assert words in str(error) and keys[key].private_file.name in str(error)
    # The same check for the rotation keys.
    good = ASYMMETRIC[algorithm][0]
    error = _config_error(
        algorithm=algorithm, private_key_file=keys[good].private_file, public_key_files=(keys[key].public_file,)
    )
    assert words in str(error) and keys[key].public_file.name in str(error)


def test_encrypted_private_key(keys: dict[str, KeyPair]) -> None:
    error = _config_error(algorithm="RS256", private_key_file=keys["encrypted"].private_file)
    assert "encrypted" in str(error)


def test_public_key_given_as_private_key_and_vice_versa(keys: dict[str, KeyPair]) -> None:
    assert "private" in str(_config_error(algorithm="RS256", private_key_file=keys["rsa"].public_file))
    error = _config_error(
        algorithm="RS256", private_key_file=keys["rsa"].private_file, public_key_files=(keys["rsa2"].private_file,)
    )
    assert "public" in str(error) and "rsa2.pem" in str(error)


# --------------------------------------------------------------------------- secrets


def test_random_secret_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="authcore.tokens"):
        first = TokenService(TokenConfig())
        second = TokenService(TokenConfig())
    messages = [record for record in caplog.records if record.name == "authcore.tokens"]
    assert len(messages) == 2
    expected = "no tokens.secret configured: using a random per-process secret; tokens die with this process"
    assert all(record.getMessage() == expected and not record.args for record in messages)
    # Two random secrets: each refuses the other's tokens.
    reject(second, issue(first))
    assert first.decode(issue(first), now=NOW)


def test_fallback_secret_is_used_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="authcore.tokens"):
        service = TokenService(TokenConfig(leeway=LEEWAY), fallback_secret=SECRET.encode())
    assert not caplog.records
    assert hs_service().decode(issue(service), now=NOW)["sub"] == "alice"


def test_configured_secret_wins_over_fallback() -> None:
    service = TokenService(TokenConfig(secret=SECRET), fallback_secret=b"fallback-secret-fallback-secret!")
    assert hs_service().decode(issue(service), now=NOW)


def test_empty_secrets_are_config_errors() -> None:
    _config_error(secret="")
    with pytest.raises(ConfigError):
        TokenService(TokenConfig(), fallback_secret=b"")


def test_reprs_hide_secrets(keys: dict[str, KeyPair]) -> None:
    service = hs_service()
    assert SECRET not in repr(service) and SECRET not in str(service)
    assert "HS256" in repr(service)
    rsa_service = asym_service(keys, "RS256", "rsa")
    text = repr(rsa_service)
    numbers = keys["rsa"].private.private_numbers()
    assert str(numbers.p)[:20] not in text and "PRIVATE" not in text


def test_errors_never_echo_the_token() -> None:
    service = hs_service()
    token = hs_token(payload=claims(exp=NOW - 1000))
    error = reject(service, token, expected=TokenExpired)
    assert token not in str(error)


# --------------------------------------------------------------------------- TokenCache


def verified(session_id: str = "s1", token_id: str = "t1", expires_at: float = NOW + 900) -> VerifiedToken:
    return VerifiedToken(
        login="alice",
        provider="dummy",
        permissions=frozenset({"all_proposals"}),
        groups=("staff",),
        session_id=session_id,
        token_id=token_id,
        issued_at=NOW,
        expires_at=expires_at,
        claims={},
    )


def test_cache_get_put_and_expiry() -> None:
    cache = TokenCache(10)
    value = verified()
    assert cache.get("tok", NOW) is None
    cache.put("tok", value, NOW + 5)
    assert cache.get("tok", NOW) is value
    assert cache.get("tok", NOW + 4.999) is value
    assert cache.get("tok", NOW + 5) is None  # the deadline itself is past
    assert len(cache) == 0  # and the entry was dropped
    assert cache.get("tok", NOW) is None


def test_cache_put_replaces() -> None:
    cache = TokenCache(10)
    first, second = verified("s1"), verified("s2")
    cache.put("tok", first, NOW + 5)
    cache.put("tok", second, NOW + 50)
    assert cache.get("tok", NOW + 10) is second and len(cache) == 1
    cache.drop_session("s1")
    assert cache.get("tok", NOW) is second
    cache.drop_session("s2")
    assert cache.get("tok", NOW) is None


def test_cache_evicts_oldest() -> None:
    cache = TokenCache(3)
    for index in range(4):
        cache.put(f"tok{index}", verified(token_id=str(index)), NOW + 100)
    assert cache.get("tok0", NOW) is None
    assert [cache.get(f"tok{i}", NOW) is not None for i in (1, 2, 3)] == [True, True, True]
    assert len(cache) == 3
    assert "tok0" not in str(cache._by_session)


def test_cache_drop_session() -> None:
    cache = TokenCache(100)
    for index in range(5):
        cache.put(f"a{index}", verified("session-a"), NOW + 100)
        cache.put(f"b{index}", verified("session-b"), NOW + 100)
    cache.drop_session("session-a")
    assert all(cache.get(f"a{i}", NOW) is None for i in range(5))
    assert all(cache.get(f"b{i}", NOW) is not None for i in range(5))
    cache.drop_session("unknown")
    assert len(cache) == 5


def test_cache_clear_and_disabled() -> None:
    cache = TokenCache(5)
    cache.put("tok", verified(), NOW + 100)
    cache.clear()
    assert cache.get("tok", NOW) is None and len(cache) == 0
    off = TokenCache(0)
    off.put("tok", verified(), NOW + 100)
    assert off.get("tok", NOW) is None
    with pytest.raises(ValueError):
        TokenCache(-1)


def test_cache_repr_has_no_tokens() -> None:
    cache = TokenCache(5)
    cache.put("secret-token-string", verified(), NOW + 100)
    assert "secret-token-string" not in repr(cache)


def test_cache_thread_safety() -> None:
    cache = TokenCache(64)
    sessions = [f"s{i}" for i in range(6)]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(4000):
            token = f"tok-{rng.randrange(200)}"
            action = rng.random()
            if action < 0.5:
                session = rng.choice(sessions)
                cache.put(token, verified(session), NOW + rng.choice((1, 100)))
            elif action < 0.95:
                hit = cache.get(token, NOW + 50)
                assert hit is None or isinstance(hit, VerifiedToken)
            elif action < 0.99:
                cache.drop_session(rng.choice(sessions))
            elif step % 500 == 0:
                cache.clear()

    results = race(worker)
    assert outcomes(results) == {"ok": 8}, results
    assert len(cache) <= 64
    # The session index and the entries agree exactly.
    indexed = {token for tokens in cache._by_session.values() for token in tokens}
    assert indexed == set(cache._entries)
    for session, tokens in cache._by_session.items():
        assert tokens and all(cache._entries[token][2] == session for token in tokens)


def test_cached_logout_is_immediate() -> None:
    """After drop_session no thread can see the session's tokens, even between get and put."""
    cache = TokenCache(10)
    cache.put("tok", verified("s1"), NOW + 100)
    seen: list[VerifiedToken | None] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(cache.get("tok", NOW))

    thread = threading.Thread(target=reader)
    thread.start()
    cache.drop_session("s1")
    after = len(seen)
    stop.set()
    thread.join()
    assert all(value is None for value in seen[after + 1 :])


def test_hmac_tokens_load_no_asymmetric_crypto() -> None:
    """Why ``authcore.keys`` is imported inside TokenService: HS* deployments never load it."""
    code = (
        "import sys\n"
        "from authcore.config import TokenConfig\n"
        "from authcore.tokens import TokenService\n"
        "service = TokenService(TokenConfig(secret='x' * 40))\n"
        "service.decode(service.issue({'sub': 'a', 'sid': 's', 'exp': 2e9}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'authcore.keys'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
