"""The command line's development state: a token secret and a session database kept in a directory.

``authcore login`` and ``authcore token verify`` run in separate processes. Without a
configured ``tokens.secret`` and ``sessions.store``, each process would sign with a random
secret and keep sessions in memory, so a token issued by one would never verify in the
next. In development the command line therefore passes a state directory
(``AuthManager(..., state_dir=...)``), and this module keeps there:

* ``dev-secret``: an HMAC secret, created once, readable by its owner only;
* ``sessions.db``: an SQLite session store.

Both are used only where the configuration leaves the setting out.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .algorithms import ALGORITHMS
from .config.schema import SessionConfig, TokenConfig
from .errors import ConfigError

__all__ = ["session_store_url", "token_secret"]

log = logging.getLogger("authcore")

#: Not on every platform; where missing, the directory checks below are what protects the file.
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
#: What a development secret file holds: ``secrets.token_hex(32)``.
_DEV_SECRET_LENGTH = 64


def token_secret(state: Path, tokens: TokenConfig) -> bytes | None:
    """The development HMAC secret kept in *state*; ``None`` when *tokens* has a secret or is not HMAC.

    Made on first use. Of several processes starting at once, all end up with one secret.
    """
    if tokens.secret is not None or not ALGORITHMS[tokens.algorithm].symmetric:
        return None
    path = state / "dev-secret"
    _private_state_dir(state)
    secret = _read_dev_secret(path)
    if secret is not None:
        return secret
    return _publish_new_secret(state, path)


def session_store_url(state: Path, sessions: SessionConfig) -> str:
    """``sessions.store`` when configured, else an SQLite database in *state*."""
    if "store" in sessions.model_fields_set:
        return sessions.store
    _private_state_dir(state)
    return f"sqlite:///{(state / 'sessions.db').resolve()}"


def _publish_new_secret(state: Path, path: Path) -> bytes:
    # Write the whole secret to a private temporary file, then hard-link it into place:
    # the link fails if another process won the race (we then use its secret), and no
    # process ever reads a half-written file and replaces it with a secret of its own.
    secret = secrets.token_hex(32).encode()
    temporary = state / f".dev-secret.{os.getpid()}.{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            other = _read_dev_secret(path)
            if other is None:
                raise ConfigError(f"development secret {str(path)!r} could not be created; remove it") from None
            return other
    finally:
        temporary.unlink(missing_ok=True)
    log.warning("development mode: tokens are signed with a development secret kept in %s", path)
    return secret


def _private_state_dir(state: Path) -> None:
    """Create the state directory, and refuse one that someone else could write to.

    The development secret signs tokens: another user who can write to the directory
    (``AUTHCORE_STATE_DIR=/tmp/x`` made by them first, a world-writable directory) could
    plant a ``dev-secret`` they know, or a symlink, and forge tokens.
    """
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = state.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"state directory {str(state)!r} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"state directory {str(state)!r} belongs to another user; choose another one")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"state directory {str(state)!r} is writable by other users; chmod 700 it")


def _read_dev_secret(path: Path) -> bytes | None:
    """The development secret in *path*, or ``None`` if there is none (a damaged one is removed)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:  # ELOOP: a symbolic link, which we never follow to a secret
        raise ConfigError(f"development secret {str(path)!r} is not a regular file; remove it") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            raise ConfigError(f"development secret {str(path)!r} is not a regular file of ours; remove it")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"development secret {str(path)!r} is accessible to other users; remove it")
        data = os.read(fd, 4 * _DEV_SECRET_LENGTH)
    finally:
        os.close(fd)
    secret = data.strip()
    if len(secret) == _DEV_SECRET_LENGTH and all(c in b"0123456789abcdef" for c in secret):
        return secret
    # Truncated or damaged (an older version's crash mid-write): a shorter secret would be
    # weaker and would not verify the tokens signed with the whole one anyway. Start afresh.
    log.warning("development secret %s is damaged; making a new one", path)
    path.unlink(missing_ok=True)
    return None
