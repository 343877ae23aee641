"""Signing keys for the test server, and a JWS signer to forge tokens in hostile tests.

Keys are JWK dicts (RFC 7517) made with ``cryptography``: RSA 2048 for ``RS*``/``PS*``,
P-256/384/521 for ``ES256``/``ES384``/``ES512``, Ed25519 for ``EdDSA``/``Ed25519``.
:func:`sign_jwt` signs with exactly the key and header it is given, so a test can lie in
the header (a wrong ``kid``, another ``alg``, ``typ``) and check that the verifier refuses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from authcore.errors import ConfigError

__all__ = ["generate_jwks", "public_jwks", "sign_jwt", "b64url", "SUPPORTED_ALGS"]

JWK = dict[str, Any]
JWKS = dict[str, list[JWK]]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, tuple[str, ec.EllipticCurve]] = {
    "ES256": ("P-256", ec.SECP256R1()),
    "ES384": ("P-384", ec.SECP384R1()),
    "ES512": ("P-521", ec.SECP521R1()),
}
_CURVE_BY_NAME = {name: curve for name, curve in _CURVES.values()}
_EDDSA = ("EdDSA", "Ed25519")
_RSA = tuple(f"{kind}{bits}" for kind in ("RS", "PS") for bits in _HASHES)
#: Algorithms :func:`generate_jwks` makes keys for.
SUPPORTED_ALGS: tuple[str, ...] = (*_RSA, *_CURVES, *_EDDSA)
#: JWK members that hold private (or symmetric) key material.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


def _b64_int(value: str) -> int:
    return int.from_bytes(_unb64url(value), "big")


def _rsa_jwk() -> JWK:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_numbers()
    public = private.public_numbers
    return {
        "kty": "RSA",
        "n": _int_b64(public.n),
        "e": _int_b64(public.e),
        "d": _int_b64(private.d),
        "p": _int_b64(private.p),
        "q": _int_b64(private.q),
        "dp": _int_b64(private.dmp1),
        "dq": _int_b64(private.dmq1),
        "qi": _int_b64(private.iqmp),
    }


def _ec_jwk(alg: str) -> JWK:
    crv, curve = _CURVES[alg]
    key = ec.generate_private_key(curve)
    private = key.private_numbers()
    # Coordinates are fixed-length octet strings (RFC 7518 section 6.2.1.2).
    size = (curve.key_size + 7) // 8
    return {
        "kty": "EC",
        "crv": crv,
        "x": _int_b64(private.public_numbers.x, size),
        "y": _int_b64(private.public_numbers.y, size),
        "d": _int_b64(private.private_value, size),
    }


def _ed25519_jwk() -> JWK:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)),
        "d": b64url(key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())),
    }


def generate_jwks(algs: Iterable[str] = ("RS256",), kid_prefix: str = "k") -> JWKS:
    """A private JWKS with one new key per entry of *algs*, each with ``kid``, ``alg`` and ``use``.

    Key ids are ``<kid_prefix><n>-<alg>`` (``k1-rs256``): use another *kid_prefix* for the
    keys that replace these in a rotation, so that no ``kid`` is reused.
    """
    keys: list[JWK] = []
    for index, alg in enumerate(algs, start=1):
        if alg in _RSA:
            jwk = _rsa_jwk()
        elif alg in _CURVES:
            jwk = _ec_jwk(alg)
        elif alg in _EDDSA:
            jwk = _ed25519_jwk()
        else:
            raise ConfigError(f"generate_jwks: unsupported algorithm {alg!r}; use one of {', '.join(SUPPORTED_ALGS)}")
        jwk.update({"kid": f"{kid_prefix}{index}-{alg.lower()}", "alg": alg, "use": "sig"})
        keys.append(jwk)
    if not keys:
        raise ConfigError("generate_jwks: at least one algorithm is needed")
    return {"keys": keys}


def public_jwks(jwks: Mapping[str, Any]) -> JWKS:
    """*jwks* without private key material: what the issuer publishes."""
    return {"keys": [{k: v for k, v in key.items() if k not in _PRIVATE_MEMBERS} for key in jwks["keys"]]}


def _sign(alg: str, jwk: Mapping[str, Any], data: bytes) -> bytes:
    kty = jwk.get("kty")
    bits = alg[2:]
    if alg.startswith("HS") and kty == "oct" and bits in _HASHES:
        return hmac.new(_unb64url(jwk["k"]), data, getattr(hashlib, f"sha{bits}")).digest()
    if alg[:2] in ("RS", "PS") and kty == "RSA" and bits in _HASHES:
        public = rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"]))
        private = rsa.RSAPrivateNumbers(
            p=_b64_int(jwk["p"]),
            q=_b64_int(jwk["q"]),
            d=_b64_int(jwk["d"]),
            dmp1=_b64_int(jwk["dp"]),
            dmq1=_b64_int(jwk["dq"]),
            iqmp=_b64_int(jwk["qi"]),
            public_numbers=public,
        ).private_key()
        digest = _HASHES[bits]()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(_HASHES[bits]()), salt_length=digest.digest_size)
        )
        return private.sign(data, pad, digest)
    if alg.startswith("ES") and kty == "EC" and bits in _HASHES:
        curve = _CURVE_BY_NAME[jwk["crv"]]
        ec_key = ec.EllipticCurvePrivateNumbers(
            _b64_int(jwk["d"]), ec.EllipticCurvePublicNumbers(_b64_int(jwk["x"]), _b64_int(jwk["y"]), curve)
        ).private_key()
        r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(_HASHES[bits]())))
        # JWS wants the raw r || s, each as long as the curve order (RFC 7518 section 3.4).
        size = (curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg in _EDDSA and kty == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(_unb64url(jwk["d"])).sign(data)
    raise ConfigError(f"sign_jwt: cannot sign {alg!r} with a {kty!r} key")


def sign_jwt(claims: Mapping[str, Any], jwk: Mapping[str, Any], header_extra: Mapping[str, Any] | None = None) -> str:
    """A compact JWS of *claims* signed with the private *jwk*.

    The header is ``{"alg": jwk["alg"], "typ": "JWT", "kid": jwk["kid"]}`` updated with
    *header_extra*. The signature uses the header's ``alg`` when the key can do it, else the
    key's own ``alg`` (a header that lies is one the test asked for); ``"alg": "none"`` gives
    an unsigned token. An ``oct`` JWK (``{"kty": "oct", "k": ...}``) signs ``HS256``/``HS384``/``HS512``.
    """
    header: dict[str, Any] = {"alg": jwk.get("alg"), "typ": "JWT"}
    if "kid" in jwk:
        header["kid"] = jwk["kid"]
    header.update(header_extra or {})
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    if header.get("alg") == "none":
        return f"{head}.{body}."
    signing_input = f"{head}.{body}".encode("ascii")
    try:
        signature = _sign(str(header.get("alg")), jwk, signing_input)
    except ConfigError:
        # The header names an algorithm this key cannot do: sign with the key's own one.
        signature = _sign(str(jwk.get("alg")), jwk, signing_input)
    return f"{head}.{body}.{b64url(signature)}"
