"""TOTP secrets sealed at rest, recovery codes hashed with a key: both under ``secret_keys``.

Whoever reads the user database should not read the second factor with it. With
``second_factor.secret_keys`` configured, a new enrolment's secret is stored sealed:
``v1:<key id>:<base64url(nonce | ciphertext)>``, encrypted with the first key and bound to its
user (the user's id is the associated data, so a sealed secret copied to another row does not
open). Any configured key opens what it sealed, found by its id (8 hex digits of a hash of the
derived key, which says nothing about the key). A secret stored before keys were configured,
or under a key that is no longer first, is sealed anew with the first key the next time its
user's code is accepted (:meth:`SecretBox.fresh`), so rotating means putting the new key in front
and dropping the old one once its secrets have moved on (or their users enrolled again).

Without keys, secrets are stored as they are, as before. A stored secret that names no
configured key, or fails to open, is the provider's outage (:class:`~authcore.ProviderUnavailable`,
a 503: a key was dropped too early or the row was tampered with), logged without the secret.

Recovery codes are stored as digests. With keys, a new code's digest is HMAC-SHA256 under a key
derived from the first (another HKDF label than the sealing key's), so whoever reads the table
cannot search a code's 2^50 values offline; without, the plain SHA-256 of earlier versions. A
code is looked for under every digest it may have been stored with (:meth:`SecretBox.digests`):
each listed key's, and the plain one of codes made before keys were configured, which stay
searchable offline until their user enrols again (a spent code cannot be hashed anew).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from authcore import ProviderUnavailable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SecretBox", "SEALED_PREFIX"]

log = logging.getLogger("auth_local")

#: How a sealed secret starts (a base32 secret never holds ``:``).
SEALED_PREFIX: Final = "v1:"
_NONCE_BYTES: Final = 12
_KEY_ID_DIGITS: Final = 8
#: A sealed TOTP secret is well under this; a longer stored value is refused unread.
_MAX_SEALED: Final = 512
#: HKDF labels: the key that seals TOTP secrets and the one that hashes recovery codes differ.
_SECRETS_LABEL: Final = b"auth-local totp secrets v1"
_CODES_LABEL: Final = b"auth-local recovery codes v1"


class SecretBox:
    """Seals and opens one provider's TOTP secrets with its ``secret_keys`` (newest first)."""

    def __init__(self, provider: str, keys: Sequence[str]) -> None:
        self._provider = provider
        self._ciphers: dict[str, AESGCM] = {}
        self._first: str | None = None
        #: The recovery codes' HMAC keys, newest first.
        self._code_keys = [_derived(text, _CODES_LABEL) for text in keys]
        for text in keys:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only where keys are configured

            key = _derived(text, _SECRETS_LABEL)
            key_id = hashlib.sha256(b"auth-local key id\0" + key).hexdigest()[:_KEY_ID_DIGITS]
            self._ciphers.setdefault(key_id, AESGCM(key))
            if self._first is None:
                self._first = key_id

    def __repr__(self) -> str:
        return f"SecretBox({self._provider!r}, keys={len(self._ciphers)})"

    def seal(self, secret: str, *, user_id: int) -> str:
        """*secret* as it is stored: sealed with the first key, or as it is without keys."""
        if self._first is None:
            return secret
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._first].encrypt(nonce, secret.encode("ascii"), _bound(user_id))
        return f"{SEALED_PREFIX}{self._first}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, stored: str, *, user_id: int) -> str:
        """The secret *stored* holds for *user_id* (a value stored unsealed is returned as it is)."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        from cryptography.exceptions import InvalidTag

        if len(stored) > _MAX_SEALED:
            raise self._unreadable(user_id, "is longer than any sealed secret")
        key_id, _, payload = stored[len(SEALED_PREFIX) :].partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise self._unreadable(user_id, "is sealed with a key that is not configured")
        try:
            raw = base64.urlsafe_b64decode(payload.encode("ascii"))
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound(user_id)).decode("ascii")
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            raise self._unreadable(user_id, "does not open with its key") from None

    def fresh(self, stored: str) -> bool:
        """Whether *stored* is as :meth:`seal` would store it now (else seal it again when convenient)."""
        if self._first is None:
            return True
        return stored.startswith(f"{SEALED_PREFIX}{self._first}:")

    def digest(self, user_id: int, code: str) -> str:
        """How the normalised recovery *code* of *user_id* is stored (hex: HMAC under the first key,
        or the plain SHA-256 without keys)."""
        return self.digests(user_id, code)[0]

    def digests(self, user_id: int, code: str) -> list[str]:
        """Every digest the recovery *code* may be stored with, :meth:`digest`'s first."""
        message = f"{user_id}:{code}".encode()
        keyed = [hmac.new(key, message, hashlib.sha256).hexdigest() for key in self._code_keys]
        return [*keyed, hashlib.sha256(message).hexdigest()]

    def _unreadable(self, user_id: int, why: str) -> ProviderUnavailable:
        log.error(
            "provider %r: the TOTP secret of user #%d %s (second_factor.secret_keys)", self._provider, user_id, why
        )
        return ProviderUnavailable(f"provider {self._provider!r}: a second factor cannot be read")


def _derived(text: str, label: bytes) -> bytes:
    """The 256-bit key of a configured key text for one use (HKDF-SHA256: any long random text will do)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(text.encode("utf-8"))


def _bound(user_id: int) -> bytes:
    return f"auth-local totp secret of user {user_id}".encode("ascii")
