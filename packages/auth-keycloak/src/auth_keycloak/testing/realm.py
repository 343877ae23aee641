"""The state of the test server: realms, clients, users, roles, groups, keys, sessions; and JWT signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["Realm", "Client", "User", "Group", "Role", "SigningKey", "Session", "sign_jwt", "b64url", "LOGOUT_EVENT"]

#: The ``events`` member of an OpenID Connect back-channel logout token.
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_DEFAULT_ROLES = ("offline_access", "uma_authorization")
_ACCOUNT_ROLES = ("manage-account", "manage-account-links", "view-profile")
_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_POOL_LOCK = threading.Lock()


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Lenient base64url decoding (the server reads its own tokens)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign_jwt(
    claims: dict[str, Any],
    *,
    alg: str = "RS256",
    key: rsa.RSAPrivateKey | bytes | None = None,
    kid: str | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A compact JWS: RS256/384/512 with an RSA key, HS256/384/512 with bytes, or ``none``."""
    head: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        head["kid"] = kid
    if header:
        head.update(header)
        head = {k: v for k, v in head.items() if v is not None}
    signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    if alg == "none":
        signature = b""
    elif alg.startswith("HS"):
        assert isinstance(key, bytes)
        signature = hmac.new(key, signing_input, getattr(hashlib, "sha" + alg[2:])).digest()
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if alg.startswith("PS"):
            pad = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        signature = key.sign(signing_input, pad, digest)
    return signing_input.decode() + "." + b64url(signature)


@dataclass
class SigningKey:
    """One RSA key of a realm."""

    kid: str
    private: rsa.RSAPrivateKey
    alg: str = "RS256"

    def jwk(self) -> dict[str, Any]:
        """The public JWK as Keycloak's certs endpoint lists it."""
        numbers = self.private.public_key().public_numbers()
        return {
            "kid": self.kid,
            "kty": "RSA",
            "alg": self.alg,
            "use": "sig",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    def public_key_b64(self) -> str:
        """base64 DER SubjectPublicKeyInfo (the realm info's ``public_key``)."""
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def public_pem(self) -> bytes:
        """The public key in PEM (what an HS256-confusion attacker would use as the HMAC secret)."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Client:
    """A client of a realm."""

    client_id: str
    secret: str | None = None
    redirect_uris: list[str] = field(default_factory=lambda: ["*"])
    #: Extra ``aud`` values (an audience mapper); ``["self"]`` is shorthand for the client id.
    audience: list[str] = field(default_factory=list)
    direct_access: bool = True
    service_account: bool = False
    service_account_user_id: str | None = None
    #: Keycloak's "Use 'at+jwt' as access token header type" (RFC 9068) client setting: access
    #: tokens issued through this client say ``typ: at+jwt`` in their header instead of ``JWT``.
    rfc9068_header: bool = False

    @property
    def public(self) -> bool:
        """A public client has no secret."""
        return self.secret is None

    def allows_redirect(self, uri: str) -> bool:
        """Whether *uri* fits one of the registered redirect URIs (a trailing ``*`` is a wildcard)."""
        for pattern in self.redirect_uris:
            if pattern.endswith("*") and uri.startswith(pattern[:-1]):
                return True
            if uri == pattern:
                return True
        return False


@dataclass
class User:
    """A user of a realm."""

    id: str
    username: str
    password: str | None = None
    enabled: bool = True
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    realm_roles: set[str] = field(default_factory=set)
    client_roles: dict[str, set[str]] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)  # group ids
    attributes: dict[str, list[str]] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time() * 1000))
    service_account_client: str | None = None
    temporary_password: bool = False

    def representation(self) -> dict[str, Any]:
        """Keycloak's UserRepresentation."""
        data: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "enabled": self.enabled,
            "emailVerified": bool(self.email),
            "createdTimestamp": self.created,
            "totp": False,
            "requiredActions": ["UPDATE_PASSWORD"] if self.temporary_password else [],
            "notBefore": 0,
        }
        if self.email is not None:
            data["email"] = self.email
        if self.first_name is not None:
            data["firstName"] = self.first_name
        if self.last_name is not None:
            data["lastName"] = self.last_name
        if self.attributes:
            data["attributes"] = self.attributes
        return data


@dataclass
class Role:
    """A realm role."""

    id: str
    name: str
    description: str = ""

    def representation(self, realm_id: str) -> dict[str, Any]:
        """Keycloak's RoleRepresentation."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "composite": self.name.startswith("default-roles-"),
            "clientRole": False,
            "containerId": realm_id,
        }


@dataclass
class Group:
    """A group (possibly a subgroup)."""

    id: str
    name: str
    parent: str | None = None


@dataclass
class Session:
    """A user session (``sid``)."""

    id: str
    user_id: str
    client_id: str
    started: float = field(default_factory=time.time)
    active: bool = True


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    nonce: str | None
    session_id: str
    scope: str
    expires: float


class Realm:
    """One realm: build it with :meth:`add_client`, :meth:`add_user`, :meth:`add_role`, :meth:`add_group`.

    ``issuer`` is the ``iss`` of its tokens. All methods are safe to call while the
    server runs.
    """

    def __init__(self, name: str, issuer: str, *, access_lifespan: int = 300, refresh_lifespan: int = 1800) -> None:
        self.name = name
        self.id = str(uuid.uuid4())
        self.issuer = issuer
        self.access_lifespan = access_lifespan
        self.refresh_lifespan = refresh_lifespan
        self.lock = threading.RLock()
        self.keys: list[SigningKey] = []
        self.active_kid = ""
        self.hmac_secret = secrets.token_bytes(32)
        self.clients: dict[str, Client] = {}
        self.users: dict[str, User] = {}
        self.roles: dict[str, Role] = {}
        self.groups: dict[str, Group] = {}
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, _Code] = {}
        for role in (f"default-roles-{name}", *_DEFAULT_ROLES):
            self.add_role(role)
        self.add_client("admin-cli")
        self.add_client("account")
        self.rotate_keys()

    # ------------------------------------------------------------ keys

    @property
    def active_key(self) -> SigningKey:
        """The key new tokens are signed with."""
        return next(k for k in self.keys if k.kid == self.active_kid)

    def rotate_keys(self, *, drop_old: bool = False) -> SigningKey:
        """Add a new RSA key and make it the active one (old keys stay in the JWKS unless *drop_old*)."""
        with _KEY_POOL_LOCK:
            private = _KEY_POOL.pop() if _KEY_POOL else None
        key = SigningKey(kid=b64url(secrets.token_bytes(24)), private=private or _new_rsa_key())
        with self.lock:
            if drop_old:
                self.keys = []
            self.keys.append(key)
            self.active_kid = key.kid
        return key

    def jwks(self) -> dict[str, Any]:
        """The certs document."""
        with self.lock:
            return {"keys": [k.jwk() for k in self.keys]}

    def key(self, kid: str) -> SigningKey | None:
        """A key by id."""
        return next((k for k in self.keys if k.kid == kid), None)

    def sign(
        self,
        claims: dict[str, Any],
        *,
        alg: str = "RS256",
        key: rsa.RSAPrivateKey | bytes | None = None,
        kid: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """Sign *claims* with the active key (or the *key*/*kid*/*alg* given: for forging tokens in tests)."""
        active = self.active_key
        if key is None and alg.startswith(("RS", "PS")):
            key = active.private
        return sign_jwt(claims, alg=alg, key=key, kid=active.kid if kid is None else kid, header=header)

    # ------------------------------------------------------------ building

    def add_client(
        self,
        client_id: str,
        secret: str | None = None,
        *,
        redirect_uris: list[str] | None = None,
        audience: list[str] | None = None,
        direct_access: bool = True,
        service_account_roles: dict[str, list[str]] | None = None,
        rfc9068_header: bool = False,
    ) -> Client:
        """A client; *secret* makes it confidential. *service_account_roles* (``{"realm-management":
        ["manage-users"]}``, realm roles under ``""``) enables its service account; *rfc9068_header*
        makes its access tokens say ``typ: at+jwt`` in the header."""
        client = Client(
            client_id=client_id,
            secret=secret,
            redirect_uris=redirect_uris if redirect_uris is not None else ["*"],
            audience=audience or [],
            direct_access=direct_access,
            rfc9068_header=rfc9068_header,
        )
        if service_account_roles is not None:
            user = self.add_user(f"service-account-{client_id}", None)
            user.service_account_client = client_id
            for client_name, names in service_account_roles.items():
                if client_name:
                    user.client_roles.setdefault(client_name, set()).update(names)
                else:
                    user.realm_roles.update(names)
            client.service_account = True
            client.service_account_user_id = user.id
        with self.lock:
            self.clients[client_id] = client
        return client

    def add_role(self, name: str, description: str = "") -> Role:
        """A realm role."""
        with self.lock:
            role = self.roles.get(name)
            if role is None:
                role = self.roles[name] = Role(id=str(uuid.uuid4()), name=name, description=description)
            return role

    def add_group(self, name: str, parent: str | None = None) -> Group:
        """A group, or a subgroup of the group with id *parent*."""
        with self.lock:
            group = Group(id=str(uuid.uuid4()), name=name, parent=parent)
            self.groups[group.id] = group
            return group

    def group_path(self, group: Group) -> str:
        """``/parent/child``."""
        names = [group.name]
        while group.parent is not None:
            group = self.groups[group.parent]
            names.append(group.name)
        return "/" + "/".join(reversed(names))

    def group_by_path(self, path: str) -> Group | None:
        """The group at *path*."""
        wanted = "/" + path.strip("/")
        return next((g for g in self.groups.values() if self.group_path(g) == wanted), None)

    def add_user(
        self,
        username: str,
        password: str | None = "password",
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        realm_roles: list[str] | tuple[str, ...] = (),
        client_roles: dict[str, list[str]] | None = None,
        groups: list[str] | tuple[str, ...] = (),
        enabled: bool = True,
    ) -> User:
        """A user; roles and groups (by name or path) are created as needed."""
        user = User(
            id=str(uuid.uuid4()),
            username=username.lower(),
            password=password,
            enabled=enabled,
            email=email,
            first_name=first_name,
            last_name=last_name,
        )
        with self.lock:
            for role in realm_roles:
                self.add_role(role)
            user.realm_roles = {f"default-roles-{self.name}", *realm_roles}
            user.client_roles = {k: set(v) for k, v in (client_roles or {}).items()}
            for name in groups:
                group = self.group_by_path(name) or self.add_group(name.strip("/"))
                user.groups.add(group.id)
            self.users[user.id] = user
        return user

    def user_by_name(self, username: str) -> User | None:
        """A user by (case-insensitive) user name."""
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username == wanted), None)

    # ------------------------------------------------------------ tokens

    def effective_realm_roles(self, user: User) -> list[str]:
        """Realm roles with the default composite expanded."""
        roles = set(user.realm_roles)
        if f"default-roles-{self.name}" in roles:
            roles.update(_DEFAULT_ROLES)
        return sorted(roles)

    def start_session(self, user: User, client_id: str) -> Session:
        """A new user session."""
        session = Session(id=str(uuid.uuid4()), user_id=user.id, client_id=client_id)
        with self.lock:
            self.sessions[session.id] = session
        return session

    def end_sessions(self, user_id: str) -> None:
        """End every session of a user."""
        with self.lock:
            for session in self.sessions.values():
                if session.user_id == user_id:
                    session.active = False

    def access_claims(self, user: User, client: Client, session: Session | None, scope: str) -> dict[str, Any]:
        """The claims of an access token Keycloak would issue."""
        now = int(time.time())
        audience = [*(["account"] if user.service_account_client is None else []), *client.audience]
        resource_access: dict[str, Any] = {k: {"roles": sorted(v)} for k, v in user.client_roles.items() if v}
        if user.service_account_client is None:
            resource_access["account"] = {"roles": list(_ACCOUNT_ROLES)}
        claims: dict[str, Any] = {
            "exp": now + self.access_lifespan,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "sub": user.id,
            "typ": "Bearer",
            "azp": client.client_id,
            "acr": "1",
            "realm_access": {"roles": self.effective_realm_roles(user)},
            "resource_access": resource_access,
            "scope": scope,
            "email_verified": bool(user.email),
            "preferred_username": user.username,
        }
        if audience:
            claims["aud"] = audience[0] if len(audience) == 1 else audience
        if session is not None:
            claims["sid"] = session.id
            claims["session_state"] = session.id
        names = [n for n in (user.first_name, user.last_name) if n]
        if names:
            claims["name"] = " ".join(names)
        if user.first_name:
            claims["given_name"] = user.first_name
        if user.last_name:
            claims["family_name"] = user.last_name
        if user.email:
            claims["email"] = user.email
        claims["groups"] = sorted(self.group_path(self.groups[g]) for g in user.groups if g in self.groups)
        return claims

    def token_response(
        self,
        user: User,
        client: Client,
        session: Session | None,
        scope: str = "openid",
        *,
        nonce: str | None = None,
        access_overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A token endpoint reply: access token, refresh token (with a session), ID token (with openid)."""
        scopes = scope.split()
        if "openid" in scopes:
            scopes = ["openid", *sorted(set(scopes) - {"openid"} | {"email", "profile"})]
        scope = " ".join(scopes) or "profile email"
        claims = self.access_claims(user, client, session, scope)
        claims.update(access_overrides or {})
        now = int(time.time())
        reply: dict[str, Any] = {
            "access_token": self.sign(claims, header={"typ": "at+jwt"} if client.rfc9068_header else None),
            "expires_in": self.access_lifespan,
            "refresh_expires_in": self.refresh_lifespan if session is not None else 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        if session is not None:
            refresh = {
                "exp": now + self.refresh_lifespan,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "iss": self.issuer,
                "aud": self.issuer,
                "sub": user.id,
                "typ": "Refresh",
                "azp": client.client_id,
                "sid": session.id,
                "session_state": session.id,
                "scope": scope,
            }
            reply["refresh_token"] = sign_jwt(refresh, alg="HS256", key=self.hmac_secret, kid="hmac-" + self.id)
            reply["session_state"] = session.id
        if "openid" in scopes:
            id_claims = {
                k: v
                for k, v in claims.items()
                if k not in ("realm_access", "resource_access", "scope", "aud", "typ", "groups")
            }
            id_claims.update(typ="ID", aud=client.client_id, auth_time=now, jti=str(uuid.uuid4()))
            if nonce is not None:
                id_claims["nonce"] = nonce
            if session is not None:
                id_claims["sid"] = session.id
            reply["id_token"] = self.sign(id_claims)
        return reply

    def logout_token(
        self, user: User, client: Client, session: Session | None, *, header_typ: str = "logout+jwt"
    ) -> str:
        """A back-channel logout token as Keycloak posts it to *client*'s logout URL (claim ``typ``
        ``Logout``, the logout event in ``events``; header ``typ`` ``logout+jwt`` as in current Keycloak,
        older ones said ``JWT``)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iat": now,
            "exp": now + self.access_lifespan,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": client.client_id,
            "sub": user.id,
            "typ": "Logout",
            "events": {LOGOUT_EVENT: {}},
        }
        if session is not None:
            claims["sid"] = session.id
        return self.sign(claims, header={"typ": header_typ})

    def issue(
        self,
        username: str,
        client_id: str,
        *,
        scope: str = "openid",
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Tokens for *username* through *client_id* without HTTP (a session is started), for tests."""
        user = self.user_by_name(username)
        client = self.clients[client_id]
        assert user is not None, username
        return self.token_response(user, client, self.start_session(user, client_id), scope, access_overrides=overrides)

    def decode(self, token: str, *, refresh: bool = False) -> dict[str, Any] | None:
        """The claims of a token this realm signed and that has not expired; ``None`` otherwise."""
        try:
            head_b64, body_b64, sig_b64 = token.split(".")
            header = json.loads(b64url_decode(head_b64))
            claims = json.loads(b64url_decode(body_b64))
            signature = b64url_decode(sig_b64)
        except (ValueError, TypeError):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        signing_input = f"{head_b64}.{body_b64}".encode()
        if refresh:
            if header.get("alg") != "HS256":
                return None
            expected = hmac.new(self.hmac_secret, signing_input, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                return None
        else:
            key = self.key(str(header.get("kid"))) if header.get("alg") == "RS256" else None
            if key is None:
                return None
            try:
                key.private.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except Exception:
                return None
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int | float):
            return None
        if time.time() > claims["exp"]:
            return None
        return claims

    def session_active(self, claims: dict[str, Any]) -> bool:
        """Whether the session a token names (if any) is still active, and its user enabled."""
        sid = claims.get("sid")
        user = self.users.get(str(claims.get("sub")))
        if user is None or not user.enabled:
            return False
        if sid is None:
            return True
        session = self.sessions.get(str(sid))
        return session is not None and session.active

    def new_code(
        self,
        client_id: str,
        redirect_uri: str,
        challenge: str | None,
        method: str | None,
        nonce: str | None,
        session: Session,
        scope: str,
    ) -> str:
        """An authorization code, valid once for 60 seconds."""
        code = b64url(secrets.token_bytes(24)) + "." + session.id
        with self.lock:
            self.codes[code] = _Code(
                client_id, redirect_uri, challenge, method, nonce, session.id, scope, time.time() + 60
            )
        return code
