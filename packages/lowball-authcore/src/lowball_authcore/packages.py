"""Building a lowball package (``AuthPackage``, ``CreateClientPackage``, …) from authcore's models.

lowball maps the top-level keys of a JSON body onto a package class's ``__init__``, and
each provider names those parameters as it likes (``username`` or ``client_id``,
``first_name`` or ``given_name``). Here the parameters are read from the signature
once, and an authcore field goes to the first parameter of its list of usual names.
Nothing in this module imports lowball.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from authcore.errors import BadRequest

__all__ = ["Signature", "FIELD_NAMES", "package_kwargs"]

#: authcore field → the parameter names a lowball package may use for it, most usual first.
FIELD_NAMES: Mapping[str, tuple[str, ...]] = {
    "login": ("username", "client_id", "login", "user", "user_name", "uid"),
    "password": ("password", "passwd", "secret", "pass_word"),
    "token": ("token", "access_token", "api_key"),
    "given_name": ("given_name", "first_name", "givenName", "firstname"),
    "family_name": ("family_name", "last_name", "familyName", "surname", "lastname"),
    "email": ("email", "mail", "email_address", "emailAddress"),
    "display_name": ("display_name", "name", "full_name", "displayName"),
    "roles": ("roles", "groups"),
    "enabled": ("enabled", "active"),
}


@dataclass(frozen=True)
class Signature:
    """The keyword parameters a package class's ``__init__`` takes."""

    names: frozenset[str]
    #: Whether it takes ``**kwargs`` (lowball's base packages do, and drop them; subclasses pass them up).
    open: bool

    @classmethod
    def of(cls, package_class: type[Any]) -> Signature:
        """Read the signature of *package_class* (its ``__init__``)."""
        try:
            parameters = inspect.signature(package_class).parameters.values()
        except (TypeError, ValueError):  # a builtin or C type: nothing to learn, take anything
            return cls(frozenset(), True)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names = frozenset(p.name for p in parameters if p.kind in kinds)
        return cls(names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters))

    def find(self, field: str, override: str | None = None) -> str | None:
        """The parameter that takes authcore's *field* (*override* when configured), or ``None``."""
        if override is not None:
            return override if override in self.names or (self.open and not self.names) else None
        return next((name for name in FIELD_NAMES.get(field, (field,)) if name in self.names), None)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return list(value)  # lowball's ClientData insists on lists
    return value


def package_kwargs(
    model: BaseModel,
    signature: Signature,
    *,
    overrides: Mapping[str, str] | None = None,
    provider: str = "lowball",
) -> dict[str, Any]:
    """The keyword arguments for a lowball package from an authcore *model* (``NewUser``, ``UserUpdate``…).

    Only fields the caller set, or that differ from their default, are passed. A field the
    package has no parameter for raises :class:`~authcore.errors.BadRequest` naming the field
    (never its value): silently dropping a change would report success for nothing.
    ``attributes`` are spread as keyword arguments of their own.
    """
    overrides = overrides or {}
    values = {name: getattr(model, name) for name in model.model_fields_set}
    for name, info in type(model).model_fields.items():
        default = info.get_default(call_default_factory=True)
        if name not in values and getattr(model, name) != default:
            values[name] = getattr(model, name)
    attributes = values.pop("attributes", None) or {}
    kwargs: dict[str, Any] = {}
    refused: list[str] = []
    for name, value in [*values.items(), *attributes.items()]:
        if value is None:
            continue
        # lowball's base packages take **kwargs and drop them, so a named parameter is needed
        # unless the package names none at all (it then reads its **kwargs itself).
        target = signature.find(name, overrides.get(name)) or (name if signature.open and not signature.names else None)
        if target is None:
            refused.append(name)
        else:
            kwargs[target] = _plain(value)
    if refused:
        raise BadRequest(f"provider {provider!r} takes no {', '.join(sorted(refused))}")
    return kwargs
