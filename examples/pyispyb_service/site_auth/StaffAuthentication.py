"""A site plugin written the py-ispyb way: authcore loads it unchanged through AUTH_MODULE/AUTH_CLASS.

Staff passwords are PBKDF2-SHA256 hashes in ``CONFIG: USERS`` (``pbkdf2_sha256$<iterations>$<salt>$<hex>``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from ispyb import models

from authcore.compat.pyispyb import AbstractAuthentication

logger = logging.getLogger(__name__)


class StaffAuthentication(AbstractAuthentication):
    """Staff accounts of the site, checked against salted password hashes."""

    config_export = ["SITE_NAME"]

    def configure(self, config: dict[str, Any]) -> None:
        self._users: dict[str, str] = dict(config.get("USERS") or {})

    def authenticate_by_login(self, login: str, password: str) -> models.Person | None:
        stored = self._users.get(login)
        if stored is None:
            return None
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            logger.warning("unknown password scheme for a staff account")
            return None
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
        if not hmac.compare_digest(digest.hex(), expected):
            return None
        return models.Person(login=login, givenName="Staff", familyName=login.title())
