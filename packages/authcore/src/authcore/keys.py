"""Asymmetric signing keys for access tokens: PEM loading, checks, JWKs, sign and verify.

Imported by :mod:`authcore.tokens` only when ``tokens.algorithm`` is RS256, ES256 or
EdDSA, so deployments using HMAC never load ``cryptography``'s asymmetric code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import ConfigError

__all__ = ["load", "VerificationKey"]

#: ``(kid, public JWK, verify(signature, data) -> bool)``.
VerificationKey = tuple[str, dict[str, Any], Callable[[bytes, bytes], bool]]


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return _b64url_encode(value.to_bytes(size, "big"))


_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_RSA_PADDING: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()
_ECDSA: Final = ec.ECDSA(hashes.SHA256())
_MIN_RSA_BITS: Final = 2048


def _public_jwk(key: _PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of *key*'s JWK (exactly what the thumbprint hashes)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _int_b64(numbers.e), "kty": "RSA", "n": _int_b64(numbers.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": _int_b64(point.x, 32), "y": _int_b64(point.y, 32)}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url_encode(raw)}


def _thumbprint(required: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, compact JSON."""
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def _check_kind(key: object, algorithm: str, source: str) -> None:
    """Refuse a key that cannot be used with *algorithm* (ConfigError naming *source*)."""
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise ConfigError(f"{source}: RS256 needs an RSA key")
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigError(f"{source}: RSA keys shorter than {_MIN_RSA_BITS} bits are refused")
    elif algorithm == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            raise ConfigError(f"{source}: ES256 needs an EC P-256 key")
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"{source}: ES256 needs the P-256 curve")
    elif algorithm == "EdDSA":
        if not isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
            raise ConfigError(f"{source}: EdDSA needs an Ed25519 key")
    else:  # pragma: no cover - the config model allows nothing else
        raise ConfigError(f"unsupported algorithm {algorithm!r}")


def _read_key_file(path: Path, setting: str) -> bytes:
    # The message names the file, never its content (it may be a private key).
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"tokens.{setting}: cannot read key file {str(path)!r} ({reason})") from None
    if len(data) > 1_000_000:
        raise ConfigError(f"tokens.{setting}: {str(path)!r} is too large to be a PEM key")
    return data


def _load_private_key(path: Path, algorithm: str) -> _PrivateKey:
    data = _read_key_file(path, "private_key_file")
    source = f"tokens.private_key_file {str(path)!r}"
    failure: str | None = None
    key: object = None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        failure = "is an encrypted private key; give an unencrypted PEM key (protect it with file permissions)"
    except (ValueError, UnsupportedAlgorithm):
        failure = "is not a PEM private key"
    if failure is not None:
        raise ConfigError(f"{source} {failure}")
    _check_kind(key, algorithm, source)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key


def _load_public_key(path: Path, algorithm: str) -> _PublicKey:
    data = _read_key_file(path, "public_key_files")
    source = f"tokens.public_key_files {str(path)!r}"
    key: object = None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if key is None:
        raise ConfigError(f"{source} is not a PEM public key")
    _check_kind(key, algorithm, source)
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key


def _verifier(key: _PublicKey) -> Callable[[bytes, bytes], bool]:
    """A ``verify(signature, data) -> bool`` for an asymmetric public key."""
    if isinstance(key, rsa.RSAPublicKey):
        rsa_key = key

        def verify_rs256(signature: bytes, data: bytes) -> bool:
            try:
                rsa_key.verify(signature, data, _RSA_PADDING, _SHA256)
            except InvalidSignature:
                return False
            return True

        return verify_rs256
    if isinstance(key, ec.EllipticCurvePublicKey):
        ec_key = key

        def verify_es256(signature: bytes, data: bytes) -> bool:
            # JOSE carries ECDSA signatures as raw r || s (RFC 7518 3.4); cryptography wants DER.
            if len(signature) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            try:
                ec_key.verify(der, data, _ECDSA)
            except InvalidSignature:
                return False
            return True

        return verify_es256
    ed_key = key

    def verify_eddsa(signature: bytes, data: bytes) -> bool:
        try:
            ed_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify_eddsa


def _signer(private: _PrivateKey) -> Callable[[bytes], bytes]:
    if isinstance(private, rsa.RSAPrivateKey):
        rsa_key = private
        return lambda data: rsa_key.sign(data, _RSA_PADDING, _SHA256)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        ec_key = private

        def sign_es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(ec_key.sign(data, _ECDSA))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return sign_es256
    ed_key = private
    return lambda data: ed_key.sign(data)


def load(
    algorithm: str, private_key_file: Path, public_key_files: tuple[Path, ...]
) -> tuple[Callable[[bytes], bytes], list[VerificationKey]]:
    """The signing function and the verification keys (signing key first, then earlier keys).

    Each key is named by its RFC 7638 thumbprint; a key listed twice counts once.
    """
    private = _load_private_key(private_key_file, algorithm)
    public_keys: list[_PublicKey] = [private.public_key()]
    public_keys += [_load_public_key(path, algorithm) for path in public_key_files]
    found: dict[str, VerificationKey] = {}
    for public in public_keys:
        required = _public_jwk(public)
        key_id = _thumbprint(required)
        if key_id not in found:
            jwk = {**required, "kid": key_id, "use": "sig", "alg": algorithm}
            found[key_id] = (key_id, jwk, _verifier(public))
    return _signer(private), list(found.values())
