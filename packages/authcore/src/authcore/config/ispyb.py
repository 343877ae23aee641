"""py-ispyb's ``auth.yml`` shapes (``AUTH:`` entries with ``ENABLED``, ``AUTH_MODULE``, ``AUTH_CLASS``,
``CONFIG``) and MXCuBE's ``sso:`` section (:mod:`.mxcube`) translated onto authcore's ``providers:``,
remembering where each part came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from . import mxcube
from .source import ConfigSource, KeyPath, _unknown_key

#: py-ispyb ``AUTH_CLASS`` names (with an empty or ``pyispyb.`` ``AUTH_MODULE``) → authcore provider type.
PYISPYB_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "DummyAuthentication": "dummy",
        "LdapAuthentication": "ldap",
        "KeycloakAuthentication": "keycloak",
        "KeycloakDBGroupsAuthentication": "keycloak",
    }
)

_PYISPYB_KEYS = ("ENABLED", "AUTH_MODULE", "AUTH_CLASS", "CONFIG")
_SECTIONS = ("production", "tokens", "sessions", "providers", "permissions")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class Translate:
    """Maps the raw configuration onto authcore's schema, remembering where each part came from."""

    def __init__(self, source: ConfigSource) -> None:
        self.source = source
        self.aliases: dict[KeyPath, KeyPath] = {}

    def document(self, data: Any) -> dict[str, Any]:
        if isinstance(data, list):
            self.aliases[("providers",)] = ()
            return {"providers": self.auth(data, ())}
        if not isinstance(data, dict):
            raise self.source.error(
                (),
                f"the configuration must be a mapping of sections (production, tokens, sessions, providers, "
                f"permissions) or a py-ispyb AUTH list, not {_kind(data)}",
            )
        result = {key: value for key, value in data.items() if not (key in _SECTIONS and value is None)}
        if "AUTH" in result:
            if "providers" in data:
                raise self.source.error(
                    ("AUTH",), "both 'AUTH' (py-ispyb) and 'providers' (authcore) are given: use one of them"
                )
            self.aliases[("providers",)] = ("AUTH",)
            result["providers"] = self.auth(result.pop("AUTH"), ("AUTH",))
        elif isinstance(result.get("providers"), list):
            result["providers"] = [
                {**entry, "config": {}} if isinstance(entry, dict) and entry.get("config", {}) is None else entry
                for entry in result["providers"]
            ]
        if mxcube.is_mxcube(result):
            for section in mxcube.MXCUBE_SECTIONS:
                result.pop(section, None)
            providers = result.get("providers")
            if providers is None:
                providers = result["providers"] = []
            if isinstance(providers, list):
                providers.append(mxcube.sso_provider(self.source, result.pop("sso"), len(providers), self.aliases))
        return result

    def auth(self, auth: Any, base: KeyPath) -> list[dict[str, Any]]:
        if auth is None:
            return []
        if isinstance(auth, dict):
            return [self.entry(None, auth, base, 0)]
        if not isinstance(auth, list):
            raise self.source.error(base, f"AUTH must be a list of '- <name>: {{...}}' entries, not {_kind(auth)}")
        entries: list[dict[str, Any]] = []
        for index, item in enumerate(auth):
            if not isinstance(item, dict) or not item:
                raise self.source.error(
                    (*base, index),
                    "an AUTH entry is a mapping '- <name>: {ENABLED: ..., AUTH_MODULE: ..., AUTH_CLASS: ..., "
                    f"CONFIG: ...}}', not {_kind(item)}",
                )
            for name, body in item.items():
                entries.append(self.entry(name, body, (*base, index, name), len(entries)))
        return entries

    def entry(self, name: str | None, body: Any, origin: KeyPath, index: int) -> dict[str, Any]:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.source.error(
                origin, f"an AUTH entry holds ENABLED, AUTH_MODULE, AUTH_CLASS and CONFIG, not {_kind(body)}"
            )
        for key in body:
            if key not in _PYISPYB_KEYS:
                raise self.source.error(
                    (*origin, key), _unknown_key(key, _PYISPYB_KEYS) + " (in a py-ispyb AUTH entry)"
                )
        module = self.text(body, "AUTH_MODULE", origin)
        class_name = self.text(body, "AUTH_CLASS", origin)
        result: dict[str, Any] = {}
        here = ("providers", index)
        if not class_name:
            if module:
                raise self.source.error((*origin, "AUTH_MODULE"), "AUTH_MODULE is given without AUTH_CLASS")
            if name is None:
                raise self.source.error(origin, "AUTH needs AUTH_CLASS (the provider's name is taken from it)")
        elif not module or module == "pyispyb" or module.startswith("pyispyb."):
            kind = PYISPYB_CLASSES.get(class_name)
            if kind is None:
                known = ", ".join(sorted(PYISPYB_CLASSES))
                raise self.source.error(
                    (*origin, "AUTH_CLASS"),
                    f"unknown py-ispyb AUTH_CLASS {class_name!r}: known are {known} "
                    "(for a class of your own, give its module in AUTH_MODULE)",
                )
            result["type"] = kind
        else:
            if not _MODULE.fullmatch(module):
                raise self.source.error((*origin, "AUTH_MODULE"), "AUTH_MODULE must be a dotted module name")
            if not _IDENTIFIER.fullmatch(class_name):
                raise self.source.error((*origin, "AUTH_CLASS"), "AUTH_CLASS must be a class name")
            result["class"] = f"{module}:{class_name}"
        result["name"] = name if name is not None else result.get("type", class_name)
        if body.get("ENABLED") is not None:
            result["enabled"] = body["ENABLED"]
        config = body.get("CONFIG")
        result["config"] = {} if config is None else config
        # Every field of the entry maps to what the file says (or to the entry itself), so that a
        # message never names a key the file does not have.
        self.aliases[here] = origin
        for field, key in (("name", ""), ("type", "AUTH_CLASS"), ("class", "AUTH_CLASS"), ("enabled", "ENABLED")):
            self.aliases[(*here, field)] = (*origin, key) if key in body else origin
        self.aliases[(*here, "config")] = (*origin, "CONFIG") if "CONFIG" in body else origin
        return result

    def text(self, body: dict[str, Any], key: str, origin: KeyPath) -> str:
        value = body.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.source.error((*origin, key), f"{key} must be a string, not {_kind(value)}")
        return value.strip()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict | Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
