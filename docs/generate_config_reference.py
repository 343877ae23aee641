"""Write docs/configuration.md from the pydantic models (``python docs/generate_config_reference.py``).

The reference is generated so it cannot drift from the code: a test compares the file
with a fresh rendering. Provider sections are rendered for the provider packages
installed in the running environment, in the order given below.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import sys
import textwrap
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from authcore.config import AuthcoreConfig, PermissionsConfig, ProviderEntry, SessionConfig, TokenConfig
from authcore.config.web import CookieConfig, CorsConfig, ThrottleConfig, WebConfig
from authcore.durations import parse_duration

OUTPUT = Path(__file__).with_name("configuration.md")
SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("Top level", AuthcoreConfig),
    ("tokens", TokenConfig),
    ("sessions", SessionConfig),
    ("providers[]", ProviderEntry),
    ("permissions", PermissionsConfig),
    ("web", WebConfig),
    ("web.cookies", CookieConfig),
    ("web.cors", CorsConfig),
    ("web.throttle", ThrottleConfig),
]
#: Provider packages documented when installed: (type, module, class).
PROVIDERS = [
    ("dummy", "auth_dummy", "DummyConfig"),
    ("noauth", "auth_noauth", "NoAuthConfig"),
    ("ldap", "auth_ldap", "LdapConfig"),
    ("keycloak", "auth_keycloak", "KeycloakConfig"),
    ("oidc", "auth_oidc", "OIDCConfig"),
    ("local", "auth_local", "LocalConfig"),
]


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: typing.Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "`{}`" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default!r}`"


def attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring written under it, for the model and its bases.

    Read from the source here rather than by pydantic's ``use_attribute_docstrings``,
    which parses source at import time and would slow every ``import authcore``.
    """
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for field, following in itertools.pairwise(body):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[field.target.id] = following.value.value
    return docs


def render_model(title: str, model: type[BaseModel]) -> list[str]:
    """One markdown section with a table of the model's keys."""
    summary = (model.__doc__ or "").strip().splitlines()[0].replace("``", "`")
    lines = [f"## {title}", "", summary, ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    docs = attribute_docstrings(model)
    for name, field in model.model_fields.items():
        key = field.alias or name
        description = " ".join((field.description or docs.get(name, "")).split()).replace("``", "`")
        is_duration = any(getattr(m, "func", None) is parse_duration for m in field.metadata)
        kind = "duration" if is_duration else _type_name(field.annotation)
        cells = [f"`{key}`", kind, _default(field), description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return [*lines, ""]


def render() -> str:
    """The whole reference."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models by `docs/generate_config_reference.py`; do not edit by hand.",
        "Durations are seconds or strings such as `90s`, `15m`, `8h`, `1d`. String values may use `${VAR}`",
        "and `${VAR:-default}` (environment variables) in files; `$$` is a literal `$`. What only looks like",
        "a placeholder is an error, never literal text: `$VAR` (an upper-case name, or any name as the whole",
        "value), `$(command)`, and whole values such as `%VAR%` or `{{ var }}`; write `${VAR}`, or `$$`.",
        "Other `$` stay as written (`pa$word`, password hashes). Configuration given as a dict from code is",
        "not interpolated, and a whole value that is a placeholder is an error there too.",
        "",
        "A manager refuses to start without an enabled provider (`providers: []`, or a py-ispyb `AUTH:`",
        "list whose entries are all `ENABLED: false`). With `production: true` it refuses a missing or weak",
        "`tokens.secret` (under 32 bytes, well known or trivial), development providers and TLS verification",
        "switched off; in development it logs each of these once, naming the setting and never its value.",
        "A configuration file that holds a secret written in it (not taken from `${VAR}`), and a private key",
        "file, get a warning when other users may read them (`permissions 0644 for 'auth.yml' are too open`).",
        "",
    ]
    for title, model in SECTIONS:
        lines += render_model(title, model)
    for type_name, module_name, class_name in PROVIDERS:
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        lines += render_model(f"providers[].config for `type: {type_name}`", getattr(module, class_name))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
