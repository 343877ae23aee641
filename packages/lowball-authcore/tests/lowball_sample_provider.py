"""A lowball auth provider written the way lowball's documentation shows ("Implementing Your Own
Authentication Provider"): users and roles in memory, from the ``auth_provider`` config mapping.

The tests load it into authcore by ``"lowball_sample_provider:SampleAuthProvider"``; the conftest
puts this directory on ``sys.path`` for that. Only lowball's public classes are used.
"""

from __future__ import annotations

import threading
from typing import Any

from lowball.exceptions import InvalidCredentialsException, NotFoundException
from lowball.models.authentication_models import ClientData
from lowball.models.provider_models.auth_provider import AuthPackage, AuthProvider, CreateClientPackage


class SampleAuthPackage(AuthPackage):
    def __init__(self, username, password, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError("username and password must be strings")
        self.username = username
        self.password = password


class SampleCreateClientPackage(CreateClientPackage):
    def __init__(self, client_id, password, roles=None, **kwargs):
        super().__init__(**kwargs)
        self.client_id = client_id
        self.password = password
        self.roles = list(roles or [])


class SampleAuthProvider(AuthProvider):
    """users: {client_id: {"password": ..., "roles": [...], "enabled": bool}}; bind_password: unused,
    there to prove that a configured secret never shows."""

    def __init__(self, users=None, bind_password=None, **kwargs):
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any]] = {
            cid: {"password": u["password"], "roles": list(u.get("roles", [])), "enabled": u.get("enabled", True)}
            for cid, u in (users or {}).items()
        }
        self._bind_password = bind_password

    @property
    def auth_package_class(self):
        return SampleAuthPackage

    @property
    def create_client_package_class(self):
        return SampleCreateClientPackage

    def authenticate(self, auth_package):
        with self._lock:
            user = self._users.get(auth_package.username)
        if user is None or not user["enabled"] or user["password"] != auth_package.password:
            raise InvalidCredentialsException
        return ClientData(client_id=auth_package.username, roles=list(user["roles"]))

    def get_client(self, client_id):
        with self._lock:
            user = self._users.get(client_id)
        return None if user is None else ClientData(client_id=client_id, roles=list(user["roles"]))

    def list_clients(self):
        with self._lock:
            return [ClientData(client_id=cid, roles=list(u["roles"])) for cid, u in self._users.items()]

    def create_client(self, create_client_package):
        with self._lock:
            self._users[create_client_package.client_id] = {
                "password": create_client_package.password,
                "roles": create_client_package.roles,
                "enabled": True,
            }
        return ClientData(client_id=create_client_package.client_id, roles=create_client_package.roles)

    def _user(self, client_id):
        user = self._users.get(client_id)
        if user is None:
            raise NotFoundException(f"client {client_id} not found")
        return user

    def enable_client(self, client_id):
        with self._lock:
            self._user(client_id)["enabled"] = True

    def disable_client(self, client_id):
        with self._lock:
            self._user(client_id)["enabled"] = False

    def delete_client(self, client_id):
        with self._lock:
            self._user(client_id)
            del self._users[client_id]

    def add_roles(self, client_id, roles):
        with self._lock:
            user = self._user(client_id)
            user["roles"] = [*user["roles"], *(r for r in roles if r not in user["roles"])]

    def delete_roles(self, client_id, roles):
        with self._lock:
            user = self._user(client_id)
            user["roles"] = [r for r in user["roles"] if r not in roles]


class TokenAuthPackage(AuthPackage):
    def __init__(self, token, **kwargs):
        super().__init__(**kwargs)
        self.token = token


class SampleTokenAuthProvider(AuthProvider):
    """Logs in by API token; ``explode`` fails like a lost connection, ``garbage`` returns no ClientData."""

    def __init__(self, tokens=None, ready=True, **kwargs):
        super().__init__(**kwargs)
        self._tokens = dict(tokens or {})
        self._ready = ready

    @property
    def initialized(self):
        return self._ready

    @property
    def auth_package_class(self):
        return TokenAuthPackage

    def authenticate(self, auth_package):
        if auth_package.token == "explode":
            raise ConnectionError(f"directory down while checking {auth_package.token}")
        if auth_package.token == "garbage":
            return {"client_id": "garbage", "roles": []}
        if auth_package.token not in self._tokens:
            raise InvalidCredentialsException
        return ClientData(client_id=self._tokens[auth_package.token], roles=["api"])


class NotAProvider:
    """For the configuration test: a class that is not a lowball AuthProvider."""
