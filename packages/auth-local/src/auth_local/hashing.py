"""Password hashes: argon2id for everything new; bcrypt and PBKDF2 hashes imported from elsewhere.

:class:`PasswordHasher` is the one object the provider hashes and verifies through (tests
wrap it to count verifications). A stored hash that is not argon2id with the configured
parameters *needs an update*: the provider rehashes the password at the next successful
login, so imported bcrypt and PBKDF2 hashes turn into argon2id one login at a time.

Imported formats:

* bcrypt: ``$2b$``, ``$2a$``, ``$2y$`` (the ``bcrypt`` package);
* Django's PBKDF2: ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>``;
* passlib's PBKDF2: ``$pbkdf2-sha256$<iterations>$<ab64 salt>$<ab64 hash>`` (``pbkdf2-sha512`` too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["PasswordHasher", "UnknownHashFormat", "hash_format"]

#: PBKDF2 iteration counts accepted from an imported hash (a huge count would be a denial of service).
_PBKDF2_MAX_ITERATIONS = 10_000_000
_PBKDF2_DIGESTS = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512", "pbkdf2-sha1": "sha1"}


class UnknownHashFormat(ValueError):
    """A stored hash in no format this module verifies (the message never holds the hash)."""


def hash_format(encoded: str) -> str:
    """``argon2id``, ``bcrypt``, ``django-pbkdf2`` or ``passlib-pbkdf2``; :class:`UnknownHashFormat` otherwise."""
    if encoded.startswith("$argon2id$"):
        return "argon2id"
    if encoded.startswith(("$2b$", "$2a$", "$2y$")):
        return "bcrypt"
    if encoded.startswith("pbkdf2_sha256$"):
        return "django-pbkdf2"
    if encoded.startswith(tuple(f"${name}$" for name in _PBKDF2_DIGESTS)):
        return "passlib-pbkdf2"
    raise UnknownHashFormat("unknown password hash format")


def _ab64_decode(text: str) -> bytes:
    # passlib's "adapted base64": '.' instead of '+', no padding.
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _pbkdf2(digest: str, password: str, salt: bytes, iterations: str, expected: bytes) -> bool:
    if not iterations.isdigit() or not 1 <= int(iterations) <= _PBKDF2_MAX_ITERATIONS or not expected:
        raise UnknownHashFormat("malformed PBKDF2 hash")
    computed = hashlib.pbkdf2_hmac(digest, password.encode(), salt, int(iterations), dklen=len(expected))
    return hmac.compare_digest(computed, expected)


class PasswordHasher:
    """argon2id with the configured parameters; verifies imported bcrypt and PBKDF2 hashes too.

    Thread-safe: it holds only its parameters and the decoy hash.
    """

    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=argon2.Type.ID
        )
        # Verified against for unknown logins and users without a password, so that refusing
        # them costs what refusing a wrong password costs (computed once, of a random password).
        self._decoy = self._argon2.hash(secrets.token_urlsafe(24))

    def __repr__(self) -> str:
        p = self._argon2
        return f"PasswordHasher(argon2id, t={p.time_cost}, m={p.memory_cost}, p={p.parallelism})"

    def hash(self, password: str) -> str:
        """A new argon2id hash of *password*."""
        return self._argon2.hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        """Whether *password* matches the stored hash *encoded* (any supported format).

        :class:`UnknownHashFormat` for a hash in no supported format or a malformed one.
        """
        kind = hash_format(encoded)
        if kind == "argon2id":
            return self.argon2_verify(encoded, password)
        if kind == "bcrypt":
            try:
                # bcrypt reads 72 bytes at most; a longer password matches on its prefix, as
                # it did in the system the hash came from. The rehash makes it exact.
                return bcrypt.checkpw(password.encode()[:72], encoded.encode())
            except ValueError:
                raise UnknownHashFormat("malformed bcrypt hash") from None
        try:
            if kind == "django-pbkdf2":
                _, iterations, salt, digest = encoded.split("$")
                return _pbkdf2("sha256", password, salt.encode(), iterations, base64.b64decode(digest, validate=True))
            _, name, iterations, salt, digest = encoded.split("$")
            return _pbkdf2(_PBKDF2_DIGESTS[name], password, _ab64_decode(salt), iterations, _ab64_decode(digest))
        except (ValueError, binascii.Error):
            raise UnknownHashFormat("malformed PBKDF2 hash") from None

    def argon2_verify(self, encoded: str, password: str) -> bool:
        """One argon2 verification: every login that reaches the hasher costs exactly one."""
        try:
            return self._argon2.verify(encoded, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            raise UnknownHashFormat("malformed argon2 hash") from None

    def verify_decoy(self, password: str) -> bool:
        """Verify *password* against the decoy hash: the cost of a refusal for a login that does not exist."""
        self.argon2_verify(self._decoy, password)
        return False

    def needs_update(self, encoded: str) -> bool:
        """Whether *encoded* should be replaced by a new hash: another format, or other argon2 parameters."""
        try:
            return hash_format(encoded) != "argon2id" or self._argon2.check_needs_rehash(encoded)
        except (UnknownHashFormat, InvalidHashError):
            return True
