"""Configuration: the schema (pydantic models) and loading from YAML files or dicts.

The schema lives here; tokens and sessions read their sections from these models.

Loading (:func:`load_config`, :func:`load_yaml`, :func:`parse_config`) is strict:

* YAML is read with a :class:`yaml.SafeLoader` subclass, and the composed node tree is
  walked here (no PyYAML constructor runs on it), so every key's line is known and only
  plain data (strings, numbers, booleans, null, lists, mappings, ``<<`` merges) is accepted.
  Files over :data:`MAX_CONFIG_BYTES`, more than :data:`MAX_NODES` nodes (alias expansion
  counted), nesting deeper than :data:`MAX_DEPTH`, recursive aliases and duplicate keys are
  errors.
* ``${VAR}``, ``${VAR:-default}`` and ``$$`` are interpolated in string values after parsing;
  ``$VAR`` and other look-alike placeholders are errors (:mod:`authcore.interpolation`).
* A py-ispyb ``auth.yml`` (``AUTH:`` entries with ``ENABLED``, ``AUTH_MODULE``,
  ``AUTH_CLASS``, ``CONFIG``) is translated onto ``providers:``; error positions still
  point at the original lines.
* Every error is a :class:`~authcore.errors.ConfigError` naming the file, the line and the
  key path, and never the value of a key that may hold a secret.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_core.core_schema import ErrorType
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .durations import Duration
from .errors import ConfigError
from .interpolation import interpolate, uninterpolated_placeholder

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "PYISPYB_CLASSES",
    "AuthcoreConfig",
    "ConfigSource",
    "KeyPath",
    "PermissionsConfig",
    "ProviderSettings",
    "SessionConfig",
    "TokenConfig",
    "format_path",
    "load_config",
    "load_yaml",
    "parse_config",
]

#: A position in the configuration: mapping keys and list indexes from the top, e.g. ``("providers", 0, "name")``.
KeyPath = tuple[str | int, ...]

#: Largest configuration file read (1 MiB).
MAX_CONFIG_BYTES = 1 << 20
#: Most YAML nodes (or dict/list items given from code) visited while loading, alias expansion counted.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64
#: py-ispyb ``AUTH_CLASS`` names (with an empty or ``pyispyb.`` ``AUTH_MODULE``) → authcore provider type.
PYISPYB_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "DummyAuthentication": "dummy",
        "LdapAuthentication": "ldap",
        "KeycloakAuthentication": "keycloak",
        "KeycloakDBGroupsAuthentication": "keycloak",
    }
)

_DICT_SOURCE = "<dict>"
_PYISPYB_KEYS = ("ENABLED", "AUTH_MODULE", "AUTH_CLASS", "CONFIG")
_SECTIONS = ("production", "tokens", "sessions", "providers", "permissions")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SECRET_PARTS = ("secret", "passw", "token", "credential", "apikey", "privatekey")
_SECRET_WORDS = frozenset({"key", "keys", "pwd", "pass", "passphrase", "pin"})
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
#: pydantic's own error types: their messages never contain the input. Custom validators' may.
_SAFE_ERROR_TYPES = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}
_MIN_REDACTED = 6
_WITHHELD = "invalid value (the message is withheld: this key may hold a secret)"


def _is_secretish(key: str) -> bool:
    """Whether a key's value may be a secret (secret, password, key, token, credential…)."""
    low = key.lower()
    if any(part in low for part in _SECRET_PARTS):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORDS.findall(key))


def _leaf(path: KeyPath) -> str | None:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


def format_path(path: KeyPath) -> str:
    """``("providers", 0, "config", "uri")`` → ``providers[0].config.uri``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def _suggest(key: str, candidates: Iterable[str]) -> str | None:
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[matches[0]] if matches else None


def _unknown_key(key: str, candidates: Iterable[str]) -> str:
    message = f"unknown key {key!r}"
    match = _suggest(key, candidates)
    if match is not None:
        message += f"; did you mean {match!r}?"
    return message


class ConfigSource:
    """Where a configuration came from: a file name (or ``"<dict>"``) and key-path → line positions.

    Every :class:`~authcore.errors.ConfigError` about a configuration is made here, so that
    it names the file, the line and the key path. Paths are given in authcore's schema
    (``("providers", 0, "config", "uri")``); for a translated py-ispyb file they are
    reported as written in that file (``AUTH[0].ldap.CONFIG.LDAP_URI``).
    """

    __slots__ = ("_aliases", "_environment", "_lines", "_secrets", "mode", "name")

    def __init__(self, name: str = _DICT_SOURCE, lines: Mapping[KeyPath, int] | None = None) -> None:
        #: The file name as given, or ``"<dict>"`` for configuration from code.
        self.name = name
        self._lines: dict[KeyPath, int] = dict(lines or {})
        self._aliases: dict[KeyPath, KeyPath] = {}
        self._secrets: frozenset[str] = frozenset()
        self._environment: frozenset[KeyPath] = frozenset()
        #: Permission bits of the file when it was read (``None`` for configuration from code).
        self.mode: int | None = None

    def __repr__(self) -> str:
        return f"ConfigSource({self.name!r}, {len(self._lines)} positions)"

    @property
    def positions(self) -> Mapping[KeyPath, int]:
        """The recorded key-path → line map (1-based lines), read-only, as written in the file."""
        return MappingProxyType(self._lines)

    def _derive(
        self, aliases: Mapping[KeyPath, KeyPath], secrets: Iterable[str], environment: Iterable[KeyPath] = ()
    ) -> ConfigSource:
        derived = ConfigSource(self.name)
        derived._lines = self._lines
        derived._aliases = {**self._aliases, **aliases}
        derived._secrets = self._secrets | frozenset(s for s in secrets if len(s) >= _MIN_REDACTED)
        derived._environment = self._environment | frozenset(environment)
        derived.mode = self.mode
        return derived

    def written_in_file(self, path: KeyPath) -> bool:
        """Whether the value at *path* is (partly) written in a file, not wholly taken from ``${VAR}``."""
        return self.mode is not None and self.original(path) not in self._environment

    def original(self, path: KeyPath) -> KeyPath:
        """*path* as written in the source (differs from *path* for a translated py-ispyb file)."""
        path = tuple(path)
        for size in range(len(path), -1, -1):
            target = self._aliases.get(path[:size])
            if target is not None:
                return target + path[size:]
        return path

    def line(self, path: KeyPath) -> int | None:
        """The nearest known line for *path*: its own, else its parent's, and so on up; ``None`` if none."""
        original = self.original(path)
        for size in range(len(original), -1, -1):
            line = self._lines.get(original[:size])
            if line is not None:
                return line
        return None

    def where(self, path: KeyPath) -> str:
        """``"auth.yml, line 12, at providers[0].config.uri"`` (the parts that are known)."""
        original = self.original(path)
        parts = [self.name]
        line = self.line(path)
        if line is not None:
            parts.append(f"line {line}")
        if original:
            parts.append(f"at {format_path(original)}")
        return ", ".join(parts)

    def _redact(self, text: str, extra: Iterable[str] = ()) -> str:
        secrets = sorted({*self._secrets, *(s for s in extra if len(s) >= _MIN_REDACTED)}, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def error(self, path: KeyPath, message: str) -> ConfigError:
        """A :class:`ConfigError` ``"<where>: <message>"`` for *path* (to raise)."""
        return ConfigError(self._redact(f"{self.where(path)}: {message}"))

    def validation_error(
        self,
        exc: ValidationError,
        prefix: KeyPath = (),
        *,
        model: type[BaseModel] | None = None,
    ) -> ConfigError:
        """One :class:`ConfigError` listing every error of *exc* as ``"<where>: <message>"``.

        *prefix* is where the validated data sits in the configuration (``("providers", 2,
        "config")`` for a provider's own ``Config``). Unknown keys read ``unknown key 'x'``
        with a ``did you mean 'y'?`` when a field of *model* (by default the model *exc*
        names, when it can be found) is close. Messages of custom validators on keys that
        may hold a secret are withheld, and values known to be secrets are masked.
        """
        root = model if model is not None else _model_named(exc.title)
        lines: list[str] = []
        inputs: list[str] = []
        for detail in exc.errors(include_url=False):
            loc = tuple(detail["loc"])
            path = tuple(prefix) + loc
            message = self._describe(detail, loc, path, root, top=not prefix)
            if _is_secretish(_leaf(path) or "") and path != ("tokens",):
                value = detail.get("input")
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                if isinstance(value, str):
                    inputs.append(value)
            line = f"{self.where(path)}: {message}"
            if line not in lines:
                lines.append(line)
        if len(lines) == 1:
            text = lines[0]
        else:
            text = f"{len(lines)} problems in {self.name}:\n  " + "\n  ".join(lines)
        return ConfigError(self._redact(text, inputs))

    @staticmethod
    def _describe(detail: ErrorDetails, loc: KeyPath, path: KeyPath, root: type[BaseModel] | None, *, top: bool) -> str:
        kind = detail["type"]
        if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
            candidates = _field_names_at(root, loc[:-1]) if root is not None else []
            if top and not loc[:-1] and root is AuthcoreConfig:
                candidates.append("AUTH")
            return _unknown_key(loc[-1], candidates)
        if kind == "missing" and loc and isinstance(loc[-1], str):
            return f"missing required key {loc[-1]!r}"
        if kind not in _SAFE_ERROR_TYPES and _is_secretish(_leaf(path) or "") and path != ("tokens",):
            return _WITHHELD
        message = detail["msg"]
        for noise in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(noise)
        return message


def _model_named(title: str) -> type[BaseModel] | None:
    """The model class a ValidationError names, when exactly one is known by that name."""
    if title == "AuthcoreConfig":
        return AuthcoreConfig
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [BaseModel]
    seen: set[type[BaseModel]] = set()
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            pending.append(sub)
            if sub.__name__ == title or sub.model_config.get("title") == title:
                found.append(sub)
    return found[0] if len(found) == 1 else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` around *annotation*."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is UnionType:
            members = [arg for arg in get_args(annotation) if arg is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _as_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [key for name in model.model_fields for key in _field_keys(model, name)]


def _field_names_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys the model at *loc* (inside *model*) accepts; empty when that cannot be told."""
    annotation: Any = model
    for part in loc:
        cls = _as_model(annotation)
        if cls is not None:
            if not isinstance(part, str):
                return []
            for name, info in cls.model_fields.items():
                if part in _field_keys(cls, name):
                    annotation = info.annotation
                    break
            else:
                return []
            continue
        args = get_args(_unwrap(annotation))
        origin = get_origin(_unwrap(annotation))
        if not args or origin is None:
            return []
        annotation = args[-1] if isinstance(origin, type) and issubclass(origin, Mapping) else args[0]
    cls = _as_model(annotation)
    return _field_names(cls) if cls is not None else []


def _field_keys(model: type[BaseModel], name: str) -> list[str]:
    """The keys a field is given by: its name, alias and validation aliases."""
    info = model.model_fields[name]
    keys = [name]
    if isinstance(info.alias, str):
        keys.append(info.alias)
    if isinstance(info.validation_alias, AliasChoices):
        keys.extend(choice for choice in info.validation_alias.choices if isinstance(choice, str))
    elif isinstance(info.validation_alias, str):
        keys.append(info.validation_alias)
    return keys


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)


class TokenConfig(_Section):
    """``tokens:``: how access tokens are signed and checked."""

    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"] = "HS256"
    """Signing algorithm, pinned: tokens signed any other way are refused."""
    secret: SecretStr | None = None
    """HMAC secret for HS*; at least 32 bytes in production. Without one, development uses a random secret."""
    private_key_file: Path | None = None
    """PEM private key for RS256/ES256/EdDSA; its public key is published in the JWKS."""
    public_key_files: tuple[Path, ...] = ()
    """PEM public keys of earlier signing keys, still accepted while tokens they signed live (rotation)."""
    issuer: str = Field(default="authcore", min_length=1, max_length=512)
    """``iss`` of issued tokens, and the only issuer accepted."""
    audience: str = Field(default="authcore", min_length=1, max_length=512)
    """``aud`` of issued tokens, and the audience required."""
    access_ttl: Duration = 900.0
    """Lifetime of an access token."""
    leeway: Duration = 10.0
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (at most 5 minutes)."""
    cache_size: int = Field(default=10_000, ge=0, le=10_000_000)
    """Verified tokens remembered (0 switches the cache off)."""
    revocation_check_interval: Duration = 5.0
    """With a session store shared between processes, how long a cached verification is trusted
    before the session is looked up again (a logout elsewhere shows within this)."""

    @field_validator("leeway")
    @classmethod
    def _small_leeway(cls, value: float) -> float:
        if value > 300:
            raise ValueError("leeway is at most 5 minutes")
        return value

    @field_validator("access_ttl")
    @classmethod
    def _positive_ttl(cls, value: float) -> float:
        if value < 1:
            raise ValueError("access_ttl is at least one second")
        return value

    @model_validator(mode="after")
    def _key_material(self) -> TokenConfig:
        if self.algorithm.startswith("HS"):
            if self.private_key_file is not None or self.public_key_files:
                raise ValueError(f"{self.algorithm} uses 'secret', not key files")
        elif self.private_key_file is None:
            raise ValueError(f"{self.algorithm} needs 'private_key_file'")
        elif self.secret is not None:
            raise ValueError(f"{self.algorithm} uses key files, not 'secret'")
        return self


class SessionConfig(_Section):
    """``sessions:``: refresh tokens and how long a session lives."""

    idle_timeout: Duration = 8 * 3600.0
    """A session unused for this long ends; each refresh pushes the end back (sliding expiry)."""
    max_lifetime: Duration = 24 * 3600.0
    """No session outlives this, however active."""
    store: str = Field(default="memory://", min_length=1, max_length=4096)
    """Where sessions are kept: ``memory://``, ``sqlite:////absolute/path/sessions.db`` (four slashes: an
    absolute path; ``sqlite:///sessions.db`` is relative to the working directory; the directory must exist),
    or a plugin's scheme."""

    @model_validator(mode="after")
    def _ordered(self) -> SessionConfig:
        if self.idle_timeout < 1 or self.max_lifetime < 1:
            raise ValueError("idle_timeout and max_lifetime are at least one second")
        return self


class ProviderSettings(_Section):
    """One entry of ``providers:``: a provider instance."""

    name: str
    """Instance name: what a login request names (``plugin`` in py-ispyb)."""
    type: str | None = None
    """Provider type (entry-point name); defaults to the instance name."""
    class_: str | None = Field(default=None, alias="class")
    """``"package.module:Class"``: load a provider class directly instead of by type."""
    enabled: bool = True
    """A disabled entry is validated for shape but not started."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The provider's own settings, validated by its ``Config`` model."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a provider name is a letter, then letters, digits, '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _type_or_class(self) -> ProviderSettings:
        if self.type is not None and self.class_ is not None:
            raise ValueError("give 'type' or 'class', not both")
        if self.type is None and self.class_ is None:
            object.__setattr__(self, "type", self.name)
        return self


class PermissionsConfig(_Section):
    """``permissions:``: how groups become permissions."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Group (or role) name → permissions granted to its members."""
    authenticated: list[str] = Field(default_factory=list)
    """Permissions every authenticated identity gets."""
    store: str | None = None
    """``sqlite:////absolute/path.db`` (four slashes: absolute; three: relative to the working directory):
    py-ispyb's UserGroup/Permission tables, read by the SQL permission store."""


class AuthcoreConfig(_Section):
    """The whole configuration file."""

    production: bool = False
    """Refuse development providers, weak secrets and disabled TLS verification."""
    tokens: TokenConfig = Field(default_factory=TokenConfig)
    """How access tokens are signed and checked."""
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    """Refresh tokens and session lifetimes."""
    providers: list[ProviderSettings] = Field(default_factory=list)
    """The provider instances; several of one type may be enabled at once."""
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    """How groups and roles become permissions."""

    _source: ConfigSource = PrivateAttr(default_factory=ConfigSource)

    @property
    def source(self) -> ConfigSource:
        """Where this configuration came from: file name and line positions, for error messages."""
        return self._source

    @model_validator(mode="after")
    def _unique_names(self) -> AuthcoreConfig:
        seen: set[str] = set()
        for entry in self.providers:
            if entry.name in seen:
                raise ValueError(f"two providers are named {entry.name!r}; instance names must be unique")
            seen.add(entry.name)
        return self


# --------------------------------------------------------------------------- YAML

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


# --------------------------------------------------------------------------- interpolation


class _Prepare:
    """Copies the raw data: interpolates ``${VAR}`` in strings, checks keys, collects secret values."""

    def __init__(self, source: ConfigSource, environ: Mapping[str, str], interpolate: bool) -> None:
        self.source = source
        self.environ = environ
        self.interpolate = interpolate
        self.visited = 0
        self.active: set[int] = set()
        self.secrets: set[str] = set()
        #: String values made wholly of ``${VAR}`` (no literal text, no default): not written in the file.
        self.from_environment: set[KeyPath] = set()

    def walk(self, value: Any, path: KeyPath, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.source.error(path, f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise self.source.error(path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, SecretStr):
            if _is_secretish(_leaf(path) or ""):
                self.secrets.add(value.get_secret_value())
            return value
        if not isinstance(value, Mapping | list | tuple):
            return value
        if id(value) in self.active:
            raise self.source.error(path, "recursive structure: this value contains itself")
        self.active.add(id(value))
        try:
            if isinstance(value, Mapping):
                result: dict[str, Any] = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise self.source.error(path, f"keys must be strings, not {type(key).__name__}")
                    if "\x00" in key:
                        raise self.source.error(path, "NUL character in a key")
                    result[key] = self.walk(item, (*path, key), depth + 1)
                return result
            return [self.walk(item, (*path, index), depth + 1) for index, item in enumerate(value)]
        finally:
            self.active.discard(id(value))

    def string(self, text: str, path: KeyPath) -> str:
        if "\x00" in text:
            raise self.source.error(path, "NUL character in a value")
        secret = _is_secretish(_leaf(path) or "") and path != ("tokens",)
        if self.interpolate:
            done = interpolate(text, self.environ, lambda message: self.source.error(path, message), secret=secret)
            text = done.text
            if done.from_environment:
                self.from_environment.add(path)
        else:
            problem = uninterpolated_placeholder(text, secret=secret)
            if problem is not None:
                raise self.source.error(path, problem)
        if len(text) >= _MIN_REDACTED and secret:
            self.secrets.add(text)
        return text


# --------------------------------------------------------------------------- py-ispyb translation


class _Translate:
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


# --------------------------------------------------------------------------- entry points


def parse_config(
    data: Any,
    *,
    source: ConfigSource | None = None,
    environ: Mapping[str, str] | None = None,
    interpolate: bool = True,
) -> AuthcoreConfig:
    """Validate configuration *data* (a dict from code, or what :func:`load_yaml` returned).

    Accepts authcore's schema and the py-ispyb shapes (``AUTH:`` list, ``AUTH:`` single
    mapping, a bare list of ``- <name>: {...}`` entries). ``${VAR}`` in string values is
    taken from *environ* (default :data:`os.environ`) unless *interpolate* is false, so a
    literal ``$`` is written ``$$``. *source* (default ``"<dict>"``) names where *data*
    came from in error messages; the returned config carries it as ``config.source``.
    Every problem raises :class:`ConfigError`.
    """
    if isinstance(data, AuthcoreConfig):
        return data
    source = source if source is not None else ConfigSource(_DICT_SOURCE)
    if data is None:
        raise ConfigError(f"{source.name} is empty: there is nothing to configure (an empty configuration)")
    prepare = _Prepare(source, os.environ if environ is None else environ, interpolate)
    prepared = prepare.walk(data, (), 0)
    translate = _Translate(source)
    document = translate.document(prepared)
    located = source._derive(translate.aliases, prepare.secrets, prepare.from_environment)
    _check_unique_names(document, located)
    try:
        config = AuthcoreConfig.model_validate(document)
    except ValidationError as exc:
        raise located.validation_error(exc, model=AuthcoreConfig) from None
    config._source = located
    return config


def _check_unique_names(document: dict[str, Any], source: ConfigSource) -> None:
    providers = document.get("providers")
    if not isinstance(providers, list):
        return
    first: dict[str, int] = {}
    for index, entry in enumerate(providers):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            earlier = source.line(("providers", first[name], "name"))
            raise source.error(
                ("providers", index, "name"),
                f"two providers are named {name!r}"
                + (f" (the first at line {earlier})" if earlier is not None else "")
                + ": instance names must be unique",
            )
        first[name] = index


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> AuthcoreConfig:
    """Read, interpolate, translate (py-ispyb) and validate the YAML file at *path*.

    Every problem, a missing or unreadable file included, raises :class:`ConfigError`
    naming the file (and the line and key path where there is one).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
            # Of the file read (not of whatever the name points at later), for the permission warning.
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
    except FileNotFoundError:
        raise ConfigError(f"{name}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{name}: permission denied reading the configuration file") from None
    except OSError as exc:
        raise ConfigError(
            f"{name}: cannot read the configuration file ({exc.strerror or type(exc).__name__})"
        ) from None
    data, source = load_yaml(raw, name=name)
    source.mode = mode
    return parse_config(data, source=source, environ=environ)
