"""TOTP second factor of the ``local`` provider, on SQLite and PostgreSQL: enrolment, codes, recovery.

Time is driven through the provider's ``clock`` and pyotp's ``at(for_time)``: no test sleeps.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

from auth_local import LocalProvider
from auth_local.config import SecondFactorConfig
from auth_local.schema import recovery_codes, totp_enrolments
from auth_local.second_factor import normal_recovery_code, normal_totp_code
from authcore import (
    AuthManager,
    InvalidCredentials,
    NewUser,
    PasswordCredentials,
    SecondFactorRequired,
    TotpEnrolment,
    UserChangeRefused,
    UserNotFound,
)

PW = "Correct-Horse-Battery-9"
#: A time in the middle of a 30 s step (1,800,000,000 is a step boundary).
T0 = 1_800_000_010.0
RECOVERY = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")


class Clock:
    """A clock the test sets: the provider's ``clock`` (UTC datetimes)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def setup(manager: AuthManager, *users: str, roles: tuple[str, ...] = ()) -> tuple[LocalProvider, Clock]:
    """The ``users`` provider on a test clock, with *users* created (password ``PW``)."""
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    clock = Clock()
    provider.clock = clock
    for login in users:
        provider.create_user(NewUser(login=login, password=SecretStr(PW), roles=list(roles)))
    return provider, clock


def enrolled(provider: LocalProvider, clock: Clock, login: str = "alice") -> tuple[pyotp.TOTP, TotpEnrolment]:
    """Begin and confirm an enrolment of *login* (with the code of the step before now, which is then used)."""
    enrolment = provider.begin_enrolment(login)
    totp = pyotp.TOTP(enrolment.secret)
    provider.confirm_enrolment(login, totp.at(clock.now - 30))
    return totp, enrolment


def refused(call: Callable[[], object]) -> InvalidCredentials:
    """*call* raises InvalidCredentials with its one default message."""
    with pytest.raises(InvalidCredentials) as caught:
        call()
    assert type(caught.value) is InvalidCredentials and str(caught.value) == InvalidCredentials.default_message
    return caught.value


def test_enrol_confirm_and_use(manager: AuthManager) -> None:
    """begin_enrolment gives a 160-bit secret, its key URI and 10 codes; they count only once a code confirms."""
    provider, clock = setup(manager, "alice")
    enrolment = provider.begin_enrolment("alice")
    assert len(base64.b32decode(enrolment.secret)) == 20
    uri = urlsplit(enrolment.uri)
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/authcore:alice")
    assert query["secret"] == [enrolment.secret] and query["issuer"] == ["authcore"]
    assert len(enrolment.recovery_codes) == len(set(enrolment.recovery_codes)) == 10
    assert all(RECOVERY.match(code) for code in enrolment.recovery_codes)
    status = provider.second_factor_status("alice")
    assert (status.enrolled, status.required, status.recovery_codes_left) == (False, False, 0)
    alice = provider.get_user("alice")
    assert provider.second_factor_methods(alice) == ()  # pending: logins are not asked yet
    refused(lambda: provider.check_second_factor("alice", "recovery", enrolment.recovery_codes[0]))

    totp = pyotp.TOTP(enrolment.secret)
    wrong = f"{(int(totp.at(clock.now)) + 1) % 1_000_000:06d}"
    refused(lambda: provider.confirm_enrolment("alice", wrong))
    provider.confirm_enrolment("alice", totp.at(clock.now))
    status = provider.second_factor_status("alice")
    assert (status.enrolled, status.recovery_codes_left) == (True, 10)
    assert provider.second_factor_methods(alice) == ("totp", "recovery")
    refused(lambda: provider.confirm_enrolment("alice", totp.at(clock.now + 30)))  # nothing pending now
    with pytest.raises(UserChangeRefused):
        provider.begin_enrolment("alice")

    clock.now += 30
    identity = provider.check_second_factor("alice", "totp", totp.at(clock.now))
    assert identity == provider.authenticate(PasswordCredentials(login="alice", password=SecretStr(PW)))


def test_a_login_through_the_manager(manager: AuthManager) -> None:
    """The core asks for the second step and finishes the login with a code the provider accepts."""
    provider, clock = setup(manager, "alice")
    totp, _ = enrolled(provider, clock)
    with pytest.raises(SecondFactorRequired) as required:
        manager.login("users", login="alice", password=PW)
    assert required.value.methods == ("totp", "recovery")
    result = manager.complete_login(required.value.challenge, totp.at(clock.now))
    assert result.identity.login == "alice"


def test_a_new_enrolment_replaces_a_pending_one(manager: AuthManager) -> None:
    """Only the latest pending secret confirms; the first one's codes and recovery codes are gone."""
    provider, clock = setup(manager, "alice")
    first = provider.begin_enrolment("alice")
    second = provider.begin_enrolment("alice")
    assert first.secret != second.secret
    refused(lambda: provider.confirm_enrolment("alice", pyotp.TOTP(first.secret).at(clock.now)))
    provider.confirm_enrolment("alice", pyotp.TOTP(second.secret).at(clock.now))
    refused(lambda: provider.check_second_factor("alice", "recovery", first.recovery_codes[0]))
    provider.check_second_factor("alice", "recovery", second.recovery_codes[0])


def test_a_code_works_once(manager: AuthManager) -> None:
    """The same code twice in its step: refused; the confirming code cannot log in either."""
    provider, clock = setup(manager, "alice")
    enrolment = provider.begin_enrolment("alice")
    totp = pyotp.TOTP(enrolment.secret)
    provider.confirm_enrolment("alice", totp.at(clock.now))
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now)))
    clock.now += 30
    code = totp.at(clock.now)
    provider.check_second_factor("alice", "totp", code)
    refused(lambda: provider.check_second_factor("alice", "totp", code))
    clock.now += 5  # still the same step
    refused(lambda: provider.check_second_factor("alice", "totp", code))


def test_an_older_step_is_refused_after_a_newer_one(manager: AuthManager) -> None:
    """After the next step's code (clock drift) the current one, though in the window, is dead."""
    provider, clock = setup(manager, "alice")
    totp, _ = enrolled(provider, clock)
    provider.check_second_factor("alice", "totp", totp.at(clock.now + 30))
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now)))
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now - 30)))
    clock.now += 60  # the step after the used one
    provider.check_second_factor("alice", "totp", totp.at(clock.now))


@pytest.mark.parametrize("offset", [-30, 30], ids=["previous-step", "next-step"])
def test_drift_within_the_window_is_accepted(manager: AuthManager, offset: int) -> None:
    """``valid_window: 1``: the neighbouring steps' codes work; two steps away does not."""
    provider, clock = setup(manager, "alice")
    enrolment = provider.begin_enrolment("alice")
    totp = pyotp.TOTP(enrolment.secret)
    provider.confirm_enrolment("alice", totp.at(clock.now))
    clock.now += 600
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now + 2 * offset)))
    provider.check_second_factor("alice", "totp", totp.at(clock.now + offset))


def test_window_zero_and_other_parameters(make_manager: Callable[..., AuthManager]) -> None:
    """8 digits, 60 s steps, no drift: the URI says so, only the current code works; a later change of the
    settings leaves the enrolment as the app has it."""
    settings = {"digits": 8, "period": 60, "valid_window": 0, "issuer": "Example Lab", "recovery_codes": 3}
    provider, clock = setup(make_manager(second_factor=settings), "alice")
    enrolment = provider.begin_enrolment("alice")
    query = parse_qs(urlsplit(enrolment.uri).query)
    assert (query["digits"], query["period"], query["issuer"]) == (["8"], ["60"], ["Example Lab"])
    assert len(enrolment.recovery_codes) == 3
    totp = pyotp.TOTP(enrolment.secret, digits=8, interval=60)
    refused(lambda: provider.confirm_enrolment("alice", totp.at(clock.now - 60)))
    refused(lambda: provider.confirm_enrolment("alice", totp.at(clock.now)[:6]))
    provider.confirm_enrolment("alice", totp.at(clock.now))

    later, later_clock = setup(make_manager(second_factor={"digits": 6, "period": 30}))
    later_clock.now = clock.now + 60
    later.check_second_factor("alice", "totp", totp.at(later_clock.now))


def test_recovery_codes_are_single_use(manager: AuthManager) -> None:
    """A code is spent once; case, dashes and spaces do not matter; the count goes down."""
    provider, clock = setup(manager, "alice")
    _, enrolment = enrolled(provider, clock)
    first, second = enrolment.recovery_codes[:2]
    provider.check_second_factor("alice", "recovery", first)
    refused(lambda: provider.check_second_factor("alice", "recovery", first))
    provider.check_second_factor("alice", "recovery", f"  {second.replace('-', '').upper()[:4]} {second[4:].upper()}")
    refused(lambda: provider.check_second_factor("alice", "recovery", second))
    assert provider.second_factor_status("alice").recovery_codes_left == 8
    refused(lambda: provider.check_second_factor("alice", "totp", enrolment.recovery_codes[2]))


def test_normalisation() -> None:
    """Spaces anywhere; recovery codes in any case, with or without the dash, o/i/l read as 0/1."""
    assert normal_totp_code(" 123 456 ", 6) == "123456"
    assert normal_totp_code("123456", 8) is None and normal_totp_code("12345a", 6) is None
    assert normal_recovery_code("AB0C1-DEF9Z") == "ab0c1def9z" == normal_recovery_code("abOcI def9z")
    assert normal_recovery_code("ab0c1-def9L") == "ab0c1def91"
    assert normal_recovery_code("ab0c1-def9u") is None and normal_recovery_code("ab0c1-def9") is None


def test_required_groups_ask_for_enrolment(make_manager: Callable[..., AuthManager]) -> None:
    """A user with a required role gets ("enrol",) until an ``enrol`` code confirms; others get ()."""
    manager = make_manager(second_factor={"required_groups": ["admins"]})
    provider, clock = setup(manager, "root", roles=("admins",))
    provider.create_user(NewUser(login="bob", password=SecretStr(PW), roles=["staff"]))
    root = provider.authenticate(PasswordCredentials(login="root", password=SecretStr(PW)))
    assert provider.second_factor_methods(root) == ("enrol",)
    assert provider.second_factor_methods(provider.get_user("bob")) == ()
    assert provider.second_factor_status("root").required and not provider.second_factor_status("bob").required
    with pytest.raises(SecondFactorRequired) as required:
        manager.login("users", login="root", password=PW)
    assert required.value.methods == ("enrol",)

    enrolment = provider.begin_enrolment("root")
    refused(lambda: provider.check_second_factor("root", "totp", pyotp.TOTP(enrolment.secret).at(clock.now)))
    assert provider.check_second_factor("root", "enrol", pyotp.TOTP(enrolment.secret).at(clock.now)) == root
    assert provider.second_factor_methods(root) == ("totp", "recovery")
    assert provider.second_factor_status("root").enrolled


def test_remove_and_enrol_again(make_manager: Callable[..., AuthManager]) -> None:
    """Removal drops secret and codes (a required user is asked to enrol again); a new enrolment works."""
    provider, clock = setup(make_manager(second_factor={"required_groups": ["staff"]}), "alice", roles=("staff",))
    totp, enrolment = enrolled(provider, clock)
    provider.remove_second_factor("alice")
    provider.remove_second_factor("alice")  # nothing left: no error
    status = provider.second_factor_status("alice")
    assert (status.enrolled, status.required, status.recovery_codes_left) == (False, True, 0)
    assert provider.second_factor_methods(provider.get_user("alice")) == ("enrol",)
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now)))
    refused(lambda: provider.check_second_factor("alice", "recovery", enrolment.recovery_codes[0]))
    again = provider.begin_enrolment("alice")
    provider.confirm_enrolment("alice", pyotp.TOTP(again.secret).at(clock.now))
    assert provider.second_factor_status("alice").enrolled


def test_unknown_and_disabled_users(manager: AuthManager) -> None:
    """Codes of an unknown or disabled user are refused like wrong ones; management calls say UserNotFound."""
    provider, clock = setup(manager, "alice")
    totp, _ = enrolled(provider, clock)
    provider.disable_user("alice")
    refused(lambda: provider.check_second_factor("alice", "totp", totp.at(clock.now)))
    provider.enable_user("alice")
    provider.check_second_factor("alice", "totp", totp.at(clock.now))  # the refusal did not use the step
    refused(lambda: provider.check_second_factor("nobody", "totp", "123456"))
    refused(lambda: provider.check_second_factor("alice", "sms", totp.at(clock.now + 30)))
    for call in (provider.second_factor_status, provider.begin_enrolment, provider.remove_second_factor):
        with pytest.raises(UserNotFound):
            call("nobody")
    with pytest.raises(UserNotFound):
        provider.confirm_enrolment("nobody", "123456")


def test_deleting_a_user_removes_their_rows(manager: AuthManager) -> None:
    """The enrolment and the recovery codes go with the user (ON DELETE CASCADE); others' stay."""
    provider, clock = setup(manager, "alice", "bob")
    enrolled(provider, clock, "alice")
    enrolled(provider, clock, "bob")

    def rows() -> tuple[Any, ...]:
        with provider.store.engine.connect() as connection:
            return tuple(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (totp_enrolments, recovery_codes)
            )

    assert rows() == (2, 20)
    provider.delete_user("alice")
    assert rows() == (1, 10)
    provider.create_user(NewUser(login="alice", password=SecretStr(PW)))
    assert not provider.second_factor_status("alice").enrolled


def test_settings_are_checked() -> None:
    """Digits 6-8, steps of 15-120 s, a window of at most 5, an issuer without ':', real group names."""
    for bad in (
        {"digits": 5}, {"digits": 9}, {"period": 10}, {"period": 121}, {"valid_window": -1}, {"valid_window": 6},
        {"recovery_codes": 0}, {"issuer": "a:b"}, {"issuer": ""}, {"required_groups": [""]},
        {"required_groups": ["a\x00"]}, {"unknown": 1},
    ):  # fmt: skip
        with pytest.raises(ValidationError):
            SecondFactorConfig.model_validate(bad)
    assert SecondFactorConfig() == SecondFactorConfig(
        required_groups=[], issuer="authcore", digits=6, period=30, valid_window=1, recovery_codes=10
    )
