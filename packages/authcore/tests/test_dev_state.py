"""The command line's development state (authcore.dev_state): a secret and sessions that outlive a process.

Moved here from the manager's tests with the code (issue 10); the attacks on the state
directory (a planted symlink, a directory others can write) are from the review of issue 9.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from authcore import AuthManager, ConfigError, InvalidToken
from authcore.config import SessionConfig, TokenConfig
from authcore.dev_state import session_store_url, token_secret
from authcore.testing.race import outcomes, race

DUMMY = {"providers": [{"name": "dummy"}]}


def test_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = token_secret(state, TokenConfig())
    assert first is not None and len(first) == 64
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / "dev-secret").st_mode) == 0o600
    assert token_secret(state, TokenConfig()) == first


def test_no_secret_file_when_configured_or_asymmetric(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert token_secret(state, TokenConfig(secret="configured-secret-0123456789abcdef")) is None
    assert token_secret(state, TokenConfig(algorithm="ES256", private_key_file=tmp_path / "key.pem")) is None
    assert not (state / "dev-secret").exists()


def test_session_store_in_the_state_dir_unless_configured(tmp_path: Path) -> None:
    state = tmp_path / "state"
    url = session_store_url(state, SessionConfig())
    assert url == f"sqlite:///{(state / 'sessions.db').resolve()}"
    assert session_store_url(tmp_path / "unused", SessionConfig(store="memory://")) == "memory://"
    assert not (tmp_path / "unused").exists()


def test_state_dir_keeps_secret_and_sessions(tmp_path):
    state = tmp_path / "state"
    with AuthManager.from_config(DUMMY, state_dir=state) as m:
        result = m.login("dummy", login="u", password="read")
    assert stat.S_IMODE(os.stat(state / "dev-secret").st_mode) == 0o600
    with AuthManager.from_config(DUMMY, state_dir=state) as m:
        assert m.verify(result.access_token).login == "u"
        m.logout(result.access_token)
    with AuthManager.from_config(DUMMY, state_dir=state) as m, pytest.raises(InvalidToken):
        m.verify(result.access_token)


def test_dev_secret_symlink_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    known = tmp_path / "known"
    known.write_bytes(b"k" * 64)  # a secret an attacker knows
    (state / "dev-secret").symlink_to(known)
    with pytest.raises(ConfigError, match="dev-secret"):
        AuthManager.from_config(DUMMY, state_dir=state)


def test_state_dir_writable_by_others_is_refused(tmp_path):
    state = tmp_path / "shared"
    state.mkdir()
    os.chmod(state, 0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        AuthManager.from_config(DUMMY, state_dir=state)


def test_truncated_dev_secret_is_replaced(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    secret = state / "dev-secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"0123456789abcdef0123456789abcdef01")  # 34 of 64 characters written
    os.close(fd)
    with AuthManager.from_config(DUMMY, state_dir=state):
        pass
    assert len(secret.read_bytes()) == 64


def test_concurrent_first_runs_agree_on_one_dev_secret(tmp_path):
    # Smoke test of the write-then-link publication of a new secret (the race is too narrow
    # to hit on demand): every manager started at once ends up with the same key.
    state = tmp_path / "state"

    def start(_: int) -> bytes:
        with AuthManager.from_config(DUMMY, state_dir=state) as m:
            return m._tokens._hmac_prototype.copy().digest()  # an HMAC of b"": the key's fingerprint

    keys = race(start)
    assert outcomes(keys) == {"ok": 8}, keys
    assert len(set(keys)) == 1
    assert [p.name for p in state.iterdir() if p.name.startswith(".dev-secret")] == []
