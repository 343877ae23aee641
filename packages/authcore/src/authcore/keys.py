"""The asymmetric families of the algorithm table: PEM loading, key checks, JWKs, sign and verify.

Which key, padding, hash and curve is used comes from the :class:`~authcore.algorithms.Algorithm`
row, never from the key alone. Imported by :mod:`authcore.tokens` only when an asymmetric
algorithm is configured, so deployments using HMAC never load ``cryptography``'s asymmetric code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .algorithms import Algorithm
from .errors import ConfigError

__all__ = ["load", "VerificationKey", "jwk_verifier", "InvalidSignature"]

#: ``(kid, public JWK, verify(signature, data) -> bool)``.
VerificationKey = tuple[str, dict[str, Any], Callable[[bytes, bytes], bool]]


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return _b64url_encode(value.to_bytes(size, "big"))


_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_MIN_RSA_BITS: Final = 2048
#: The hash a row of the algorithm table names.
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: The curve a row names (JWK ``crv`` -> cryptography's curve class).
_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
#: Key classes (private and public) each JWK key type takes.
_KEY_CLASSES: Final[dict[str, tuple[type, ...]]] = {
    "RSA": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
    "EC": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    "OKP": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
}


def _hash(algorithm: Algorithm) -> hashes.HashAlgorithm:
    assert algorithm.hash is not None  # every RSA and EC row names one
    return _HASHES[algorithm.hash]()


def _rsa_padding(algorithm: Algorithm) -> padding.AsymmetricPadding:
    """The padding of the *algorithm* (never guessed from the key: one RSA key serves RS* and PS*)."""
    if algorithm.family == "rsa-pss":
        # RFC 7518 3.5: MGF1 with the same hash, a salt as long as the hash output.
        return padding.PSS(mgf=padding.MGF1(_hash(algorithm)), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _coordinate_size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8  # 32, 48 and 66 bytes for P-256, P-384, P-521


def _public_jwk(key: _PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of *key*'s JWK (exactly what the thumbprint hashes)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _int_b64(numbers.e), "kty": "RSA", "n": _int_b64(numbers.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_numbers()
        size = _coordinate_size(key.curve)
        crv = next(name for name, curve in _CURVES.items() if isinstance(key.curve, curve))
        return {"crv": crv, "kty": "EC", "x": _int_b64(point.x, size), "y": _int_b64(point.y, size)}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url_encode(raw)}


def _thumbprint(required: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, compact JSON."""
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def _check_kind(key: object, algorithm: Algorithm, source: str) -> None:
    """Refuse a key that cannot be used with *algorithm* (ConfigError naming *source*)."""
    name, kty, crv = algorithm.name, algorithm.kty, algorithm.crv
    if not isinstance(key, _KEY_CLASSES[kty]):
        wanted = "an RSA key" if kty == "RSA" else f"an EC {crv} key" if kty == "EC" else f"an {crv} key"
        raise ConfigError(f"{source}: {name} needs {wanted}")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        raise ConfigError(f"{source}: RSA keys shorter than {_MIN_RSA_BITS} bits are refused")
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        assert crv is not None  # every EC row names its curve
        if not isinstance(key.curve, _CURVES[crv]):
            raise ConfigError(f"{source}: {name} needs the {crv} curve")


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


def _load_private_key(path: Path, algorithm: Algorithm) -> _PrivateKey:
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


def _load_public_key(path: Path, algorithm: Algorithm) -> _PublicKey:
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


def _checker(algorithm: Algorithm, key: _PublicKey) -> Callable[[bytes, bytes], object]:
    """A ``check(signature, data)`` for *key* that raises ``InvalidSignature``, with the padding and
    hash of *algorithm*."""
    check: Callable[[bytes, bytes], object]
    if isinstance(key, rsa.RSAPublicKey):
        rsa_key, rsa_padding, digest = key, _rsa_padding(algorithm), _hash(algorithm)

        def check(signature: bytes, data: bytes) -> object:
            return rsa_key.verify(signature, data, rsa_padding, digest)

    elif isinstance(key, ec.EllipticCurvePublicKey):
        ec_key, ecdsa, size = key, ec.ECDSA(_hash(algorithm)), _coordinate_size(key.curve)

        def check(signature: bytes, data: bytes) -> object:
            # JOSE carries ECDSA signatures as raw r || s (RFC 7518 3.4); cryptography wants DER.
            if len(signature) != 2 * size:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            return ec_key.verify(encode_dss_signature(r, s), data, ecdsa)

    else:
        check = key.verify
    return check


def _verifier(algorithm: Algorithm, key: _PublicKey) -> Callable[[bytes, bytes], bool]:
    """A ``verify(signature, data) -> bool`` for *key*, with the padding and hash of *algorithm*."""
    check = _checker(algorithm, key)

    def verify(signature: bytes, data: bytes) -> bool:
        try:
            check(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify


def _b64url_int(value: object) -> int:
    if type(value) is not str or not value or len(value) > 1400:  # 1400: a 8192-bit modulus, with room
        raise ValueError("not a base64url integer")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def jwk_verifier(jwk: dict[str, Any], algorithm: Algorithm) -> Callable[[bytes, bytes], object]:
    """A ``check(signature, data)`` for the public JWK *jwk*, used with *algorithm* only; it raises
    :class:`cryptography.exceptions.InvalidSignature` for a bad signature.

    Raises :class:`ValueError` for a key that is malformed, of another type or curve than the
    algorithm's row, or an RSA key shorter than 2048 bits. Private members are ignored.
    """
    kty = jwk.get("kty")
    if kty != algorithm.kty or algorithm.symmetric:
        raise ValueError("key type does not fit the algorithm")
    public: _PublicKey
    try:
        if kty == "RSA":
            public = rsa.RSAPublicNumbers(_b64url_int(jwk.get("e")), _b64url_int(jwk.get("n"))).public_key()
            if public.key_size < _MIN_RSA_BITS:
                raise ValueError("RSA key too small")
        elif jwk.get("crv") != algorithm.crv:
            raise ValueError("key curve does not fit the algorithm")
        elif kty == "EC":
            curve = _CURVES[str(algorithm.crv)]()
            x, y = _b64url_int(jwk.get("x")), _b64url_int(jwk.get("y"))
            public = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        else:
            x_raw = jwk.get("x")
            if type(x_raw) is not str:
                raise ValueError("no key")
            public = ed25519.Ed25519PublicKey.from_public_bytes(
                base64.urlsafe_b64decode(x_raw + "=" * (-len(x_raw) % 4))
            )
    except (TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ValueError("malformed key") from exc
    return _checker(algorithm, public)


def _signer(algorithm: Algorithm, private: _PrivateKey) -> Callable[[bytes], bytes]:
    """A ``sign(data) -> signature`` for *private*, with the padding and hash of *algorithm*."""
    if isinstance(private, rsa.RSAPrivateKey):
        rsa_key, rsa_padding, digest = private, _rsa_padding(algorithm), _hash(algorithm)
        return lambda data: rsa_key.sign(data, rsa_padding, digest)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        ec_key, ecdsa, size = private, ec.ECDSA(_hash(algorithm)), _coordinate_size(private.curve)

        def sign_ecdsa(data: bytes) -> bytes:
            r, s = decode_dss_signature(ec_key.sign(data, ecdsa))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return sign_ecdsa
    return private.sign


def load(
    algorithm: Algorithm, private_key_file: Path, public_key_files: tuple[Path, ...]
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
            jwk = {**required, "kid": key_id, "use": "sig", "alg": algorithm.name}
            found[key_id] = (key_id, jwk, _verifier(algorithm, public))
    return _signer(algorithm, private), list(found.values())
