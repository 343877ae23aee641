"""YAML reading: a safe composer with size, node and depth limits, and a builder that keeps every key's line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigError
from .source import ConfigSource, KeyPath, format_path

#: Largest configuration file read (1 MiB).
MAX_CONFIG_BYTES = 1 << 20
#: Most YAML nodes (or dict/list items given from code) visited while loading, alias expansion counted.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _VALUE, _MERGE, _SEQ, _MAP = (_TAG + t for t in ("timestamp", "value", "merge", "seq", "map"))
#: Scalar tags read as their text: a date in a config is a string, and ``=`` is no special value.
_TEXT_TAGS = frozenset({_STR, _TIMESTAMP, _VALUE})
_KEY_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP, _VALUE})


class _LimitError(yaml.composer.ComposerError):
    """A YAML stream over the size limits, raised while composing (before anything is built)."""


class _Loader(yaml.SafeLoader):
    """The safe loader, counting nodes and depth while composing so that a hostile file stops early.

    Only its composer is used: the node tree is turned into Python values by :class:`_Builder`,
    never by a PyYAML constructor, so no tag can make it run code.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """Compose one node, refusing more than :data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels."""
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _LimitError(None, None, f"more than {MAX_NODES} YAML nodes", self._mark())
        if self.depth >= MAX_DEPTH:
            raise _LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", self._mark())
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _mark(self) -> Mark | None:
        peek: Callable[[], Any] = self.peek_event
        mark: Mark | None = getattr(peek(), "start_mark", None)
        return mark


def _line(mark: Mark | None) -> int | None:
    return None if mark is None else mark.line + 1


class _Builder:
    """Turns a composed node tree into Python values, recording each key's line."""

    def __init__(self, loader: _Loader, name: str) -> None:
        self.loader = loader
        self.name = name
        self.lines: dict[KeyPath, int] = {}
        self.visited = 0
        self.active: set[int] = set()

    def fail(self, node: Node, path: KeyPath, message: str) -> ConfigError:
        parts = [self.name]
        line = _line(node.start_mark)
        if line is not None:
            parts.append(f"line {line}")
        if path:
            parts.append(f"at {format_path(path)}")
        return ConfigError(f"{', '.join(parts)}: {message}")

    def record(self, path: KeyPath, node: Node) -> None:
        line = _line(node.start_mark)
        if line is not None:
            self.lines[path] = line

    def build(self, node: Node, path: KeyPath, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.fail(node, path, f"more than {MAX_NODES} values once aliases are expanded (a YAML bomb?)")
        if depth > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels once aliases are expanded")
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise self.fail(node, path, "recursive alias: this value contains itself")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                items: list[Any] = []
                for index, item in enumerate(node.value):
                    self.record((*path, index), item)
                    items.append(self.build(item, (*path, index), depth + 1))
                return items
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self.mapping(node, path, depth)
            raise self.fail(node, path, f"{_show_tag(node.tag)} is not allowed: only plain YAML data")
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            text: str = node.value
            if "\x00" in text:
                raise self.fail(node, path, "NUL character in a value")
            return text
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return self.loader.construct_yaml_bool(node)
            if tag == _INT:
                return self.loader.construct_yaml_int(node)
            if tag == _FLOAT:
                return self.loader.construct_yaml_float(node)
        except (ValueError, ArithmeticError):
            raise self.fail(node, path, "not a number YAML can read") from None
        raise self.fail(node, path, f"{_show_tag(tag)} is not allowed: only plain YAML data")

    def key(self, node: Node, path: KeyPath) -> str:
        self.visited += 1
        if not isinstance(node, ScalarNode) or node.tag not in _KEY_TAGS:
            raise self.fail(node, path, "a key must be a plain string")
        text: str = node.value
        if "\x00" in text:
            raise self.fail(node, path, "NUL character in a key")
        return text

    def mapping(self, node: MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int | None] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if merges:
                    raise self.fail(
                        key_node, path, f"duplicate key '<<' (first at line {_line(merges[0][0].start_mark)})"
                    )
                merges.append((key_node, value_node))
                continue
            key = self.key(key_node, path)
            if key in result:
                first = first_line[key]
                raise self.fail(
                    key_node, (*path, key), f"duplicate key {key!r}" + (f" (first at line {first})" if first else "")
                )
            first_line[key] = _line(key_node.start_mark)
            self.record((*path, key), key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for key_node, value_node in merges:
            self.merge(result, key_node, value_node, path, depth)
        return result

    def merge(self, result: dict[str, Any], key_node: Node, value: Node, path: KeyPath, depth: int) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: keys of the mapping itself win, then earlier sources."""
        if isinstance(value, MappingNode):
            sources: list[Node] = [value]
        elif isinstance(value, SequenceNode) and value.tag == _SEQ:
            sources = list(value.value)
        else:
            raise self.fail(key_node, path, "'<<' merges a mapping or a list of mappings")
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.fail(source, path, "'<<' merges a mapping or a list of mappings")
            saved, self.lines = self.lines, {}
            try:
                merged = self.build(source, path, depth)
                positions = self.lines
            finally:
                self.lines = saved
            fresh = {key for key in merged if key not in result}
            for key in fresh:
                result[key] = merged[key]
            cut = len(path)
            for where, line in positions.items():
                if len(where) > cut and where[cut] in fresh:
                    self.lines[where] = line


def _show_tag(tag: str) -> str:
    return "tag " + (f"!!{tag[len(_TAG) :]}" if tag.startswith(_TAG) else tag)


def _yaml_problem(name: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    # Built from the parts, not str(exc): PyYAML's snippet would quote the line, secret and all.
    line = _line(exc.problem_mark) or _line(exc.context_mark)
    parts: list[str] = []
    if exc.context:
        context_line = _line(exc.context_mark)
        parts.append(exc.context + (f" (line {context_line})" if context_line and context_line != line else ""))
    if exc.problem:
        parts.append(exc.problem)
    kind = "" if isinstance(exc, _LimitError) else "YAML syntax error: "
    where = f"{name}, line {line}" if line else name
    return ConfigError(f"{where}: {kind}{': '.join(parts) or 'invalid YAML'}")


def load_yaml(text: str | bytes, *, name: str = "<string>") -> tuple[Any, ConfigSource]:
    """Parse one YAML document safely: return its value and a :class:`ConfigSource` with each key's line.

    Raises :class:`ConfigError` (naming *name* and the line) for invalid UTF-8, a document
    over :data:`MAX_CONFIG_BYTES`, a syntax error, several documents, a tag other than
    plain data (``!!python/...``), duplicate keys, recursive aliases, more than
    :data:`MAX_NODES` values once aliases are expanded, or nesting deeper than
    :data:`MAX_DEPTH`. An empty document gives ``None``. No interpolation is done here.
    """
    if isinstance(text, bytes):
        raw = text
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{name}: larger than {MAX_CONFIG_BYTES // 1024} KiB; refusing to read it")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError(f"{name}, line {line}: not valid UTF-8 (byte {exc.start + 1})") from None
    elif len(text) > MAX_CONFIG_BYTES or len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_CONFIG_BYTES // 1024} KiB; refusing to read it")
    text = text.removeprefix("\ufeff")
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_problem(name, text, exc) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, ConfigSource(name)
        builder = _Builder(loader, name)
        value = builder.build(root, (), 0)
        builder.record((), root)
        return value, ConfigSource(name, builder.lines)
    except yaml.reader.ReaderError as exc:
        raise _reader_problem(name, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_problem(name, exc) from None
    except yaml.YAMLError:
        raise ConfigError(f"{name}: invalid YAML") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    finally:
        loader.dispose()


def _reader_problem(name: str, text: str, exc: yaml.reader.ReaderError) -> ConfigError:
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    code = exc.character if isinstance(exc.character, int) else None
    what = f"character #x{code:04x}" if code is not None else "character"
    return ConfigError(f"{name}, line {line}: unacceptable {what} (control characters such as NUL are not allowed)")
