"""Permission strings, Jupyverse's resource/action form, wildcards, and :func:`require`.

A permission is a string: a plain name (``all_proposals``) or ``resource:action``
(``contents:read``). A granted ``*`` allows everything; a granted ``contents:*``
allows every action on ``contents``. Jupyverse's ``{"contents": ["read"]}`` form is
accepted wherever a set of permissions is expected and means ``contents:read``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

from .errors import Forbidden

__all__ = ["PermissionSpec", "normalize", "allows", "missing", "require", "MAX_PERMISSION_LENGTH"]

#: A set of permissions as hosts write them: strings, or Jupyverse's mapping.
PermissionSpec: TypeAlias = str | Iterable[str] | Mapping[str, Iterable[str]] | None

MAX_PERMISSION_LENGTH = 200


def _check(permission: str) -> str:
    if not isinstance(permission, str):
        raise TypeError(f"a permission is a string, not {type(permission).__name__}")
    if not permission or len(permission) > MAX_PERMISSION_LENGTH:
        raise ValueError("a permission is a non-empty string of at most 200 characters")
    if not permission.isprintable() or any(c.isspace() for c in permission):
        raise ValueError("a permission holds no spaces or control characters")
    return permission


def normalize(spec: PermissionSpec) -> tuple[str, ...]:
    """Return *spec* as a sorted tuple of unique permission strings."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        return (_check(spec),)
    result: set[str] = set()
    if isinstance(spec, Mapping):
        for resource, actions in spec.items():
            _check(resource)
            if isinstance(actions, str):
                actions = [actions]
            for action in actions:
                result.add(_check(f"{resource}:{action}"))
    else:
        for item in spec:
            result.add(_check(item))
    return tuple(sorted(result))


def allows(granted: Iterable[str], permission: str) -> bool:
    """Whether the *granted* permissions include *permission* (wildcards honoured)."""
    granted_set = granted if isinstance(granted, frozenset | set) else frozenset(granted)
    if permission in granted_set or "*" in granted_set:
        return True
    resource, sep, _action = permission.partition(":")
    return bool(sep) and f"{resource}:*" in granted_set


def missing(granted: Iterable[str], required: PermissionSpec) -> tuple[str, ...]:
    """The permissions of *required* that *granted* does not allow."""
    granted_set = frozenset(granted)
    return tuple(p for p in normalize(required) if not allows(granted_set, p))


def require(granted: Iterable[str], required: PermissionSpec) -> None:
    """Raise :class:`Forbidden` unless *granted* allows every permission in *required*."""
    lacking = missing(granted, required)
    if lacking:
        raise Forbidden(f"missing permission: {', '.join(lacking)}")
