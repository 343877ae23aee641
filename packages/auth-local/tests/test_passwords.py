"""Passwords: argon2id, imported bcrypt/PBKDF2 hashes upgraded at login, rehash on new parameters,
the policy, and the refusal of unknown logins costing one argon2 verification like any other."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import SecretStr

from auth_local import LocalProvider, PasswordHasher, PasswordRefused
from auth_local.policy import common_passwords
from authcore import AuthManager, BadRequest, InvalidCredentials, NewUser

PW = "Correct-Horse-Battery-9"

#: Hashes made by the real libraries (passlib 1.7.4, Django 5.2, bcrypt 5.0) of these passwords.
LEGACY = {
    "passlib-sha256": (
        "$pbkdf2-sha256$1000$Poew9r5X6v1/rzWGsBZCSA$EYH9VOHy6PjELrq5QZZ2sZ1i4a3vlvvszmB71HrSmG4",
        "legacy-passlib-Pw1",
    ),
    "passlib-sha512": (
        "$pbkdf2-sha512$1000$t/Z.j1EKISQEwHjvPQeAsA$OOXiXbXNWEF5f6d6HlWOBPBSPaJjbUwG5gRWQ8qZ/"
        "232b3JnGjDXHOk3pzNDlos8/7JHvzCk1CdRMoucN6lp0Q",
        "legacy-passlib-Pw2",
    ),
    "django": ("pbkdf2_sha256$1000$c2FsdHNhbHQx$c716jYVopkIYodpU2MOaCN7+EE0z9LntlBN4q3Bp2Jg=", "legacy-django-Pw1"),
    "bcrypt": ("$2b$04$hPKj/JBej8ifqJsDjt8BC.iZTEzQ3yNRIzu3Vr8EBQGux9T71jQeW", "legacy-bcrypt-Pw1"),
}


def _provider(manager: AuthManager) -> LocalProvider:
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    return provider


def _stored_hash(provider: LocalProvider, login: str) -> str:
    row = provider.store.get(login)
    assert row.password_hash is not None
    return row.password_hash


@pytest.mark.parametrize("kind", list(LEGACY))
def test_imported_hash_logs_in_and_becomes_argon2id(manager: AuthManager, kind: str) -> None:
    """A hash from another system verifies, a wrong password does not, and the first login rehashes it."""
    encoded, password = LEGACY[kind]
    provider = _provider(manager)
    provider.create_user(NewUser(login="legacy"))
    provider.import_password_hash("legacy", encoded)
    with pytest.raises(InvalidCredentials):
        manager.login("users", login="legacy", password=password + "x")
    assert _stored_hash(provider, "legacy") == encoded  # a failed login changes nothing
    assert manager.login("users", login="legacy", password=password).login == "legacy"
    upgraded = _stored_hash(provider, "legacy")
    assert upgraded.startswith("$argon2id$") and not provider.hasher.needs_update(upgraded)
    assert manager.login("users", login="legacy", password=password).login == "legacy"
    assert _stored_hash(provider, "legacy") == upgraded  # current: left alone


def test_import_refuses_unknown_formats(manager: AuthManager) -> None:
    """Plain text, MD5 crypt and garbage are not hashes it can verify."""
    provider = _provider(manager)
    provider.create_user(NewUser(login="legacy"))
    for bad in ("plain-text-password", "$1$saltsalt$abcdefghijklmnopqrstuv", "", "$2b$" + "x" * 600):
        with pytest.raises(BadRequest):
            provider.import_password_hash("legacy", bad)


def test_malformed_stored_hash_is_a_plain_refusal(manager: AuthManager) -> None:
    """A stored hash that cannot be parsed refuses the login with the one message (and logs no hash)."""
    provider = _provider(manager)
    provider.create_user(NewUser(login="broken"))
    provider.import_password_hash("broken", "pbkdf2_sha256$notanumber$salt$hash")
    with pytest.raises(InvalidCredentials) as caught:
        manager.login("users", login="broken", password=PW)
    assert str(caught.value) == InvalidCredentials.default_message


def test_changed_parameters_rehash_at_next_login(make_manager: Callable[..., AuthManager]) -> None:
    """A hash made with other argon2 parameters is redone with the configured ones at the next login."""
    first = make_manager()
    first.users("users").create_user(NewUser(login="nina", password=PW))
    old = _stored_hash(_provider(first), "nina")
    assert "m=1024,t=1,p=1" in old
    second = make_manager(argon2_time_cost=2, argon2_memory_cost=2048)
    provider = _provider(second)
    assert provider.hasher.needs_update(old)
    with pytest.raises(InvalidCredentials):  # a wrong password rehashes nothing
        second.login("users", login="nina", password="Wrong-Password-000")
    assert _stored_hash(provider, "nina") == old
    assert second.login("users", login="nina", password=PW).login == "nina"
    new = _stored_hash(provider, "nina")
    assert "m=2048,t=2,p=1" in new
    assert second.login("users", login="nina", password=PW).login == "nina"
    assert _stored_hash(provider, "nina") == new


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-Pw1", "at least 12"),
        ("x" * 1025, "at most 1024"),
        ("oscar", "at least 12"),
        ("OSCAR-the-grouch-1", "must not contain the login"),
        ("my-oscar-Password", "must not contain the login"),
    ],
    ids=["short", "huge", "is-login", "contains-login-upper", "contains-login"],
)
def test_policy_refuses(manager: AuthManager, password: str, reason: str) -> None:
    """Weak passwords are refused (422) on create and set_password; the message names the rule, not the password."""
    users = manager.users("users")
    with pytest.raises(PasswordRefused) as caught:
        # model_construct: the core's model would refuse the huge one before the provider sees it
        users.create_user(NewUser.model_construct(login="oscar", password=SecretStr(password)))
    assert reason in str(caught.value) and password not in str(caught.value)
    assert caught.value.status_code == 422
    assert users.list_users() == []  # nothing created
    users.create_user(NewUser(login="oscar"))
    with pytest.raises(PasswordRefused):
        users.set_password("oscar", password)


def test_policy_refuses_common_passwords(make_manager: Callable[..., AuthManager]) -> None:
    """The shipped list holds 10,000 passwords; one of them is refused, whatever its case."""
    assert len(common_passwords()) == 10_000
    common = sorted(p for p in common_passwords() if len(p) >= 12)[0]
    users = make_manager().users("users")
    users.create_user(NewUser(login="pat"))
    with pytest.raises(PasswordRefused) as caught:
        users.set_password("pat", common.upper())
    assert "most common" in str(caught.value)
    relaxed = make_manager(password_min_length=8, refuse_common_passwords=False).users("users")
    relaxed.set_password("pat", "password")  # the operator switched both rules off
    with pytest.raises(PasswordRefused):
        make_manager(password_min_length=8).users("users").set_password("pat", "password")


class CountingHasher(PasswordHasher):
    """The provider's hasher, counting argon2 verifications (argon2 itself runs unchanged)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.argon2_verifications = 0
        self.decoys = 0

    def argon2_verify(self, encoded: str, password: str) -> bool:
        self.argon2_verifications += 1
        return super().argon2_verify(encoded, password)

    def verify_decoy(self, password: str) -> bool:
        self.decoys += 1
        return super().verify_decoy(password)


@pytest.mark.parametrize(
    ("login", "password", "decoy"),
    [
        ("nobody", PW, True),  # unknown login
        ("quinn", "Wrong-Password-000", False),  # known login, wrong password
        ("nopw", PW, True),  # no password set
        ("off", PW, True),  # disabled
    ],
    ids=["unknown", "wrong-password", "no-password", "disabled"],
)
def test_every_refusal_costs_one_argon2_verification(
    manager: AuthManager, login: str, password: str, decoy: bool
) -> None:
    """Unknown, password-less and disabled logins verify against the decoy hash: the same one argon2 run."""
    provider = _provider(manager)
    provider.create_user(NewUser(login="quinn", password=PW))
    provider.create_user(NewUser(login="nopw"))
    provider.create_user(NewUser(login="off", password=PW, enabled=False))
    counting = CountingHasher()
    provider.hasher = counting
    with pytest.raises(InvalidCredentials):
        manager.login("users", login=login, password=password)
    assert counting.argon2_verifications == 1
    assert counting.decoys == (1 if decoy else 0)
