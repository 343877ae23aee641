"""``${VAR}`` interpolation of configuration strings, and refusal of what only looks like a placeholder.

A configuration value that *looks* like a placeholder but is not interpolated would be used
as literal text: ``secret: $AUTHCORE_SECRET`` would sign every token with the public string
``"$AUTHCORE_SECRET"``. So the rule is strict, in files and in dicts alike:

* ``${VAR}`` and ``${VAR:-default}`` are interpolated (in files), ``$$`` is a literal ``$``;
  a malformed ``${...}`` is an error.
* ``$VAR`` (a shell's form without braces) and ``$(command)`` are errors, not literal text:
  write ``${VAR}``, or ``$$`` for a literal ``$``. Resolving ``$VAR`` like a shell would
  silently change passwords that contain a ``$``. ``$VAR`` means an upper-case name (the
  environment-variable convention: ``$AUTHCORE_SECRET``, ``https://$HOST/``), or any name when
  it is the whole value (``$secret``); other ``$`` stay literal, so password hashes such as
  ``pbkdf2_sha256$600000$9f2c...`` and passwords such as ``pa$word`` load as written.
* A whole value that is another tool's unfilled placeholder (``%VAR%``, ``{{ var }}``) is an
  error: authcore does not fill it, and a template that was never rendered must not run.
* Configuration given from code is not interpolated; a whole value that is a ``${VAR}`` or
  ``$VAR`` placeholder is an error there too.

Messages about a key that may hold a secret never quote any part of the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pydantic import SecretStr

from .loader import MAX_DEPTH, MAX_NODES
from .source import _MIN_REDACTED, ConfigSource, KeyPath, _is_secretish, _leaf

__all__ = ["Interpolated", "Prepare", "interpolate", "uninterpolated_placeholder"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The environment-variable convention (POSIX): upper-case letters, digits and '_'.
_ENV_NAME = re.compile(r"_*[A-Z][A-Z0-9_]*")
#: Whole values that are placeholders of other tools (Windows/batch, Jinja, Ansible, Helm).
_FOREIGN = re.compile(r"\s*(?:%[A-Za-z_][A-Za-z0-9_]*%|\{\{[^{}]*\}\})\s*")
#: Whole values that are ``${VAR}``-style placeholders, for configuration that is not interpolated.
_OURS = re.compile(r"\s*(?:\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*|\$\(.*\))\s*", re.DOTALL)
_HOW = "write ${VAR} for an environment variable, or $$ for a literal '$'"


class Interpolated(NamedTuple):
    """The result of :func:`interpolate`."""

    text: str
    """The value with every ``${VAR}`` replaced and ``$$`` unescaped."""
    from_environment: bool
    """Whether every character came from environment variables: no literal text and no default used."""


def interpolate(
    text: str, environ: Mapping[str, str], fail: Callable[[str], Exception], *, secret: bool
) -> Interpolated:
    """Interpolate ``${VAR}``, ``${VAR:-default}`` (also when VAR is empty) and ``$$`` in *text*.

    Anything that looks like a placeholder but is not one (see the module docstring) raises
    ``fail(message)``; *secret* keeps any part of the value out of the message.
    """
    _refuse_foreign(text, fail, secret=secret)
    if "$" not in text:
        return Interpolated(text, False)
    out: list[str] = []
    literal = False
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            out.append(text[pos:])
            literal = literal or pos < len(text)
            return Interpolated("".join(out), not literal)
        if dollar > pos:
            literal = True
        out.append(text[pos:dollar])
        after = text[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            literal = True
            pos = dollar + 2
        elif after == "{":
            match = _VARIABLE.match(text, dollar)
            if match is None:
                raise fail(
                    f"malformed ${{...}} at character {dollar + 1} of the value: write ${{VAR}} or "
                    "${VAR:-default} (VAR is letters, digits and '_'), or $$ for a literal '$'"
                )
            variable, default = match.group(1), match.group(2)
            value = environ.get(variable)
            if value is None or (value == "" and default is not None):
                if default is None:
                    hint = f"set it, or write ${{{variable}:-default}}"
                    raise fail(f"environment variable {variable!r} is not set ({hint})")
                value = default
                literal = True  # the default is written in the file
            out.append(value)
            pos = match.end()
        elif after == "(" or _looks_like_variable(text, dollar):
            raise fail(_not_interpolated(text, dollar, secret=secret))
        else:
            out.append("$")  # a '$' before a space, a digit or the end is plain text ("5$", "$1")
            literal = True
            pos = dollar + 1


def uninterpolated_placeholder(text: str, *, secret: bool) -> str | None:
    """Why *text*, from configuration that is not interpolated, must be refused; ``None`` if it may stand.

    Only a whole value that is a placeholder is refused (``"${VAR}"``, ``"$VAR"``, ``"%VAR%"``,
    ``"{{ var }}"``): values given from code are otherwise taken literally, ``$`` included.
    """
    if _FOREIGN.fullmatch(text):
        return _foreign_message(text, secret=secret)
    if _OURS.fullmatch(text):
        shown = "the value" if secret else repr(text.strip())
        return (
            f"{shown} is a placeholder, but configuration given from code is not interpolated: "
            "read the environment variable in your code, or load the configuration from a file"
        )
    return None


def _refuse_foreign(text: str, fail: Callable[[str], Exception], *, secret: bool) -> None:
    if ("%" in text or "{{" in text) and _FOREIGN.fullmatch(text):
        raise fail(_foreign_message(text, secret=secret))


def _foreign_message(text: str, *, secret: bool) -> str:
    shown = "the value" if secret else repr(text.strip())
    return f"{shown} is an unfilled placeholder (authcore fills only ${{VAR}}); {_HOW}"


def _looks_like_variable(text: str, dollar: int) -> bool:
    """Whether the ``$`` at *dollar* starts a shell-style ``$VAR`` (see the module docstring)."""
    name = _NAME.match(text, dollar + 1)
    if name is None:
        return False
    return bool(_ENV_NAME.fullmatch(name.group())) or text.strip() == text[dollar : name.end()]


def _not_interpolated(text: str, dollar: int, *, secret: bool) -> str:
    where = f"at character {dollar + 1} of the value is not interpolated"
    if text[dollar + 1] == "(":
        return f"'$(' (command substitution) {where}: {_HOW}"
    if secret:
        return f"a '$' followed by a name {where}: {_HOW}"
    name = _NAME.match(text, dollar + 1)
    assert name is not None
    return f"'${name.group()}' {where}: write ${{{name.group()}}} for the environment variable, or $$ for a literal '$'"


class Prepare:
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
