"""TOTP secrets sealed at rest (``second_factor.secret_keys``), on SQLite and PostgreSQL: what is
stored, rotation, secrets stored before keys, a dropped key, tampered rows, hostile keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import update

from auth_local import LocalProvider
from auth_local.schema import totp_enrolments
from auth_local.secret_box import SEALED_PREFIX
from authcore import AuthManager, ConfigError, InvalidCredentials, NewUser, ProviderUnavailable

PW = "Correct-Horse-Battery-9"
T0 = 1_800_000_010.0
KEY_A = "first-test-key-for-totp-secrets-0123456789"
KEY_B = "second-test-key-for-totp-secrets-abcdefghij"

Make = Callable[..., AuthManager]


def provider_of(manager: AuthManager, at: float = T0) -> LocalProvider:
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    provider.clock = lambda: datetime.fromtimestamp(at, UTC)
    return provider


def with_keys(make_manager: Make, *keys: str, at: float = T0) -> LocalProvider:
    """The provider of a new manager on the test's database, sealing with *keys*."""
    return provider_of(make_manager(second_factor={"secret_keys": list(keys)}), at)


def enrolled(provider: LocalProvider, login: str = "alice") -> pyotp.TOTP:
    """*login* created, enrolled and confirmed (the step before T0 used); their authenticator."""
    provider.create_user(NewUser(login=login, password=SecretStr(PW)))
    totp = pyotp.TOTP(provider.begin_enrolment(login).secret)
    provider.confirm_enrolment(login, totp.at(T0 - 30))
    return totp


def stored(provider: LocalProvider, login: str = "alice") -> str:
    enrolment = provider.store.enrolment(provider.store.get(login).id)
    assert enrolment is not None
    return enrolment.secret


def set_stored(provider: LocalProvider, value: str, login: str = "alice") -> None:
    user_id = provider.store.get(login).id
    with provider.store._transaction(write=True) as connection:
        connection.execute(update(totp_enrolments).where(totp_enrolments.c.user_id == user_id).values(secret=value))


def test_a_sealed_secret_is_stored_unreadable_and_codes_work(make_manager: Make) -> None:
    provider = with_keys(make_manager, KEY_A)
    totp = enrolled(provider)
    value = stored(provider)
    assert value.startswith(SEALED_PREFIX) and totp.secret not in value and KEY_A not in value
    assert provider.check_second_factor("alice", "totp", totp.at(T0)).login == "alice"
    with pytest.raises(InvalidCredentials):  # the same code twice
        provider.check_second_factor("alice", "totp", totp.at(T0))


def test_without_keys_secrets_are_stored_as_they_are(make_manager: Make) -> None:
    provider = provider_of(make_manager())
    totp = enrolled(provider)
    assert stored(provider) == totp.secret


def test_a_secret_stored_before_keys_is_sealed_when_next_used(make_manager: Make) -> None:
    totp = enrolled(provider_of(make_manager()))
    provider = with_keys(make_manager, KEY_A)
    assert provider.check_second_factor("alice", "totp", totp.at(T0)).login == "alice"
    assert stored(provider).startswith(SEALED_PREFIX)
    later = with_keys(make_manager, KEY_A, at=T0 + 30)
    assert later.check_second_factor("alice", "totp", totp.at(T0 + 30)).login == "alice"


def test_rotation_new_key_in_front_then_the_old_one_dropped(make_manager: Make) -> None:
    totp = enrolled(with_keys(make_manager, KEY_A))
    under_a = stored(with_keys(make_manager, KEY_A))
    rotated = with_keys(make_manager, KEY_B, KEY_A)
    assert rotated.check_second_factor("alice", "totp", totp.at(T0)).login == "alice"
    under_b = stored(rotated)
    assert under_b.startswith(SEALED_PREFIX) and under_b.split(":")[1] != under_a.split(":")[1]
    only_b = with_keys(make_manager, KEY_B, at=T0 + 30)
    assert only_b.check_second_factor("alice", "totp", totp.at(T0 + 30)).login == "alice"


def test_a_dropped_key_is_an_outage_logged_without_the_secret(make_manager: Make, caplog: Any) -> None:
    totp = enrolled(with_keys(make_manager, KEY_A))
    caplog.set_level(logging.DEBUG)
    provider = with_keys(make_manager, KEY_B)
    with pytest.raises(ProviderUnavailable) as refused:
        provider.check_second_factor("alice", "totp", totp.at(T0))
    shown = str(refused.value) + caplog.text
    assert "cannot be read" in str(refused.value) and "not configured" in caplog.text
    for secret in (totp.secret, KEY_A, KEY_B, stored(provider)):
        assert secret not in shown
    with pytest.raises(ProviderUnavailable):  # without keys at all, a sealed value stays refused
        provider_of(make_manager()).check_second_factor("alice", "totp", totp.at(T0))


def test_a_sealed_secret_opens_for_its_own_user_only(make_manager: Make) -> None:
    provider = with_keys(make_manager, KEY_A)
    enrolled(provider, "alice")
    bob = enrolled(provider, "bob")
    set_stored(provider, stored(provider, "alice"), "bob")  # alice's sealed secret copied onto bob's row
    with pytest.raises(ProviderUnavailable):
        provider.check_second_factor("bob", "totp", bob.at(T0))


def _key_id(provider: LocalProvider) -> str:
    return stored(provider).split(":")[1]


@pytest.mark.parametrize(
    "tampered",
    [
        lambda value, kid: value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"),  # flipped bits
        lambda value, kid: SEALED_PREFIX,
        lambda value, kid: f"{SEALED_PREFIX}{kid}:",
        lambda value, kid: f"{SEALED_PREFIX}{kid}:!!!not base64!!!",
        lambda value, kid: f"{SEALED_PREFIX}{kid}:" + "A" * 100_000,
        lambda value, kid: f"{SEALED_PREFIX}{kid}:☃☃☃☃",
        lambda value, kid: f"{SEALED_PREFIX}00000000:" + value.split(":")[2],
        lambda value, kid: f"{SEALED_PREFIX}{kid}:{value.split(':')[2]}:extra",
    ],
    ids=["flipped", "prefix-only", "empty-payload", "not-base64", "huge", "unicode", "unknown-key", "extra-part"],
)
def test_a_tampered_sealed_secret_is_refused_not_a_crash(make_manager: Make, tampered: Any, database_url: str) -> None:
    provider = with_keys(make_manager, KEY_A)
    totp = enrolled(provider)
    value = tampered(stored(provider), _key_id(provider))
    if len(value) > 512 and database_url.startswith("postgresql"):
        with pytest.raises(ProviderUnavailable):  # the column (512 characters) holds no more
            set_stored(provider, value)
        return
    set_stored(provider, value)
    with pytest.raises(ProviderUnavailable):
        provider.check_second_factor("alice", "totp", totp.at(T0))


@pytest.mark.parametrize(
    "keys",
    [[""], ["short-key"], ["k" * 31], ["k" * 1025], ["\x00" * 40], ["tab\tinside-a-key-of-enough-length-000"],
     [KEY_A, KEY_A], [f"{KEY_A}{n}" for n in range(9)]],
    ids=["empty", "short", "31", "1025", "nul", "control", "twice", "nine"],
)  # fmt: skip
def test_hostile_keys_are_refused_by_name_without_the_key(
    configs: Callable[..., dict[str, Any]], keys: list[str]
) -> None:
    config = configs("sqlite:///:memory:", second_factor={"secret_keys": keys})
    with pytest.raises((ConfigError, ValidationError)) as refused:
        AuthManager.from_config(config)
    text = str(refused.value)
    assert "secret_keys" in text or "secret key" in text
    for key in keys:
        if len(key) >= 8:
            assert key not in text


def test_unicode_keys_are_keys(make_manager: Make) -> None:
    provider = with_keys(make_manager, "clé-secrète-pour-les-codes-☃-0123456789")
    totp = enrolled(provider)
    assert provider.check_second_factor("alice", "totp", totp.at(T0)).login == "alice"
    assert "clé" not in repr(provider.config) and "clé" not in repr(provider._secret_box)
