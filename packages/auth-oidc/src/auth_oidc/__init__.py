"""auth-oidc: any OpenID Connect issuer for authcore.

Single sign-on (authorization code with PKCE S256, state and nonce), offline checks of JWT
access tokens against the issuer's published keys, RFC 7662 introspection of opaque tokens,
refresh and RP-initiated logout, with claim mapping and presets for common issuers.
Importing this package does not import httpx; the first call to the issuer does.
``auth_oidc.testing`` starts panva's ``oidc-provider`` (an OpenID-Certified server, from npm)
for tests.
"""

from __future__ import annotations

from collections.abc import Callable

from authcore import Provider, hookimpl

from .config import OIDCConfig
from .presets import PRESETS, Preset
from .provider import OIDCProvider

__all__ = ["OIDCProvider", "OIDCConfig", "PRESETS", "Preset"]
__version__ = "0.1.0"


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`OIDCProvider` as type ``oidc``."""
    register(OIDCProvider)
