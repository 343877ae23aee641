"""The fps module Jupyverse starts: entry point ``auth_authcore`` in ``jupyverse.modules``.

It publishes :class:`~.backend.AuthcoreAuth` as Jupyverse's ``Auth`` (every other plugin asks
for it) and its settings as ``AuthConfig``, and closes the authcore manager when Jupyverse stops.
"""

from __future__ import annotations

from typing import Any

from fps import Module
from jupyverse_api.app import App
from jupyverse_auth import Auth, AuthConfig

from authcore import AuthManager
from authcore.errors import ConfigError

from .backend import AuthcoreAuth
from .claims import DisplayNameClaim
from .config import AuthcoreAuthConfig
from .profiles import ProfileStore, default_directory

__all__ = ["AuthcoreModule"]


class AuthcoreModule(Module):
    """Jupyverse's auth module backed by authcore (``--set auth_authcore.config_file=authcore.yml``)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name)
        self.config = AuthcoreAuthConfig(**kwargs)

    async def prepare(self) -> None:
        """Load the authcore configuration, start its providers, publish ``Auth`` and ``AuthConfig``."""
        if not self.config.config_file:
            raise ConfigError(
                f"{self.name}: no authcore configuration; start Jupyverse with "
                f"--set {self.name}.config_file=/path/to/authcore.yml"
            )
        self.put(self.config, AuthConfig)
        app = await self.get(App)
        manager = AuthManager.from_file(self.config.config_file)
        self.add_teardown_callback(manager.close)
        # Before any login: tokens then carry the display name Jupyverse shows.
        manager.plugins.register(DisplayNameClaim())
        profiles = ProfileStore(self.config.directory or default_directory())
        self.put(AuthcoreAuth(app, manager, self.config, profiles), Auth)
