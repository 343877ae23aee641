"""lowball's ``/builtins/auth`` routes served by authcore (``web.lowball``), on every adapter.

A lowball front end or script keeps calling the routes and reading the answers it knows
(lowball 1.0's ``lowball/routes/builtins/auth.py``): ``POST /builtins/auth`` logs in and answers
``{"token", "token_data"}``; ``/tokens`` mints, lists and revokes a user's own tokens;
``/clients`` is user management. Each token is a *token's session* of authcore
(:mod:`authcore.session_control`): it lives ``token_life`` seconds with no idle expiry, its
roles are its authcore permissions, and revoking it ends that session on every instance that
shares the store. ``token_data`` is lowball's ``Token.to_dict()``: ``cid`` (client id), ``r``
(roles), ``cts``/``ets`` (created, expires: ``%Y-%m-%d %H:%M:%S`` UTC), ``rcid`` (issued by),
``tid`` (the token id: authcore's session id). Error bodies carry lowball's ``message`` beside
authcore's ``detail`` and ``code``.

Where authcore is stricter than lowball, on purpose:

* a non-admin mints tokens whose roles are a subset of the *calling token's* permissions (lowball
  allows the client's full roles from any of its tokens, so a restricted token could mint a
  broader one);
* ``POST /clients/create`` needs the admin role (lowball asks only for a login);
* ``/tokens/all`` lists and revokes by ``client_ids`` (required): sessions are indexed per user,
  and no store lists everybody's;
* listings hold live tokens only (``exclude_expired`` is accepted and always true).
"""

from __future__ import annotations

import datetime
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import ValidationError

from ..config.web import LowballRoutesConfig
from ..errors import BadRequest, ConfigError, Forbidden, NotSupported, TokenNotFound, UnsupportedMediaType
from ..manager import AuthManager
from ..models import Identity, LoginResult, VerifiedToken
from ..sessions import SessionRecord
from . import users as _users
from .common import LoginBody, is_json_content_type, parse_json, validation_problems
from .http import WebRequest, WebResponse
from .routes import Route

__all__ = ["LOWBALL_TABLE", "LowballRoutes", "lowball_routes", "query_all", "record_token_data"]

Operation = Callable[[WebRequest, VerifiedToken | None], WebResponse]
#: What a login through the route needs from the web core: throttled ``manager.login(lifetime=)``.
Login = Callable[[LoginBody, str | None, float], LoginResult]

#: method, path after ``web.lowball.prefix``, operation (``lowball_`` + it), status, guard. Fixed
#: paths come before ``{parameter}`` ones: FastAPI matches in order.
LOWBALL_TABLE: Final[tuple[tuple[str, str, str, int, str], ...]] = (
    ("POST", "", "login", 200, "public"),
    ("DELETE", "", "logout", 204, "user"),
    ("GET", "", "whoami", 200, "user"),
    ("GET", "/tokens", "list_tokens", 200, "user"),
    ("POST", "/tokens", "create_token", 201, "user"),
    ("DELETE", "/tokens", "revoke_own_tokens", 204, "user"),
    ("GET", "/tokens/all", "list_all_tokens", 200, "user"),
    ("DELETE", "/tokens/all", "revoke_all_tokens", 204, "user"),
    ("POST", "/tokens/cleanup", "cleanup_tokens", 204, "user"),
    ("GET", "/tokens/{token_id}", "get_token", 200, "user"),
    ("DELETE", "/tokens/{token_id}", "revoke_token", 204, "user"),
    ("GET", "/clients", "get_self", 200, "user"),
    ("POST", "/clients", "update_self", 200, "user"),
    ("POST", "/clients/create", "create_client", 201, "user"),
    ("POST", "/clients/register", "register", 201, "public"),
    ("GET", "/clients/all", "list_clients", 200, "user"),
    ("GET", "/clients/{client_id}", "get_client", 200, "user"),
    ("POST", "/clients/{client_id}", "update_client", 200, "user"),
    ("DELETE", "/clients/{client_id}", "delete_client", 204, "user"),
    ("POST", "/clients/{client_id}/enable", "enable_client", 204, "user"),
    ("POST", "/clients/{client_id}/disable", "disable_client", 204, "user"),
    ("DELETE", "/clients/{client_id}/roles", "remove_all_roles", 204, "user"),
    ("DELETE", "/clients/{client_id}/roles/{role}", "remove_role", 204, "user"),
    ("POST", "/clients/{client_id}/roles/{role}", "add_role", 204, "user"),
)

_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
#: authcore session ids (``secrets.token_urlsafe``) and lowball's 16-character ids both fit.
_TOKEN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MIN_TOKEN_LIFE: Final = 10  # lowball refuses shorter ones
_CLIENT_PAGE: Final = 1000


def lowball_routes(prefix: str) -> tuple[Route, ...]:
    """The rows of :data:`LOWBALL_TABLE` under *prefix* (not under ``web.prefix``)."""
    return tuple(
        Route(method, prefix + path, "lowball_" + operation, status, guard, prefixed=False)  # type: ignore[arg-type]
        for method, path, operation, status, guard in LOWBALL_TABLE
    )


def _stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime(_DATE_FORMAT)


def _token_data(
    login: str, roles: Any, created: float, expires: float, issued_by: str | None, token_id: str
) -> dict[str, Any]:
    return {
        "cid": login,
        "r": sorted(roles),
        "cts": _stamp(created),
        "ets": _stamp(expires),
        "rcid": issued_by or login,
        "tid": token_id,
    }


def record_token_data(record: SessionRecord) -> dict[str, Any]:
    """lowball's ``token_data`` of a session (a token's, or an interactive one)."""
    identity = record.identity
    attributes = identity.get("attributes")
    issued_by = attributes.get("issued_by") if isinstance(attributes, dict) else None
    expires = min(record.idle_expires_at, record.absolute_expires_at)
    roles = identity.get("permissions") or ()
    return _token_data(
        record.login,
        roles,
        record.created_at,
        expires,
        issued_by if isinstance(issued_by, str) else None,
        record.session_id,
    )


class LowballRoutes:
    """The operations of :data:`LOWBALL_TABLE` for one manager; :class:`~authcore.web.core.WebCore` binds them."""

    def __init__(self, manager: AuthManager, config: LowballRoutesConfig, login: Login) -> None:
        self.manager = manager
        self.config = config
        self._sign_in = login
        if config.max_token_life < _MIN_TOKEN_LIFE or config.default_token_life > config.max_token_life:
            raise ConfigError("web.lowball: default_token_life must lie between 10 s and max_token_life")

    def operation(self, name: str) -> Operation:
        """The callable serving ``lowball_<name>``."""
        method: Operation = getattr(self, "_" + name.removeprefix("lowball_"))
        return method

    @property
    def provider(self) -> str:
        """The provider instance logins and client management go to."""
        if self.config.provider is not None:
            return self.config.provider
        enabled = list(self.manager.providers)
        if len(enabled) != 1:
            raise BadRequest("web.lowball.provider is not set and more than one provider is enabled")
        return enabled[0]

    def _client_data(self, found: Identity | Mapping[str, Any]) -> dict[str, Any]:
        """lowball's ``ClientData.to_dict()``: ``client_id`` and ``roles``, the permissions a login
        would grant (what its tokens carry), plus the name fields that are set."""
        if not isinstance(found, Identity):  # a user-management answer (authcore.web.users)
            found = Identity.model_validate({k: v for k, v in found.items() if k in Identity.model_fields})
        data: dict[str, Any] = {"client_id": found.login, "roles": list(self.manager.permissions_for(found))}
        for name in ("given_name", "family_name", "email", "display_name"):
            value = getattr(found, name)
            if value:
                data[name] = value
        return data

    def _require_admin(self, caller: VerifiedToken | None) -> VerifiedToken:
        assert caller is not None
        if not caller.allows(self.config.admin_role):
            raise Forbidden(f"missing permission: {self.config.admin_role}")
        return caller

    # ----------------------------------------------------------------- login, whoami, logout

    def _login(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        if not is_json_content_type(request.header("content-type")):
            raise UnsupportedMediaType()
        data = parse_json(request.read_body())
        # lowball's default package is {username, password}; authcore's names are taken too.
        fields = {
            "plugin": self.provider,
            "login": data.get("username", data.get("login")),
            "password": data.get("password"),
            "token": data.get("token"),
        }
        body = login_body(fields)
        result = self._sign_in(body, request.client, self.config.default_token_life)
        token_data = _token_data(
            result.login,
            result.permissions,
            result.expires_at - result.expires_in,
            result.expires_at,
            None,
            result.session_id,
        )
        return WebResponse(json={"token": result.access_token, "token_data": token_data})

    def _whoami(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        record = self._own_record(caller, caller.session_id)
        if record is not None:
            return WebResponse(json=record_token_data(record))
        data = _token_data(
            caller.login, caller.permissions, caller.issued_at, caller.expires_at, None, caller.session_id
        )
        return WebResponse(json=data)

    def _logout(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        self.manager.end_session(caller.session_id)
        return WebResponse(status=204)

    # ----------------------------------------------------------------- tokens

    def _own_record(self, caller: VerifiedToken, token_id: str) -> SessionRecord | None:
        found = self.manager.sessions_of(caller.login, provider=caller.provider)
        return next((r for r in found if r.session_id == token_id), None)

    def _list_tokens(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        records = self.manager.sessions_of(caller.login, provider=caller.provider)
        return WebResponse(json=_filtered(records, query_all(request, "roles")))

    def _create_token(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        raw = request.read_body()
        data = parse_json(raw) if raw.strip() else {}
        admin = caller.allows(self.config.admin_role)
        client_id = data.get("client_id") or caller.login
        if not isinstance(client_id, str) or len(client_id) > 256:
            raise BadRequest("client_id must be a string")
        roles = data.get("roles") or []
        if not isinstance(roles, list) or len(roles) > 100 or not all(isinstance(r, str) and r for r in roles):
            raise BadRequest("roles must be a list of strings")
        life = self._token_life(data.get("token_life"))
        if not admin:
            if client_id != caller.login:
                raise Forbidden("Unable to create tokens for another client")
            if not all(caller.allows(role) for role in roles):
                raise Forbidden("Unable to create token with requested roles")
        provider = caller.provider if client_id == caller.login else self.provider
        identity = Identity(
            login=client_id,
            provider=provider,
            permissions=tuple(sorted(set(roles))),
            attributes={"issued_by": caller.login},
        )
        result = self.manager.issue_token(identity, lifetime=life)
        token_data = _token_data(
            client_id, roles, result.expires_at - result.expires_in, result.expires_at, caller.login, result.session_id
        )
        return WebResponse(status=201, json={"token": result.access_token, "token_data": token_data})

    def _token_life(self, value: Any) -> float:
        maximum = self.config.max_token_life
        if value is None:
            return self.config.default_token_life
        refusal = BadRequest(f"token_life must be a whole number of seconds from {_MIN_TOKEN_LIFE} to {int(maximum)}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise refusal
        try:
            life = int(value)
        except (ValueError, OverflowError):
            raise refusal from None
        if not math.isfinite(float(life)) or life < _MIN_TOKEN_LIFE or life > maximum:
            raise refusal
        return float(life)

    def _revoke_own_tokens(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        self.manager.end_sessions_of(caller.login, provider=caller.provider)
        return WebResponse(status=204)

    def _clients_asked(self, request: WebRequest) -> list[str]:
        clients = query_all(request, "client_ids")
        if not clients:
            raise BadRequest("name the clients: client_ids=<id>[&client_ids=<id>...]")
        if len(clients) > 100:
            raise BadRequest("at most 100 client_ids")
        return clients

    def _list_all_tokens(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        records = [r for client in self._clients_asked(request) for r in self.manager.sessions_of(client)]
        return WebResponse(json=_filtered(records, query_all(request, "roles")))

    def _revoke_all_tokens(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        roles = query_all(request, "roles")
        for client in self._clients_asked(request):
            for record in self.manager.sessions_of(client):
                if not roles or set(roles).intersection(record.identity.get("permissions") or ()):
                    self.manager.end_session(record.session_id)
        return WebResponse(status=204)

    def _cleanup_tokens(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        self.manager.purge_sessions()
        return WebResponse(status=204)

    def _find_token(self, request: WebRequest, caller: VerifiedToken | None) -> SessionRecord:
        assert caller is not None
        token_id = request.params["token_id"]
        if not _TOKEN_ID.fullmatch(token_id):
            raise BadRequest("malformed token id")
        record = self.manager.session_record(token_id)
        if record is None or not record.active(time.time()):
            raise TokenNotFound()
        if not caller.allows(self.config.admin_role) and (record.login, record.provider) != (
            caller.login,
            caller.provider,
        ):
            raise Forbidden("Cannot access a token which you do not own")
        return record

    def _get_token(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        return WebResponse(json=record_token_data(self._find_token(request, caller)))

    def _revoke_token(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self.manager.end_session(self._find_token(request, caller).session_id)
        return WebResponse(status=204)

    # ----------------------------------------------------------------- clients (user management)

    def _users(self, request: WebRequest, operation: str, login: str | None = None) -> Any:
        body: Mapping[str, Any] | None = None
        if request.method == "POST":
            raw = request.read_body()
            body = parse_json(raw) if raw.strip() else {}
            if operation in ("create", "register") and "client_id" in body:
                body.setdefault("login", body.pop("client_id"))  # lowball's name for the login
        _status, payload = _users.run_operation(self.manager, operation, self.provider, login=login, body=body)
        return payload

    def _client(self, login: str) -> dict[str, Any]:
        _status, payload = _users.run_operation(self.manager, "get", self.provider, login=login)
        return self._client_data(payload)

    def _get_self(self, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        try:
            return WebResponse(json=self._client(caller.login))
        except NotSupported:  # no user management: what the token says
            return WebResponse(json={"client_id": caller.login, "roles": sorted(caller.permissions)})

    def _update_self(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        assert caller is not None
        return WebResponse(json=self._client_data(self._users(request, "self_update", caller.login)))

    def _create_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        return WebResponse(status=201, json=self._client_data(self._users(request, "create")))

    def _register(self, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
        return WebResponse(status=201, json=self._client_data(self._users(request, "register")))

    def _list_clients(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        users = self.manager.users(self.provider)
        found: list[Identity] = []
        while True:
            page = users.list_users(limit=_CLIENT_PAGE, offset=len(found))
            found.extend(page)
            if len(page) < _CLIENT_PAGE:
                break
        roles = set(query_all(request, "roles"))
        clients = [self._client_data(i) for i in found]
        return WebResponse(json=[c for c in clients if not roles or roles.intersection(c["roles"])])

    def _get_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        return WebResponse(json=self._client(request.params["client_id"]))

    def _update_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        return WebResponse(json=self._client_data(self._users(request, "update", request.params["client_id"])))

    def _client_change(self, request: WebRequest, caller: VerifiedToken | None, operation: str) -> WebResponse:
        self._require_admin(caller)
        client_id = request.params["client_id"]
        _users.run_operation(self.manager, operation, self.provider, login=client_id, body=None)
        return WebResponse(status=204)

    def _delete_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        return self._client_change(request, caller, "delete")

    def _enable_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        return self._client_change(request, caller, "enable")

    def _disable_client(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        return self._client_change(request, caller, "disable")

    def _roles(self, request: WebRequest, caller: VerifiedToken | None, operation: str, roles: list[str]) -> None:
        self._require_admin(caller)
        if roles:
            body = {"roles": roles}
            _users.run_operation(self.manager, operation, self.provider, login=request.params["client_id"], body=body)

    def _remove_all_roles(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._require_admin(caller)
        # The provider's own roles: a client's lowball roles are permissions, which no provider removes.
        roles = list(self.manager.users(self.provider).get_user(request.params["client_id"]).roles)
        self._roles(request, caller, "remove_roles", roles)
        return WebResponse(status=204)

    def _remove_role(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._roles(request, caller, "remove_roles", [request.params["role"]])
        return WebResponse(status=204)

    def _add_role(self, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
        self._roles(request, caller, "add_roles", [request.params["role"]])
        return WebResponse(status=204)


def query_all(request: WebRequest, name: str) -> list[str]:
    """Every value of query parameter *name* (``roles=a&roles=b``), as lowball reads them."""
    getlist = getattr(request.query, "getlist", None)
    values = getlist(name) if getlist is not None else [request.query[name]] if name in request.query else []
    return [str(v) for v in values if v]


def _filtered(records: list[SessionRecord], roles: list[str]) -> list[dict[str, Any]]:
    tokens = [record_token_data(r) for r in records]
    return [t for t in tokens if not roles or set(roles).intersection(t["r"])]


def login_body(fields: Mapping[str, Any]) -> LoginBody:
    """The login body as :class:`LoginBody`; 422 with the problems (never the input) when a field is wrong."""
    try:
        return LoginBody.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise BadRequest("the body is not valid", status_code=422, problems=validation_problems(exc)) from None
