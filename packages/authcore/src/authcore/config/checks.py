"""Checks on a validated configuration as a manager starts: refusals, warnings, file permissions.

The schema (:mod:`authcore.config`) says what a configuration may contain; these checks say
what it may *run* with. Under ``production: true`` a weak token secret, a development
provider and a provider's :meth:`~authcore.ProviderConfig.production_issues` are refused
with a :class:`~authcore.errors.ConfigError` that, like every configuration error, names the
file, the line and the key path. In development the same weaknesses of the token secret and
switched-off TLS verification are logged once, naming the setting and never its value.

A configuration file that holds a secret written in it (not taken from ``${VAR}``), and a
private key file, get a warning when other users may read them, as ssh gives for keys.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from ..algorithms import ALGORITHMS
from ..errors import ConfigError
from ..providers import WELL_KNOWN_SECRETS, Provider, ProviderConfig
from .schema import AuthcoreConfig
from .source import ConfigSource, KeyPath, _field_keys, _is_secretish, format_path

__all__ = [
    "MIN_PRODUCTION_SECRET_BYTES",
    "check_provider_config",
    "check_token_secret",
    "exposed_file_warnings",
    "located",
    "no_provider_error",
    "provider_key_files",
    "provider_secret_paths",
    "secret_weakness",
]

#: Shortest HMAC secret accepted with ``production: true`` (and not warned about in development).
MIN_PRODUCTION_SECRET_BYTES = 32
#: Permission bits that make a file holding a secret "too open" (ssh's rule: any group or other access).
_TOO_OPEN = 0o077
_SECRET_PATH = ("tokens", "secret")


def secret_weakness(secret: str) -> str | None:
    """Why *secret* is too weak to sign tokens (short, well known, trivial); ``None`` if it is not."""
    if len(secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
        return f"under {MIN_PRODUCTION_SECRET_BYTES} bytes long"
    if secret.strip().lower() in WELL_KNOWN_SECRETS or len(set(secret)) < 8:
        return "a well-known or trivial value"
    return None


def check_token_secret(config: AuthcoreConfig, log: logging.Logger) -> None:
    """Refuse (production) or warn about (development) a missing or weak HMAC ``tokens.secret``."""
    tokens = config.tokens
    if not ALGORITHMS[tokens.algorithm].symmetric:
        return
    source = config.source
    if tokens.secret is None:
        if config.production:
            needed = f"at least {MIN_PRODUCTION_SECRET_BYTES} random bytes"
            raise source.error(_SECRET_PATH, f"production: true needs tokens.secret ({needed})")
        return  # development: the token service warns that it uses a development secret
    weakness = secret_weakness(tokens.secret.get_secret_value())
    if weakness is None:
        return
    if config.production:
        raise source.error(_SECRET_PATH, f"production: true refuses tokens.secret: it is {weakness}")
    log.warning(
        "%s: tokens.secret is weak (%s): acceptable for development only, refused with production: true",
        source.where(_SECRET_PATH),
        weakness,
    )


def check_provider_config(
    config: AuthcoreConfig, index: int, provider_config: ProviderConfig, log: logging.Logger
) -> None:
    """Refuse a provider's production issues (production) or warn on TLS verification off (development).

    Each refusal is located at the setting it names when its text starts with a field name,
    else at the provider's ``config``.
    """
    source = config.source
    written = config.providers[index].config
    base: KeyPath = ("providers", index, "config")
    if config.production:
        issues = provider_config.production_issues()
        if issues:
            lines = []
            for issue in issues:
                field = issue.split(" ", 1)[0]
                path = _field_path(base, written, provider_config, field)
                lines.append(f"{source.where(path)}: refused with production: true: {issue}")
            text = lines[0] if len(lines) == 1 else f"{len(lines)} problems in {source.name}:\n  " + "\n  ".join(lines)
            raise ConfigError(text)
        return
    for field in type(provider_config).tls_verify_fields:
        if getattr(provider_config, field, None) is False:
            path = _field_path(base, written, provider_config, field)
            log.warning(
                "%s: %s is false: TLS certificates are not verified, so anyone on the network path can "
                "impersonate the server (development only; refused with production: true)",
                source.where(path),
                format_path(path[len(base) :]),
            )


def _field_path(base: KeyPath, written: dict[str, Any], model: ProviderConfig, field: str) -> KeyPath:
    """Where *field* of a provider's config sits: the key as written (an alias maybe), else the config."""
    key = _written_key(written, model, field)
    return base if key is None else (*base, key)


def _written_key(written: Mapping[str, Any], model: BaseModel, field: str) -> str | None:
    """The key *field* is given by in the configuration (its name or an alias); ``None`` if not given."""
    if field not in type(model).model_fields:
        return None
    return next((key for key in _field_keys(type(model), field) if key in written), None)


def provider_secret_paths(config: AuthcoreConfig, index: int, provider_config: ProviderConfig) -> list[KeyPath]:
    """Key paths of the provider's secrets (``SecretStr`` settings, nested ones too: an SMTP
    section's password) that are written in the file."""
    written = config.providers[index].config
    found = _secret_paths(provider_config, written, ("providers", index, "config"))
    return [path for path in found if config.source.written_in_file(path)]


def _secret_paths(model: BaseModel, written: Mapping[str, Any] | None, prefix: KeyPath) -> list[KeyPath]:
    """Key paths of every ``SecretStr`` in *model* and the models it holds, by the keys *written*
    gives them (aliases included), else by field name (the core's sections, which have none)."""
    paths: list[KeyPath] = []
    for field in type(model).model_fields:
        key = _written_key(written, model, field) if written is not None else field
        if key is None:
            continue
        value = getattr(model, field)
        if isinstance(value, SecretStr):
            paths.append((*prefix, key))
        elif isinstance(value, list | tuple):  # a list of secrets: auth-local's second_factor.secret_keys
            paths += [(*prefix, key, index) for index, item in enumerate(value) if isinstance(item, SecretStr)]
        elif isinstance(value, BaseModel):
            inner = written.get(key) if written is not None else None
            if written is None or isinstance(inner, Mapping):
                paths += _secret_paths(value, inner, (*prefix, key))
    return paths


def provider_key_files(
    config: AuthcoreConfig, index: int, provider_config: ProviderConfig
) -> list[tuple[KeyPath, Path]]:
    """Files a provider reads that hold a secret: settings named like ``client_key_file`` or ``password_file``."""
    written = config.providers[index].config
    found: list[tuple[KeyPath, Path]] = []
    for field in type(provider_config).model_fields:
        value = getattr(provider_config, field)
        secret = field.endswith(("_file", "_path")) and _is_secretish(field.rsplit("_", 1)[0])
        if secret and value and isinstance(value, str | os.PathLike):
            key = _written_key(written, provider_config, field) or field
            found.append((("providers", index, "config", key), Path(value)))
    return found


def no_provider_error(config: AuthcoreConfig) -> ConfigError:
    """The error for a configuration that enables no provider: nothing could log in, so it is a mistake.

    py-ispyb's ``AUTH:`` list with every entry ``ENABLED: false`` is the common case.
    """
    if config.providers:
        message = "every provider is disabled (enabled: false): enable at least one"
    else:
        message = "no provider is configured: add at least one under 'providers:'"
    return config.source.error(("providers",), message)


def exposed_file_warnings(config: AuthcoreConfig, providers: Mapping[str, Provider]) -> list[str]:
    """ssh-style warnings for a configuration file holding written secrets, and key files, open to others.

    The secrets are ``tokens.secret`` and the started *providers*' ``SecretStr`` settings, when
    written in the file rather than taken from ``${VAR}``; the key files are
    ``tokens.private_key_file`` and the providers' settings named like ``client_key_file``.
    """
    if os.name == "nt":  # no POSIX permission bits to judge
        return []
    source = config.source
    held: list[KeyPath] = []
    key_files: list[tuple[KeyPath, Path]] = []
    # The core's own secrets (tokens.secret, web.sso_state_secret, permissions.ispyb.url, ...).
    for section in ("tokens", "sessions", "permissions", "web"):
        found = _secret_paths(getattr(config, section), None, (section,))
        held += [path for path in found if source.written_in_file(path)]
    for index, entry in enumerate(config.providers):
        provider = providers.get(entry.name) if entry.enabled else None
        provider_config = getattr(provider, "config", None)
        if isinstance(provider_config, ProviderConfig):
            held += provider_secret_paths(config, index, provider_config)
            key_files += provider_key_files(config, index, provider_config)
    warnings = []
    if held and source.mode is not None and source.mode & _TOO_OPEN:
        names = ", ".join(format_path(source.original(path)) for path in held)
        warnings.append(
            f"permissions {source.mode:04o} for {source.name!r} are too open: it holds {names}, which other "
            "users may read; chmod 600 it (or take the secrets from ${VAR})"
        )
    if config.tokens.private_key_file is not None:
        key_files.insert(0, (("tokens", "private_key_file"), config.tokens.private_key_file))
    for path, file in key_files:
        mode = _mode(file)
        if mode is not None and mode & _TOO_OPEN:
            warnings.append(
                f"permissions {mode:04o} for {str(file)!r} are too open: it is {format_path(source.original(path))} "
                f"({source.where(path)}) and holds a secret other users may read; chmod 600 it"
            )
    return warnings


def _mode(file: Path) -> int | None:
    try:
        return stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return None  # reading it reports the problem


def located(source: ConfigSource, path: KeyPath, exc: ConfigError) -> ConfigError:
    """*exc* with the file, line and key path of *path* in front, unless it already names the file."""
    message = exc.message
    if message.startswith((f"{source.name},", f"{source.name}:")):
        return exc
    message = message.removeprefix(f"{format_path(path)}: ")  # "sessions.store: ..." says it once
    error = type(exc)(f"{source.where(path)}: {message}")
    error.__cause__ = exc.__cause__
    return error
