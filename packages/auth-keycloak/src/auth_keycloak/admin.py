"""User management through python-keycloak's ``KeycloakAdmin``: one client, built lazily, reused.

python-keycloak's admin client keeps its access token and headers on one connection
object and refreshes them in place, so it is not safe to use from several threads at
once; :class:`AdminClient` serialises calls with a lock. User management is rare next to
logins and token checks, so the lock costs nothing that matters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from authcore import AuthError, Identity, NewUser, UserNotFound, UserUpdate

from .config import KeycloakConfig
from .errors import UnknownRole, admin_error

if TYPE_CHECKING:
    from keycloak import KeycloakAdmin

__all__ = ["AdminClient"]

T = TypeVar("T")


class AdminClient:
    """The admin side of one provider."""

    def __init__(self, name: str, config: KeycloakConfig, identity: Callable[[dict[str, Any]], Identity]) -> None:
        self._name = name
        self._config = config
        self._to_identity = identity
        self._lock = threading.RLock()
        self._admin: KeycloakAdmin | None = None

    def _client(self) -> KeycloakAdmin:
        if self._admin is None:
            from keycloak import KeycloakAdmin

            config = self._config
            secret = config.client_secret.get_secret_value() if config.client_secret else None
            timeout: Any = config.timeout  # python-keycloak annotates int; requests takes float
            if config.admin_username is not None:
                assert config.admin_password is not None
                self._admin = KeycloakAdmin(
                    server_url=config.base_url,
                    username=config.admin_username,
                    password=config.admin_password.get_secret_value(),
                    realm_name=config.realm_name,
                    user_realm_name=config.admin_realm or config.realm_name,
                    client_id=config.admin_client_id or "admin-cli",
                    verify=config.verify_argument(),
                    timeout=timeout,
                    max_retries=0,
                )
            else:
                if secret is None:
                    raise AuthError(f"provider {self._name!r}: user management needs client_secret or admin_username")
                self._admin = KeycloakAdmin(
                    server_url=config.base_url,
                    realm_name=config.realm_name,
                    user_realm_name=config.admin_realm or config.realm_name,
                    client_id=config.admin_client_id or config.client_id,
                    client_secret_key=secret,
                    grant_type="client_credentials",
                    verify=config.verify_argument(),
                    timeout=timeout,
                    max_retries=0,
                )
        return self._admin

    def _call(self, operation: Callable[[KeycloakAdmin], T], *, subject: str = "user") -> T:
        from keycloak.exceptions import KeycloakError

        with self._lock:
            try:
                return operation(self._client())
            except KeycloakError as exc:
                raise admin_error(exc, self._name, subject=subject) from None
            except (TypeError, KeyError, ValueError) as exc:  # an answer of the wrong shape
                raise admin_error(exc, self._name) from None

    def _user_id(self, admin: KeycloakAdmin, login: str) -> str:
        user_id = admin.get_user_id(login)
        if user_id is None:
            raise UserNotFound()
        return user_id

    # ------------------------------------------------------------ operations

    def list_users(self, search: str | None, limit: int, offset: int) -> list[Identity]:
        """One page of users (roles and groups are not fetched per user)."""
        query: dict[str, Any] = {"first": max(0, offset), "max": max(0, limit)}
        if search:
            query["search"] = search
        users = self._call(lambda admin: admin.get_users(query))
        return [self._to_identity(user) for user in users][:limit]

    def get_user(self, login: str) -> Identity:
        """One user with realm roles and groups."""

        def fetch(admin: KeycloakAdmin) -> dict[str, Any]:
            user_id = self._user_id(admin, login)
            user = dict(admin.get_user(user_id))
            user["realmRoles"] = [r["name"] for r in admin.get_realm_roles_of_user(user_id)]
            user["groups"] = [g.get("path") or g["name"] for g in admin.get_user_groups(user_id)]
            return user

        return self._to_identity(self._call(fetch))

    def create_user(self, user: NewUser, temporary: bool) -> None:
        """Create *user* (and give it its roles)."""
        payload: dict[str, Any] = {"username": user.login, "enabled": user.enabled}
        payload.update(_profile(user.given_name, user.family_name, user.email, user.display_name, user.attributes))
        if user.password is not None:
            payload["credentials"] = [
                {"type": "password", "value": user.password.get_secret_value(), "temporary": temporary}
            ]
        self._call(lambda admin: admin.create_user(payload))
        if user.roles:
            self.change_roles(user.login, user.roles, add=True)

    def update_user(self, login: str, changes: UserUpdate) -> None:
        """Change profile fields."""
        payload = _profile(
            changes.given_name, changes.family_name, changes.email, changes.display_name, changes.attributes
        )
        self._call(lambda admin: admin.update_user(self._user_id(admin, login), payload))

    def set_enabled(self, login: str, enabled: bool) -> None:
        """Enable or disable the user."""
        self._call(lambda admin: admin.update_user(self._user_id(admin, login), {"enabled": enabled}))

    def delete_user(self, login: str) -> None:
        """Delete the user."""
        self._call(lambda admin: admin.delete_user(self._user_id(admin, login)))

    def set_password(self, login: str, password: str, temporary: bool) -> None:
        """Reset the user's password."""
        self._call(lambda admin: admin.set_user_password(self._user_id(admin, login), password, temporary=temporary))

    def change_roles(self, login: str, names: Sequence[str], *, add: bool) -> None:
        """Add or remove realm roles and group memberships; a name that is neither raises UnknownRole."""

        def change(admin: KeycloakAdmin) -> None:
            from keycloak.exceptions import KeycloakGetError

            user_id = self._user_id(admin, login)
            roles: list[dict[str, Any]] = []
            groups: list[str] = []
            for name in names:
                if not name.startswith("/"):
                    try:
                        roles.append(admin.get_realm_role(name))
                        continue
                    except KeycloakGetError as exc:
                        if getattr(exc, "response_code", None) != 404:
                            raise
                try:
                    groups.append(admin.get_group_by_path("/" + name.lstrip("/"))["id"])
                except KeycloakGetError as exc:
                    if getattr(exc, "response_code", None) == 404:
                        raise UnknownRole() from None
                    raise
            if roles:
                if add:
                    admin.assign_realm_roles(user_id, roles)
                else:
                    admin.delete_realm_roles_of_user(user_id, roles)
            for group_id in groups:
                if add:
                    admin.group_user_add(user_id, group_id)
                else:
                    admin.group_user_remove(user_id, group_id)

        self._call(change)

    def close(self) -> None:
        """Drop the admin client."""
        with self._lock:
            self._admin = None


def _profile(
    given_name: str | None,
    family_name: str | None,
    email: str | None,
    display_name: str | None,
    attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if given_name is not None:
        payload["firstName"] = given_name
    if family_name is not None:
        payload["lastName"] = family_name
    if email is not None:
        payload["email"] = email
    extra: dict[str, list[str]] = {}
    for key, value in (attributes or {}).items():
        extra[str(key)] = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    if display_name is not None:
        extra["displayName"] = [display_name]
    if extra:
        payload["attributes"] = extra
    return payload
