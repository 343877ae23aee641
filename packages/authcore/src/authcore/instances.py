"""Starting the provider instances a configuration enables.

Each instance's class is found (installed type or ``class:``, where a py-ispyb plugin class
is adapted by :mod:`authcore.compat.pyispyb`), refused when it is for
development only and the configuration is for production, given its validated settings and
started. Every failure is a :class:`~authcore.errors.ConfigError` naming the file, line and
key path of the instance, like the schema's own errors.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from .config import AuthcoreConfig
from .config.checks import check_provider_config, located, no_provider_error
from .errors import AuthError, ConfigError
from .plugins import ProviderRegistry
from .providers import Provider

__all__ = ["start_providers"]

log = logging.getLogger("authcore")


def start_providers(config: AuthcoreConfig, registry: ProviderRegistry, started: dict[str, Provider]) -> None:
    """Start every enabled instance into *started* (by name), in configuration order.

    *started* is filled as instances start, so the caller can close those already started
    when a later one fails. No enabled instance at all is a :class:`ConfigError`.
    """
    for index, entry in enumerate(config.providers):
        if entry.enabled:
            started[entry.name] = _start_provider(config, registry, index)
    if not started:
        raise no_provider_error(config)


def _start_provider(config: AuthcoreConfig, registry: ProviderRegistry, index: int) -> Provider:
    entry = config.providers[index]
    source = config.source
    try:
        if entry.class_ is not None:
            # Deferred: only configurations that name a class pay for the py-ispyb adapter's import.
            # A py-ispyb plugin class (any base) comes back wrapped as a provider.
            from .compat.pyispyb import load_provider_class

            cls = load_provider_class(entry.class_)
        else:
            assert entry.type is not None
            cls = registry.get(entry.type)
    except ConfigError as exc:
        raise located(source, ("providers", index, "type" if entry.class_ is None else "class"), exc) from None
    if config.production and cls.development_only:
        key = "class" if entry.class_ is not None else "type" if "type" in entry.model_fields_set else "name"
        raise source.error(
            ("providers", index, key),
            f"provider {entry.name!r} (type {cls.type!r}) is for development only and is refused with production: true",
        )
    try:
        provider_config = cls.Config.model_validate(entry.config)
    except ValidationError as exc:
        raise source.validation_error(exc, ("providers", index, "config")) from None
    # Production refuses what production_issues() names; development warns once on TLS verification off.
    check_provider_config(config, index, provider_config, log)
    try:
        return cls(entry.name, provider_config)
    except ConfigError as exc:
        raise located(source, ("providers", index), exc) from None
    except AuthError:
        raise
    except Exception as exc:
        raise source.error(
            ("providers", index), f"provider {entry.name!r} failed to start: {type(exc).__name__}"
        ) from exc
