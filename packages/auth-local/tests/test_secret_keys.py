"""TOTP secrets sealed at rest and recovery codes hashed with a key (``second_factor.secret_keys``),
on SQLite and PostgreSQL: what is stored, rotation, secrets and codes from before keys, a dropped
key, tampered rows, hostile keys."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, update

from auth_local import LocalProvider
from auth_local.schema import recovery_codes, totp_enrolments
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


# ------------------------------------------------------------------ recovery codes hashed with a key


def enrolled_with_codes(provider: LocalProvider, login: str = "alice") -> list[str]:
    """*login* created, enrolled and confirmed; their recovery codes."""
    provider.create_user(NewUser(login=login, password=SecretStr(PW)))
    enrolment = provider.begin_enrolment(login)
    provider.confirm_enrolment(login, pyotp.TOTP(enrolment.secret).at(T0 - 30))
    return list(enrolment.recovery_codes)


def stored_digests(provider: LocalProvider, login: str = "alice") -> set[str]:
    user_id = provider.store.get(login).id
    query = select(recovery_codes.c.code_hash).where(recovery_codes.c.user_id == user_id)
    with provider.store._transaction(write=False) as connection:
        return set(connection.execute(query).scalars())


def plain_digest(provider: LocalProvider, code: str, login: str = "alice") -> str:
    """The unkeyed SHA-256 a code was stored as before keys (and is without them)."""
    return hashlib.sha256(f"{provider.store.get(login).id}:{code.replace('-', '')}".encode()).hexdigest()


def spends(provider: LocalProvider, code: str, login: str = "alice") -> bool:
    try:
        return provider.check_second_factor(login, "recovery", code).login == login
    except InvalidCredentials:
        return False


def test_with_keys_recovery_codes_are_stored_as_keyed_digests(make_manager: Make) -> None:
    provider = with_keys(make_manager, KEY_A)
    codes = enrolled_with_codes(provider)
    digests = stored_digests(provider)
    assert len(digests) == len(codes) == 10
    assert digests.isdisjoint(plain_digest(provider, code) for code in codes)  # not searchable without the key
    assert spends(provider, codes[0].lower()) and not spends(provider, codes[0])  # once, in any case
    assert provider.second_factor_status("alice").recovery_codes_left == 9


def test_without_keys_recovery_codes_are_plain_digests(make_manager: Make) -> None:
    provider = provider_of(make_manager())
    codes = enrolled_with_codes(provider)
    assert stored_digests(provider) == {plain_digest(provider, code) for code in codes}
    assert spends(provider, codes[0])


def test_codes_made_before_keys_and_under_an_older_key_still_work(make_manager: Make) -> None:
    before = enrolled_with_codes(provider_of(make_manager()), "bea")
    older = enrolled_with_codes(with_keys(make_manager, KEY_A), "olek")
    provider = with_keys(make_manager, KEY_B, KEY_A)
    newer = enrolled_with_codes(provider, "nina")
    assert (
        spends(provider, before[0], "bea") and spends(provider, older[0], "olek") and spends(provider, newer[0], "nina")
    )
    # A code is found under the key it was made with only: without KEY_B, nina's codes are wrong
    # codes (nothing says which key made a digest), so a key is dropped once its users enrolled again.
    only_a = with_keys(make_manager, KEY_A)
    assert (
        not spends(only_a, newer[1], "nina") and spends(only_a, older[1], "olek") and spends(only_a, before[1], "bea")
    )


def test_the_recovery_key_is_not_the_sealing_key(make_manager: Make) -> None:
    """The codes' HMAC key and the secrets' AES key are derived apart (HKDF labels) and neither is
    the configured text: an HMAC under the text itself matches no stored digest."""
    provider = with_keys(make_manager, KEY_A)
    codes = enrolled_with_codes(provider)
    user_id = provider.store.get("alice").id
    raw = {
        hmac.new(KEY_A.encode(), f"{user_id}:{code.replace('-', '')}".encode(), "sha256").hexdigest() for code in codes
    }
    assert stored_digests(provider).isdisjoint(raw)
