"""The generated configuration reference matches the models it is generated from, and misses none.

``test_configuration_reference_is_current`` catches a stale file; the tests below catch a
generator that leaves models out: every model nested in a documented one (found here by a
walk of the field annotations of our own, not the generator's) must have a table listing
exactly its keys.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from authcore.config import AuthcoreConfig

ROOT = Path(__file__).resolve().parents[1]
_HEADING = re.compile(r"^## (.+)$")
_ROW_KEY = re.compile(r"^\| `([^`]+)` \|")


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_config_reference", ROOT / "docs/generate_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current(generator: ModuleType) -> None:
    current = (ROOT / "docs/configuration.md").read_text()
    assert generator.render() == current, "run: python docs/generate_config_reference.py"


def _tables(text: str) -> dict[str, list[str]]:
    """Section heading -> the keys in its table's first column, in order."""
    tables: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        if match := _HEADING.match(line):
            heading = match.group(1)
            tables[heading] = []
        elif heading is not None and (match := _ROW_KEY.match(line)):
            tables[heading].append(match.group(1))
    return tables


def _models_in(annotation: object) -> set[type[BaseModel]]:
    """Every model anywhere in an annotation (``X | None``, ``list[X]``, ``dict[str, X]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    return {model for arg in typing.get_args(annotation) for model in _models_in(arg)}


def _keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _nested(
    path: str, model: type[BaseModel], seen: frozenset[type[BaseModel]]
) -> Iterator[tuple[str, type[BaseModel]]]:
    """(key path of the field, model) for every model reachable from *model*'s fields."""
    for name, field in model.model_fields.items():
        for nested in sorted(_models_in(field.annotation), key=lambda m: m.__name__):
            if nested in seen:
                continue
            child = f"{path}.{field.alias or name}".lstrip(".")
            yield child, nested
            yield from _nested(child, nested, seen | {nested})


def _documented_roots(generator: ModuleType) -> list[tuple[str, str, type[BaseModel]]]:
    """(heading prefix, heading suffix, model) of the models the reference starts from."""
    roots: list[tuple[str, str, type[BaseModel]]] = [("", "", AuthcoreConfig)]
    for type_name, module_name, class_name in generator.PROVIDERS:
        # Every provider package is installed in the test environment: an ImportError fails here.
        model = getattr(importlib.import_module(module_name), class_name)
        roots.append(("providers[].config", f" for `type: {type_name}`", model))
    return roots


def missing_tables(generator: ModuleType, text: str) -> list[str]:
    """What *text* lacks: a nested model without a table of exactly its keys, named by key path."""
    tables = _tables(text)
    missing = []
    for prefix, suffix, root in _documented_roots(generator):
        if not any(h.startswith(prefix) and h.endswith(suffix) and keys == _keys(root) for h, keys in tables.items()):
            missing.append(f"{prefix or 'Top level'}{suffix}: {root.__name__}")
        for path, model in _nested(prefix, root, frozenset({root})):
            # The heading is the field's key path, perhaps followed by [] or .<key> (items of a
            # list or dict) and the model's name (a union of models); the table lists every key.
            if not any(
                h.startswith(path) and h.endswith(suffix) and keys == _keys(model) for h, keys in tables.items()
            ):
                missing.append(f"{path}{suffix}: {model.__name__} {_keys(model)}")
    return missing


def test_every_nested_model_has_a_table_of_its_keys(generator: ModuleType) -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    assert missing_tables(generator, text) == []


def test_the_check_sees_a_missing_table_or_key(generator: ModuleType) -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    # A nested provider model's table removed: the check names its key path.
    without_table = re.sub(r"## providers\[\]\.config\.second_factor .*?(?=\n## )", "", text, flags=re.DOTALL)
    assert without_table != text
    assert missing_tables(generator, without_table) == [
        "providers[].config.second_factor for `type: local`: SecondFactorConfig "
        "['required_groups', 'issuer', 'digits', 'period', 'valid_window', 'recovery_codes', 'secret_keys']"
    ]
    # One row of a core section's nested table removed: the table no longer lists every key.
    without_row = re.sub(r"\n\| `create_person_on_missing` \|[^\n]*", "", text)
    assert without_row != text
    assert missing_tables(generator, without_row) == [
        "permissions.ispyb: IspybDatabaseConfig ['url', 'create_person_on_missing']"
    ]


# Models that hold others in every way the generator must see through.
class Leaf(BaseModel):
    """A leaf."""

    #: Documented by a comment above it.
    value: int = 0


class Other(BaseModel):
    """Another leaf."""

    other: str = ""


class Tree(BaseModel):
    """Holds leaves every way a field can."""

    plain: Leaf = Field(default_factory=Leaf)
    optional: Leaf | None = None
    annotated: Annotated[Leaf, Field(description="x")] = Field(default_factory=Leaf)
    many: list[Leaf] = []
    fixed: tuple[Leaf, ...] = ()
    named: dict[str, Leaf] = {}
    named_lists: dict[str, list[Leaf]] = {}
    either: Leaf | Other | None = None
    child: Tree | None = None
    raw: dict[str, Any] = {}
    """Not a model: no table."""


def missing_tables_for(generator: ModuleType, model: type[BaseModel]) -> list[str]:
    """The completeness check run on a reference rendered for *model* alone."""
    text = "\n".join(line for path, m in generator.walk("", model) for line in generator.render_model(path, m))
    tables = _tables(text)
    return [
        path
        for path, nested in _nested("", model, frozenset({model}))
        if not any(h.startswith(path) and keys == _keys(nested) for h, keys in tables.items())
    ]


def test_walk_finds_models_in_every_container(generator: ModuleType) -> None:
    found = [(path, model.__name__) for path, model in generator.walk("root", Tree)]
    assert found == [
        ("root", "Tree"),
        ("root.plain", "Leaf"),
        ("root.optional", "Leaf"),
        ("root.annotated", "Leaf"),
        ("root.many[]", "Leaf"),
        ("root.fixed[]", "Leaf"),
        ("root.named.<key>", "Leaf"),
        ("root.named_lists.<key>[]", "Leaf"),
        ("root.either (Leaf)", "Leaf"),
        ("root.either (Other)", "Other"),
        # ``child`` is a Tree inside a Tree: not walked again, so the walk ends.
    ]
    assert missing_tables_for(generator, Tree) == []


def test_comment_above_a_field_documents_it(generator: ModuleType) -> None:
    rows = generator.render_model("leaf", Leaf)
    assert "| `value` | int | `0` | Documented by a comment above it. |" in rows
