"""The entry points: :func:`parse_config` (data from code or YAML) and :func:`load_config` (a file)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

from pydantic import (
    ValidationError,
)

from ..errors import ConfigError
from .interpolation import Prepare
from .ispyb import Translate
from .loader import MAX_CONFIG_BYTES, load_yaml
from .schema import AuthcoreConfig
from .source import _DICT_SOURCE, ConfigSource


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
    prepare = Prepare(source, os.environ if environ is None else environ, interpolate)
    prepared = prepare.walk(data, (), 0)
    translate = Translate(source)
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
