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

from .ispyb import PYISPYB_CLASSES
from .loader import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_NODES, load_yaml
from .parse import load_config, parse_config
from .schema import AuthcoreConfig, PermissionsConfig, ProviderEntry, SessionConfig, TokenConfig
from .source import ConfigSource, KeyPath, format_path

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "PYISPYB_CLASSES",
    "AuthcoreConfig",
    "ConfigSource",
    "KeyPath",
    "PermissionsConfig",
    "ProviderEntry",
    "SessionConfig",
    "TokenConfig",
    "format_path",
    "load_config",
    "load_yaml",
    "parse_config",
]
