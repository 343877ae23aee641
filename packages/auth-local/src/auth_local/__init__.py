"""auth-local: the ``local`` provider for authcore, users stored by the service itself.

Install with ``pip install authcore auth-local`` (our wheels; see the README; add
``auth-local[postgresql]`` for PostgreSQL) and configure ``type: local``::

    providers:
      - name: users
        type: local
        config:
          database_url: sqlite:////var/lib/authcore/users.db   # or postgresql+psycopg://...
          registration: open
          second_factor: {required_groups: [admins]}           # TOTP, optional for others
    permissions:
      groups: {admins: ["users:admin"]}

The tables are created and upgraded by alembic when the provider starts (``migrate: true``).
"""

from __future__ import annotations

from collections.abc import Callable

from authcore import Provider, hookimpl

from .config import LocalConfig
from .fields import login_key
from .hashing import PasswordHasher
from .policy import PasswordPolicy, PasswordRefused
from .provider import LocalProvider

__all__ = [
    "LocalProvider",
    "LocalConfig",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordRefused",
    "login_key",
    "authcore_register_providers",
]
__version__ = "0.1.0"


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`LocalProvider` as provider type ``local``."""
    register(LocalProvider)
