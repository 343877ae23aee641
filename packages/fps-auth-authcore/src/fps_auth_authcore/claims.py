"""An authcore plugin that puts the identity's display name in the access token (claim ``name``).

Jupyverse shows a name for every collaborator; authcore's tokens carry the login and the
permissions only. The provider knows the name at login (LDAP ``displayName``/``cn``, the OIDC
``name`` claim), so it is added to the token then, through the public
``authcore_token_claims`` hook, and read back from every verified request without a lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authcore import Identity, hookimpl

__all__ = ["DisplayNameClaim"]

#: Names longer than this are cut: a token travels in every request's cookie.
MAX_NAME_LENGTH = 128


class DisplayNameClaim:
    """``authcore_token_claims``: ``{"name": display name}``, or the given and family names."""

    @hookimpl
    def authcore_token_claims(self, identity: Identity) -> Mapping[str, Any] | None:
        """The identity's display name as the ``name`` claim, when the provider gave one."""
        name = identity.display_name or " ".join(n for n in (identity.given_name, identity.family_name) if n)
        return {"name": name[:MAX_NAME_LENGTH]} if name else None
