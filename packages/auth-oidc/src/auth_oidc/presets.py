"""Presets: how known issuers name their claims, as data.

A preset is one row of :data:`PRESETS`. :func:`resolve` merges the row with the
configuration: a field the configuration *sets* (``model_fields_set``: written in the YAML,
even to its default value) wins, every other field takes the preset's value. The ``notes``
of each row are what the documentation says about that issuer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from .config import OIDCConfig

__all__ = ["Preset", "PRESETS", "ClaimRules", "resolve"]

ClientCheck = Literal["aud", "azp", "either", "both"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One known issuer: the values it gives to the overridable fields of :class:`OIDCConfig`."""

    name: str
    #: One line for the documentation: what to know about this issuer.
    notes: str
    login_claim: tuple[str, ...] = ("preferred_username",)
    groups_claim: tuple[str, ...] = ("groups",)
    roles_claim: tuple[str, ...] = ()
    strip_group_path: bool = False
    ignored_roles: tuple[str, ...] = ()
    client_check: ClientCheck = "either"
    #: ``None``: the client id (the field's own default).
    audience: tuple[str, ...] | None = None


#: The presets by name. Adding an issuer is adding a row.
PRESETS: Final[Mapping[str, Preset]] = MappingProxyType(
    {
        row.name: row
        for row in (
            Preset("generic", "Any OpenID Connect issuer: login from preferred_username, groups from groups."),
            Preset(
                "keycloak",
                "Keycloak: issuer https://host/realms/<realm>; realm and client roles, groups from the "
                "group-membership mapper with their paths stripped.",
                roles_claim=("realm_access.roles", "resource_access.{client_id}.roles"),
                strip_group_path=True,
                ignored_roles=("offline_access", "uma_authorization", "default-roles-*"),
            ),
            Preset(
                "entra",
                "Microsoft Entra ID: use the tenant-specific v2.0 issuer "
                "(https://login.microsoftonline.com/<tenant>/v2.0); groups are object ids, app roles come in roles.",
                login_claim=("preferred_username", "upn", "email"),
                roles_claim=("roles",),
            ),
            Preset(
                "google",
                "Google: login by e-mail, no groups. Its access tokens are opaque and cannot be introspected: "
                "single sign-on works, Google access tokens are not accepted as bearer tokens.",
                login_claim=("email",),
                groups_claim=(),
            ),
            Preset(
                "gitlab",
                "GitLab: login from nickname; all groups from userinfo (groups), the direct ones in the ID token "
                "(groups_direct).",
                login_claim=("nickname", "preferred_username"),
                groups_claim=("groups", "groups_direct"),
            ),
            Preset(
                "authentik",
                "authentik: issuer https://host/application/o/<slug>/; groups come with the profile scope.",
            ),
            Preset(
                "okta",
                "Okta: groups need a custom groups claim; access tokens of the default authorization server "
                "have aud api://default and name the client in cid, so bearer tokens are checked by audience.",
                client_check="aud",
                audience=("api://default",),
            ),
        )
    }
)


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The effective claim mapping and client checks: the preset, overridden by what the configuration set."""

    preset: str
    login_claim: tuple[str, ...]
    groups_claim: tuple[str, ...]
    roles_claim: tuple[str, ...]
    strip_group_path: bool
    ignored_roles: tuple[str, ...]
    client_check: ClientCheck
    audience: tuple[str, ...]


_OVERRIDABLE: Final = (
    "login_claim",
    "groups_claim",
    "roles_claim",
    "strip_group_path",
    "ignored_roles",
    "client_check",
)


def resolve(config: OIDCConfig) -> ClaimRules:
    """The rules *config* asks for: its preset's values, each replaced by the configuration's when it set one.

    ``{client_id}`` in claim paths is replaced by the client id.
    """
    preset = PRESETS[config.preset]
    chosen = config.model_fields_set
    values = {name: getattr(config if name in chosen else preset, name) for name in _OVERRIDABLE}
    if "audience" in chosen and config.audience:
        audience = config.audience
    else:
        audience = preset.audience or (config.client_id,)

    def fill(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(path.replace("{client_id}", config.client_id) for path in paths)

    return ClaimRules(
        preset=preset.name,
        login_claim=values["login_claim"],
        groups_claim=fill(values["groups_claim"]),
        roles_claim=fill(values["roles_claim"]),
        strip_group_path=values["strip_group_path"],
        ignored_roles=values["ignored_roles"],
        client_check=values["client_check"],
        audience=audience,
    )
