"""Hostile input through user management and logins: huge, unicode, NUL, look-alike and SQL-ish values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from auth_local import LocalProvider
from authcore import AuthManager, BadRequest, InvalidCredentials, NewUser, UserExists, UserNotFound, UserUpdate

PW = "Correct-Horse-Battery-9"


def _provider(manager: AuthManager) -> LocalProvider:
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    return provider


def test_huge_logins_and_fields_are_refused(manager: AuthManager) -> None:
    """Past the core's models (which refuse them first) the provider refuses them too, with BadRequest."""
    with pytest.raises(ValidationError):
        NewUser(login="a" * 100_000)
    provider = _provider(manager)
    with pytest.raises(BadRequest):
        provider.create_user(NewUser.model_construct(login="a" * 100_000, roles=(), attributes={}, enabled=True))
    with pytest.raises(BadRequest):  # NFKC turns each ﷺ into 18 characters: the key would be huge
        provider.create_user(NewUser(login="ﷺ" * 256))
    longest = "ä" * 256
    provider.create_user(NewUser(login=longest, password=PW))
    assert manager.login("users", login=longest, password=PW).login == longest
    provider.create_user(NewUser(login="kim"))
    for field in ("given_name", "family_name", "display_name", "email"):
        with pytest.raises(BadRequest):
            huge: dict[str, Any] = {field: "x" * 10_000}  # past UserUpdate's own bound: constructed unchecked
            provider.update_user("kim", UserUpdate.model_construct(**huge))
    with pytest.raises(BadRequest):
        provider.update_user("kim", UserUpdate(attributes={"blob": "x" * 100_000}))
    with pytest.raises(BadRequest):
        provider.add_roles("kim", ["r" * 257])
    with pytest.raises(BadRequest):
        provider.list_users(search="s" * 100_000)


@pytest.mark.parametrize("field", ["given_name", "family_name", "display_name", "email"], ids=lambda f: f"nul-in-{f}")
def test_nul_and_control_characters_are_refused(manager: AuthManager, field: str) -> None:
    """NUL (which PostgreSQL refuses outright) and control characters never reach the database."""
    provider = _provider(manager)
    provider.create_user(NewUser(login="lee"))
    for value in ("a\x00b", "a\x1b[2Jb", "line\nbreak"):
        with pytest.raises(BadRequest):
            provider.update_user("lee", UserUpdate(**{field: value}))
    assert getattr(provider.get_user("lee"), field) is None


def test_nul_in_logins_roles_attributes_and_search(manager: AuthManager) -> None:
    """The same for the login itself, roles, attribute values and a search string."""
    provider = _provider(manager)
    with pytest.raises(BadRequest):
        provider.create_user(NewUser.model_construct(login="a\x00b", roles=(), attributes={}, enabled=True))
    with pytest.raises(BadRequest):
        provider.create_user(NewUser(login=" padded "))
    provider.create_user(NewUser(login="max"))
    with pytest.raises(BadRequest):
        provider.add_roles("max", ["ad\x00min"])
    with pytest.raises(BadRequest):
        provider.update_user("max", UserUpdate(attributes={"k": "v\x00"}))
    with pytest.raises(BadRequest):
        provider.update_user("max", UserUpdate(attributes={"k": float("nan")}))
    with pytest.raises(BadRequest):
        provider.list_users(search="a\x00")
    assert [u.login for u in provider.list_users()] == ["max"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "ALICE"),
        ("alice", "ＡＬＩＣＥ"),  # full-width
        ("finn", "ﬁnn"),  # the fi ligature
        ("strasse", "Straße"),  # ß folds to ss
        ("café", "cafe\u0301"),  # precomposed é and e + combining acute
        ("x²", "x2"),  # superscript two
        ("ǆemal", "Ǆemal"),  # the dž digraph's cases
    ],
    ids=["case", "full-width", "ligature", "sharp-s", "combining", "superscript", "digraph"],
)
def test_logins_equal_after_nfkc_casefold_collide(manager: AuthManager, first: str, second: str) -> None:
    """The second of two logins that are one after NFKC + casefold is refused as existing; it logs in as the first."""
    users = manager.users("users")
    users.create_user(NewUser(login=first, password=PW))
    with pytest.raises(UserExists):
        users.create_user(NewUser(login=second, password=PW))
    assert manager.login("users", login=second, password=PW).login == first
    assert [u.login for u in users.list_users()] == [first]


def test_other_scripts_stay_different(manager: AuthManager) -> None:
    """Cyrillic а is not Latin a (NFKC keeps them apart): two accounts, neither logs in as the other."""
    users = manager.users("users")
    users.create_user(NewUser(login="alice", password=PW))
    users.create_user(NewUser(login="аlice", password="Another-Password-77"))
    with pytest.raises(InvalidCredentials):
        manager.login("users", login="аlice", password=PW)
    assert manager.login("users", login="аlice", password="Another-Password-77").login == "аlice"


SQLISH = [
    "robert'); DROP TABLE users;--",
    "' OR '1'='1",
    "%",
    "_",
    "a\\b",
    'x" OR 1=1 --',
    "🦊fox",
    "مرحبا",
]


def test_sql_metacharacters_are_plain_data(manager: AuthManager) -> None:
    """Quotes, LIKE wildcards and backslashes are stored, found and logged in with as they are."""
    users = manager.users("users")
    for login in SQLISH:
        users.create_user(NewUser(login=login, password=PW, given_name=login))
    for login in SQLISH:
        assert manager.login("users", login=login, password=PW).identity.given_name == login
        assert users.get_user(login).login == login
    assert [u.login for u in users.list_users(search="%")] == ["%"]
    assert [u.login for u in users.list_users(search="_")] == ["_"]
    assert [u.login for u in users.list_users(search="\\")] == ["a\\b"]
    assert len(users.list_users()) == len(SQLISH)
    with pytest.raises(InvalidCredentials):
        manager.login("users", login="' OR '1'='1", password="' OR '1'='1")


@pytest.mark.parametrize("login", ["a\x00b", "a\x1bb", "a" * 100_000, ""], ids=["nul", "escape", "huge", "empty"])
def test_lookups_of_impossible_logins_find_nothing(manager: AuthManager, login: str) -> None:
    """A login with NUL, control characters or 100,000 characters names no user (404), on every operation."""
    users = manager.users("users")
    operations: list[Callable[[], object]] = [
        lambda: users.get_user(login),
        lambda: users.update_user(login, UserUpdate(given_name="x")),
        lambda: users.enable_user(login),
        lambda: users.disable_user(login),
        lambda: users.delete_user(login),
        lambda: users.set_password(login, PW),
        lambda: users.add_roles(login, ["staff"]),
        lambda: users.remove_roles(login, ["staff"]),
    ]
    for operation in operations:
        with pytest.raises(UserNotFound):
            operation()
