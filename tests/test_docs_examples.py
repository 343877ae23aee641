"""Every example a reader may copy from the docs and READMEs is checked, whatever page it is on.

* Every YAML, JSON and TOML block parses.
* Every YAML block made of authcore's configuration sections (or py-ispyb's ``AUTH:``) validates,
  each provider's ``config`` against its own settings model: a block that is a fragment of the
  page's first full configuration (a ``tokens:`` step, say) is validated merged onto it, and a
  ``config:`` block (more settings of the page's provider) merged onto its first provider. The
  ``${VAR}`` a block names are set, as its reader would set them.
* Every Python block compiles, and every name it imports from our packages exists there.
* Every ``authcore ...`` command line (in a shell block, a unit file's ``ExecStart``, a compose
  file's ``command`` or inline code) names commands and flags the command line has (read from
  its parser, ``authcore.cli.build_parser``).

Blocks in other formats (a compose file, lowball's or MXCuBE's own configuration) are left to the
tests of their pages (tests/test_deploy.py, tests/test_migration_docs.py).
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from authcore.config import AuthcoreConfig, parse_config
from authcore.errors import ConfigError
from authcore.plugins import ProviderRegistry, create_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [
        *ROOT.glob("docs/*.md"),
        ROOT / "README.md",
        *ROOT.glob("packages/*/README.md"),
        *ROOT.glob("examples/*/README.md"),
    ]
)
#: Top-level keys that make a YAML block authcore's configuration.
CONFIG_KEYS = set(AuthcoreConfig.model_fields) | {"AUTH"}
#: The packages whose names a Python block may import (ours).
OURS = re.compile(r"(authcore|auth_[a-z]+|lowball_authcore|fps_auth_authcore|jupyverse_authcore)(\.|$)")


class Block(NamedTuple):
    page: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(language: str) -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.M | re.S):
            found.append(Block(page, text.count("\n", 0, match.start()) + 1, textwrap.dedent(match.group(2))))
    return found


YAML_BLOCKS = _blocks("ya?ml")
PYTHON_BLOCKS = _blocks("python")


def test_the_pages_have_examples_to_check() -> None:
    assert len(YAML_BLOCKS) >= 15 and len(PYTHON_BLOCKS) >= 8
    assert sum(_is_config(_loaded(block)) for block in YAML_BLOCKS) >= 10
    assert sum(_is_provider_fragment(_loaded(block)) for block in YAML_BLOCKS) >= 2


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=str)
def test_every_yaml_block_parses(block: Block) -> None:
    try:
        yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        raise AssertionError(f"{block}: not YAML a reader can use: {exc}") from None


def _is_config(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and set(data) <= CONFIG_KEYS


def _loaded(block: Block) -> Any:
    """The block's YAML, or ``None`` where it does not parse (test_every_yaml_block_parses says so)."""
    try:
        return yaml.safe_load(block.text)
    except yaml.YAMLError:
        return None


def _environ(text: str) -> dict[str, str]:
    """Each ``${VAR}`` the text names, set to a value long enough for any secret's check."""
    return dict.fromkeys(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text), "an-example-value-" + "x" * 40)


def _merged(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in fragment.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


def _page_base(page: Path) -> tuple[dict[str, Any], str] | None:
    """The first block of *page* that validates on its own, and its text."""
    for block in YAML_BLOCKS:
        if block.page == page:
            data = _loaded(block)
            if _is_config(data):
                try:
                    parse_config(data, environ=_environ(block.text))
                except ConfigError:  # a fragment itself: not a base
                    continue
                return data, block.text
    return None


REGISTRY = ProviderRegistry(create_plugin_manager())


@pytest.mark.parametrize("block", [b for b in YAML_BLOCKS if _is_config(_loaded(b))], ids=str)
def test_every_configuration_block_validates(block: Block) -> None:
    data = yaml.safe_load(block.text)
    try:
        config = parse_config(data, environ=_environ(block.text))
    except ConfigError:
        base = _page_base(block.page)
        if base is None or base[1] == block.text:
            raise
        config = parse_config(_merged(base[0], data), environ=_environ(base[1] + block.text))
    for entry in config.providers:
        if entry.type is not None:
            REGISTRY.get(entry.type).Config.model_validate(entry.config)


def _is_provider_fragment(data: Any) -> bool:
    return isinstance(data, dict) and set(data) == {"config"} and isinstance(data["config"], dict)


@pytest.mark.parametrize("block", [b for b in YAML_BLOCKS if _is_provider_fragment(_loaded(b))], ids=str)
def test_every_provider_settings_fragment_validates(block: Block, tmp_path: Path) -> None:
    """A ``config:`` block (more settings of the provider the page is about) validates against that
    provider's settings model, merged onto the page's first provider entry. A PEM file the block
    names (a site's own CA) is read as it would be: here, a test CA's."""
    from authcore.testing.tls import make_test_ca

    base = _page_base(block.page)
    assert base is not None, f"{block}: no configuration on the page to read the provider from"
    entry = base[0]["providers"][0]
    ca_file = str(make_test_ca(tmp_path).ca_file)
    fragment = yaml.safe_load(re.sub(r"(?<![\w.])/[\w./-]+\.pem\b", ca_file, block.text))
    settings = _merged(entry.get("config") or {}, fragment["config"])
    environ = _environ(base[1] + block.text)
    config = parse_config({**base[0], "providers": [{**entry, "config": settings}]}, environ=environ)
    REGISTRY.get(entry["type"]).Config.model_validate(config.providers[0].config)


@pytest.mark.parametrize("block", _blocks("json"), ids=str)
def test_every_json_block_parses(block: Block) -> None:
    json.loads(block.text)


@pytest.mark.parametrize("block", _blocks("toml"), ids=str)
def test_every_toml_block_parses(block: Block) -> None:
    tomllib.loads(block.text)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_every_python_block_compiles_and_imports_what_exists(block: Block) -> None:
    tree = ast.parse(block.text, filename=str(block))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and OURS.match(node.module):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if OURS.match(alias.name):
                    importlib.import_module(alias.name)


def _command_tree() -> dict[tuple[str, ...], set[str]]:
    """Each command path of ``authcore`` (``("users", "create")``) -> the option strings it takes."""
    import argparse

    from authcore.cli import build_parser

    tree: dict[tuple[str, ...], set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        tree[path] = {option for action in parser._actions for option in action.option_strings}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))

    walk(build_parser(), ())
    return tree


USER_COMMANDS = "|".join(re.escape(path[1]) for path in _command_tree() if len(path) == 2 and path[0] == "users")


def _command_lines() -> list[tuple[str, str]]:
    """(where, the words after ``authcore``) of every command line the pages show."""
    found = []
    for page in PAGES:
        text = page.read_text()
        # Shell blocks, and the command lines inside a unit file's ExecStart or a compose file's command.
        shell = [block.text for block in _blocks("(?:sh|bash|console|ini|ya?ml)") if block.page == page]
        inline = re.findall(r"`(authcore [^`]+)`", text)
        # README's list of user commands: `create LOGIN [--role R] ...`, each a command of `authcore users`.
        # (" | " there is "one or the other", not a pipe.)
        inline += [
            f"authcore users {code.replace(' | ', ' ')}"
            for code in re.findall(rf"`((?:{USER_COMMANDS}) [A-Z]+\b[^`]*)`", text)
        ]
        for line in [line for block in shell for line in block.splitlines()] + inline:
            # A pipe, && or ; ends a command (spaced: "list|get" is the page's list of commands).
            for segment in re.split(r"\s\|\s|&&|;", line.split(" #")[0]):
                match = re.search(r"(?:^|[\s/])authcore ([a-z].*)", segment, flags=re.S)
                if match:
                    found.append((str(page.relative_to(ROOT)), " ".join(match.group(1).split())))
    return sorted(set(found))


COMMAND_LINES = _command_lines()


def test_the_pages_show_command_lines_to_check() -> None:
    assert len(COMMAND_LINES) >= 12


@pytest.mark.parametrize(("where", "line"), COMMAND_LINES, ids=[f"{w}: {line[:40]}" for w, line in COMMAND_LINES])
def test_every_documented_command_line_exists(where: str, line: str) -> None:
    tree = _command_tree()
    paths: list[tuple[str, ...]] = [()]
    for word in line.split():
        names = word.split("|")
        if all((*paths[0], name) in tree for name in names):  # a command, or "a|b|c" of them
            paths = [(*path, name) for path in paths for name in names]
            continue
        flag = word.strip("[]()").split("=", 1)[0]
        if flag.startswith("--"):
            for path in paths:
                assert flag in tree[path], f"{where}: `authcore {' '.join(path)}` takes no {flag}"
    assert all(path for path in paths) or line.startswith("-"), f"{where}: `authcore {line}` names no command"
