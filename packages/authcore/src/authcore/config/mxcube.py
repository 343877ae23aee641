"""MXCuBE's ``server.yaml`` shape: its ``sso:`` section becomes an ``oidc`` provider.

MXCuBE configures single sign-on with upper-case keys (``USE_SSO``, ``ISSUER``,
``LOGOUT_URI``, ``TOKEN_INFO_URI``, ``CLIENT_SECRET``, ``CLIENT_ID``, ``SCOPE``,
``CODE_CHALLANGE_METHOD``, spelled as MXCuBE spells it). The section is read as written: it
becomes the provider ``sso`` of type ``oidc`` (the ``auth-oidc`` distribution), enabled by
``USE_SSO``; the other keys are that provider's ``config:``, which accepts MXCuBE's names and
takes an empty string as "not set". MXCuBE's own sections of the same file (``server:``,
``mxcube:``) are not authcore's and are left to MXCuBE; authcore sections (``web:``,
``tokens:``, ``providers:``, ...) may sit beside them.
"""

from __future__ import annotations

from typing import Any

from .source import ConfigSource, KeyPath

__all__ = ["MXCUBE_SECTIONS", "SSO_PROVIDER", "is_mxcube", "sso_provider"]

#: Sections of MXCuBE's server.yaml that belong to MXCuBE, not to authcore.
MXCUBE_SECTIONS = ("server", "mxcube")
#: The name of the provider the ``sso:`` section becomes.
SSO_PROVIDER = "sso"


def is_mxcube(data: dict[str, Any]) -> bool:
    """Whether *data* is MXCuBE's server.yaml shape (it has an ``sso:`` section)."""
    return "sso" in data


def sso_provider(source: ConfigSource, section: Any, index: int, aliases: dict[KeyPath, KeyPath]) -> dict[str, Any]:
    """The provider entry of MXCuBE's ``sso:`` *section*, placed at ``providers[index]``; records
    in *aliases* where its parts came from, so an error names the file's own keys."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise source.error(("sso",), "the 'sso' section is a mapping of USE_SSO, ISSUER, CLIENT_ID, ... (MXCuBE)")
    use_sso = section.get("USE_SSO", False)
    if not isinstance(use_sso, bool):
        raise source.error(("sso", "USE_SSO"), "USE_SSO must be true or false")
    here = ("providers", index)
    aliases[here] = ("sso",)
    aliases[(*here, "name")] = ("sso",)
    aliases[(*here, "type")] = ("sso",)
    aliases[(*here, "enabled")] = ("sso", "USE_SSO") if "USE_SSO" in section else ("sso",)
    aliases[(*here, "config")] = ("sso",)
    config = {key: value for key, value in section.items() if key != "USE_SSO"}
    return {"name": SSO_PROVIDER, "type": "oidc", "enabled": use_sso, "config": config}
