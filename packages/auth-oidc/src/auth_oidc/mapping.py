"""Claims (of the ID token, the access token, the userinfo answer) → an authcore :class:`~authcore.Identity`.

* login: the first claim of ``login_claim`` that holds a usable string (1-256 printable
  characters);
* groups and roles: every dotted path of ``groups_claim`` / ``roles_claim``, each a string
  or a list of strings; ``strip_group_path`` keeps the last element of ``/a/b``;
  ``ignored_roles`` are left out (a trailing ``*`` matches a prefix);
* given/family/display name and e-mail from the standard claims when they are short
  printable strings; ``attributes`` is ``{"sub": ...}``.

Bounds: at most :data:`MAX_NAMES` groups and as many roles; a longer list refuses the token
rather than being cut (a cut could drop the very group ``denied_groups`` names). Names that
are not 1-256 printable characters are skipped.

A token (or answer) without a usable login raises :class:`~authcore.InvalidToken`: on the
bearer path that is a 401; the login paths turn it into the generic
:class:`~authcore.InvalidCredentials` and log a warning naming the claims looked for (a
configuration problem: ``login_claim`` or ``scope``), never their values.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from authcore import Identity, InvalidToken

from .presets import ClaimRules

__all__ = ["ClaimMapper", "MissingLogin", "MAX_NAMES", "lookup"]

#: Most groups (and most roles) an identity may have.
MAX_NAMES: Final = 1000
_MAX_TEXT: Final = 256
_MAX_EMAIL: Final = 320
_MISSING: Final = object()
#: Identities remembered by the raw claim values they were made of (a bound on memory).
MAX_REMEMBERED: Final = 4096


class MissingLogin(InvalidToken):
    """The claims hold none of the ``login_claim`` claims (or none usable)."""

    default_message = "token without a usable login claim"


def lookup(claims: dict[str, Any], path: str) -> Any:
    """The value at dotted *path* in *claims*; a claim named exactly *path* wins. ``None`` when absent."""
    value = claims.get(path, _MISSING)
    if value is not _MISSING:
        return value
    if "." not in path:
        return None
    node: Any = claims
    for part in path.split("."):
        if type(node) is not dict:
            return None
        node = node.get(part)
    return node


def _text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    if type(value) is str and 0 < len(value) <= limit and value.isprintable():
        return value
    return None


class ClaimMapper:
    """Maps claims to identities by one provider's :class:`~auth_oidc.presets.ClaimRules`."""

    def __init__(self, rules: ClaimRules, *, allowed_groups: tuple[str, ...], denied_groups: tuple[str, ...]) -> None:
        self.rules = rules
        self._ignored = frozenset(r for r in rules.ignored_roles if not r.endswith("*"))
        self._ignored_prefixes = tuple(r[:-1] for r in rules.ignored_roles if r.endswith("*"))
        self._allowed = frozenset(allowed_groups)
        self._denied = frozenset(denied_groups)
        # What an identity is made of: top-level claims read by name in one C-level map, then
        # the dotted paths (a nested login, groups or roles claim).
        paths = (*rules.login_claim, *rules.groups_claim, *rules.roles_claim)
        self._flat: tuple[str, ...] = ("sub", "given_name", "family_name", "email", "name")
        self._flat += tuple(p for p in paths if "." not in p)
        self._dotted = tuple(p for p in paths if "." in p)
        # sub -> (the raw values, the identity made of them): see _values.
        self._known: dict[Any, tuple[list[Any], Identity]] = {}

    def login_of(self, claims: dict[str, Any]) -> str | None:
        """The login *claims* give, or ``None``."""
        for name in self.rules.login_claim:
            login = _text(lookup(claims, name))
            if login is not None:
                return login
        return None

    def lacks_claims(self, claims: dict[str, Any]) -> bool:
        """Whether *claims* miss the login or one of the groups claims (``userinfo: auto`` then asks)."""
        if self.login_of(claims) is None:
            return True
        return any(lookup(claims, path) is None for path in self.rules.groups_claim)

    def identity(self, claims: dict[str, Any]) -> Identity:
        """The identity *claims* describe; :class:`~authcore.InvalidToken` without a usable login.

        Also applies ``allowed_groups`` and ``denied_groups`` (see :meth:`check_groups`).
        Remembered per subject by the raw values it is made of (see :meth:`remembered`).
        """
        known = self.remembered(claims)
        if known is not None:
            return known
        identity = self._map(claims)
        try:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()  # a bound, not an LRU: refilling costs one mapping per user
            self._known[claims.get("sub")] = (self._values(claims), identity)
        except TypeError:  # a sub that cannot be a key (a list, a mapping): not remembered
            pass
        return identity

    def remembered(self, claims: dict[str, Any]) -> Identity | None:
        """The identity already made for this subject from equal raw values, if any.

        Every token a user presents (one per refresh) maps to the same frozen identity, so the
        mapping and the model's validation run once per user and claim set, not once per token:
        one lookup by ``sub``, then the raw values compared (equal strings compare without
        hashing). Only identities that passed every check are remembered; the group rules
        depend on these values alone, so a remembered identity has passed them too.
        """
        try:
            entry = self._known.get(claims.get("sub"))
        except TypeError:
            return None
        if entry is None or entry[0] != self._values(claims):
            return None
        return entry[1]

    def _values(self, claims: dict[str, Any]) -> list[Any]:
        values = list(map(claims.get, self._flat))
        for path in self._dotted:
            values.append(lookup(claims, path))
        return values

    def _map(self, claims: dict[str, Any]) -> Identity:
        login = self.login_of(claims)
        if login is None:
            raise MissingLogin()
        groups = self._names(claims, self.rules.groups_claim, strip=self.rules.strip_group_path)
        roles = [r for r in self._names(claims, self.rules.roles_claim) if not self._ignored_role(r)]
        self.check_groups(groups, known=any(lookup(claims, p) is not None for p in self.rules.groups_claim))
        sub = claims.get("sub")
        try:
            return Identity.model_validate(
                {
                    "login": login,
                    "given_name": _text(claims.get("given_name")),
                    "family_name": _text(claims.get("family_name")),
                    "email": _text(claims.get("email"), _MAX_EMAIL),
                    "display_name": _text(claims.get("name")),
                    "groups": tuple(groups),
                    "roles": tuple(roles),
                    "attributes": {"sub": sub} if type(sub) is str else {},
                }
            )
        except ValidationError:
            raise InvalidToken("token claims have the wrong shape") from None

    def check_groups(self, groups: list[str], *, known: bool) -> None:
        """Refuse members of ``denied_groups`` and non-members of ``allowed_groups``.

        *known*: whether the claims said anything about groups; when they did not and
        ``denied_groups`` is set, membership cannot be ruled out and the token is refused.
        """
        if self._denied and (not known or not self._denied.isdisjoint(groups)):
            raise InvalidToken("not allowed by the group rules")
        if self._allowed and self._allowed.isdisjoint(groups):
            raise InvalidToken("not allowed by the group rules")

    def _ignored_role(self, role: str) -> bool:
        return role in self._ignored or (bool(self._ignored_prefixes) and role.startswith(self._ignored_prefixes))

    def _names(self, claims: dict[str, Any], paths: tuple[str, ...], *, strip: bool = False) -> list[str]:
        found: dict[str, None] = {}  # an insertion-ordered set
        for path in paths:
            value = lookup(claims, path)
            items = [value] if type(value) is str else value if type(value) is list else ()
            if len(items) > MAX_NAMES:
                raise InvalidToken("token with too many groups or roles")
            for item in items:
                if type(item) is not str:
                    continue
                name = item.rstrip("/").rsplit("/", 1)[-1] if strip else item
                if _text(name) is not None:
                    found[name] = None
        if len(found) > MAX_NAMES:
            raise InvalidToken("token with too many groups or roles")
        return list(found)
