"""Jupyverse's per-user profile: what the front end stores through ``update_user``.

JupyterLab keeps its settings and workspace in Jupyverse's ``User`` (``settings``, ``workspace``),
and lets the user pick a name, initials and a colour. None of that belongs to the identity
provider (an LDAP directory or Keycloak realm is not the place for a JupyterLab theme), so it is
kept here, one small JSON file per user, named by a hash of ``provider`` and ``login`` (a login is
never a path). The identity itself (login, display name, permissions) always comes from authcore.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyverse_auth import User

from authcore import VerifiedToken
from authcore.errors import BadRequest

__all__ = ["PROFILE_FIELDS", "ProfileStore", "claimed_name", "default_directory", "initials", "jupyverse_user"]

#: The ``User`` fields a user may change; ``username`` is the authcore login and is not one of them.
PROFILE_FIELDS = frozenset({"name", "display_name", "initials", "color", "avatar_url", "workspace", "settings"})
#: A profile holds JupyterLab settings: generous, but bounded (one file per user on disk).
MAX_PROFILE_BYTES = 4 * 1024 * 1024


def default_directory() -> Path:
    """``~/.local/share/jupyter/fps_auth_authcore``: beside fps-auth's own database."""
    return Path.home() / ".local" / "share" / "jupyter" / "fps_auth_authcore"


def initials(name: str) -> str:
    """Up to two initials of *name* (``"Alice Liddell"`` → ``"AL"``), for the collaborators' avatars."""
    letters = [word[0] for word in name.replace("_", " ").replace(".", " ").split() if word[:1].isalnum()]
    return "".join(letters[:2]).upper() or name[:1].upper()


class ProfileStore:
    """Profiles on disk, one JSON file per ``(provider, login)``; written atomically, cached in memory.

    Methods block (file I/O): call them from a worker thread.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}

    def _path(self, provider: str, login: str) -> Path:
        digest = hashlib.sha256(f"{provider}\0{login}".encode()).hexdigest()
        return self.directory / f"{digest}.json"

    def get(self, provider: str, login: str) -> dict[str, Any]:
        """The stored profile of a user (empty when none was saved)."""
        path = self._path(provider, login)
        with self._lock:
            cached = self._cache.get(path.name)
            if cached is None:
                try:
                    cached = json.loads(path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    cached = {}
                if not isinstance(cached, dict):
                    cached = {}
                self._cache[path.name] = cached
            return dict(cached)

    def update(self, provider: str, login: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merge *data* into the profile and save it; returns the new profile.

        Raises :class:`~authcore.errors.BadRequest` for a key that is not a profile field, a value
        that is not a string (or ``None`` for the optional fields), or a profile past 4 MiB.
        """
        unknown = sorted(set(data) - PROFILE_FIELDS)
        if unknown:
            raise BadRequest(f"not a profile field: {', '.join(unknown)}")
        for key, value in data.items():
            if not (isinstance(value, str) or (value is None and key in {"initials", "color", "avatar_url"})):
                raise BadRequest(f"profile field {key!r} must be a string")
        profile = {**self.get(provider, login), **data}
        encoded = json.dumps(profile, ensure_ascii=False).encode("utf-8")
        if len(encoded) > MAX_PROFILE_BYTES:
            raise BadRequest("profile too large")
        path = self._path(provider, login)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Write then rename: a crash never leaves half a profile behind.
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(encoded)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._cache[path.name] = profile
        return dict(profile)


def claimed_name(token: VerifiedToken) -> str | None:
    """The display name the provider gave at login (the token's ``name`` claim, see :mod:`.claims`)."""
    claimed = token.claims.get("name")
    return claimed if isinstance(claimed, str) and claimed else None


def jupyverse_user(login: str, default_name: str | None, profile: Mapping[str, Any]) -> User:
    """Jupyverse's ``User``: the identity from authcore, the rest from the user's profile.

    ``username`` is the authcore login; ``name`` and ``display_name`` default to *default_name*
    (the display name the provider gave), else the login.
    """
    name = profile.get("name") or default_name or login
    display_name = profile.get("display_name") or name
    return User(
        username=login,
        name=name,
        display_name=display_name,
        initials=profile.get("initials") or initials(display_name),
        color=profile.get("color"),
        avatar_url=profile.get("avatar_url"),
        workspace=profile.get("workspace") or "{}",
        settings=profile.get("settings") or "{}",
    )
