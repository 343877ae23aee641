"""Write docs/configuration.md from the pydantic models (``python docs/generate_config_reference.py``).

The reference is generated so it cannot drift from the code: a test compares the file
with a fresh rendering. The core's sections and every model nested in them are found by
walking the fields from :class:`AuthcoreConfig`; each provider's settings model, and the
models nested in it, are rendered for the provider packages installed in the running
environment, in the order given below.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from authcore.config import AuthcoreConfig
from authcore.durations import parse_duration

OUTPUT = Path(__file__).with_name("configuration.md")
#: Provider packages documented when installed: (type, module, class).
PROVIDERS = [
    ("dummy", "auth_dummy", "DummyConfig"),
    ("noauth", "auth_noauth", "NoAuthConfig"),
    ("ldap", "auth_ldap", "LdapConfig"),
    ("keycloak", "auth_keycloak", "KeycloakConfig"),
    ("oidc", "auth_oidc", "OIDCConfig"),
    ("local", "auth_local", "LocalConfig"),
    ("lowball", "lowball_authcore", "LowballConfig"),
]
#: Containers whose items a nested model may be: the key path gains ``[]`` for them.
_SEQUENCES = (list, tuple, set, frozenset)


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


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "`{}`" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default!r}`"


def _is_model(annotation: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def nested_models(annotation: object, suffix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """The models a field of this annotation holds, each with what its items add to the key path.

    ``Model`` and ``Model | None`` add nothing, ``list[Model]`` (or a tuple, a set) adds ``[]``
    and ``dict[str, Model]`` adds ``.<key>``; these combine (``dict[str, list[Model]]``).
    """
    if _is_model(annotation):
        return [(suffix, annotation)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return nested_models(args[0], suffix)
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in nested_models(arg, suffix)]
    if isinstance(origin, type) and issubclass(origin, _SEQUENCES):
        return [found for arg in args if arg is not Ellipsis for found in nested_models(arg, f"{suffix}[]")]
    if isinstance(origin, type) and issubclass(origin, dict) and len(args) == 2:
        return nested_models(args[1], f"{suffix}.<key>")
    return []


def walk(
    path: str, model: type[BaseModel], ancestors: tuple[type[BaseModel], ...] = ()
) -> Iterator[tuple[str, type[BaseModel]]]:
    """*model* at *path*, then every model nested in its fields, depth first in declaration order.

    No rows are written by hand: a new nested model gets its table by being declared. A model
    met again inside itself (a tree of nodes) is not walked again: its table is already there.
    """
    yield path, model
    for name, field in model.model_fields.items():
        found = nested_models(field.annotation)
        # A union of several models gives each its own table: the model's name tells them apart.
        several = len({nested for _, nested in found}) > 1
        for suffix, nested in found:
            if nested in (*ancestors, model):
                continue
            child = f"{path}.{field.alias or name}{suffix}".lstrip(".")
            if several:
                child += f" ({nested.__name__})"
            yield from walk(child, nested, (*ancestors, model))


def _comment_docs(source: str, body: list[ast.stmt]) -> dict[str, str]:
    """Field name -> the ``#:`` comment lines right above it (Sphinx's convention)."""
    lines = source.splitlines()
    docs: dict[str, str] = {}
    for statement in body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        above: list[str] = []
        index = statement.lineno - 2  # lineno is 1-based; the line before the field
        while index >= 0 and lines[index].strip().startswith("#:"):
            above.insert(0, lines[index].strip()[2:].strip())
            index -= 1
        if above:
            docs[statement.target.id] = " ".join(above)
    return docs


def attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring written under it (or ``#:`` comment above it), for the model and its bases.

    Read from the source here rather than by pydantic's ``use_attribute_docstrings``,
    which parses source at import time and would slow every ``import authcore``.
    """
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        docs.update(_comment_docs(source, body))
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


def _summary(model: type[BaseModel]) -> str:
    """The first paragraph of the model's docstring, on one line."""
    paragraph = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0]
    return " ".join(paragraph.split()).replace("``", "`")


def render_model(title: str, model: type[BaseModel]) -> list[str]:
    """One markdown section with a table of the model's keys."""
    summary = _summary(model)
    lines = [f"## {title}", "", *([summary, ""] if summary else [])]
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


def documented_models() -> list[tuple[str, type[BaseModel]]]:
    """Every section of the reference: (title, model), in the order they are rendered."""
    sections = [(path or "Top level", model) for path, model in walk("", AuthcoreConfig)]
    for type_name, module_name, class_name in PROVIDERS:
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for path, model in walk("providers[].config", getattr(module, class_name)):
            sections.append((f"{path} for `type: {type_name}`", model))
    return sections


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
    for title, model in documented_models():
        lines += render_model(title, model)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
