"""Where configuration values came from (file, line, key path) and how problems with them are told.

:class:`ConfigSource` turns a key path into ``file, line N, at providers[0].uri`` and a
pydantic ``ValidationError`` into one :class:`~authcore.errors.ConfigError` that never shows a
value of a key that may hold a secret.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType, NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    SecretStr,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_core.core_schema import ErrorType

from ..errors import ConfigError

#: A position in the configuration: mapping keys and list indexes from the top, e.g. ``("providers", 0, "name")``.
KeyPath = tuple[str | int, ...]

_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SECRET_PARTS = ("secret", "passw", "token", "credential", "apikey", "privatekey")
_SECRET_WORDS = frozenset({"key", "keys", "pwd", "pass", "passphrase", "pin"})
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

#: pydantic's own error types: their messages never contain the input. Custom validators' may.
_SAFE_ERROR_TYPES = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}
_MIN_REDACTED = 6
#: The name of configuration given from code, in error messages.
_DICT_SOURCE = "<dict>"
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
            if top and not loc[:-1] and root is not None:
                candidates.extend(getattr(root, "translated_keys", ()))
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
