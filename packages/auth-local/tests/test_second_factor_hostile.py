"""The second factor under attack, on SQLite and PostgreSQL: hostile codes, races, guessing, leaks."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import pyotp
import pytest
from pydantic import SecretStr

from auth_local import LocalProvider
from auth_local.factor_store import EnrolmentRow
from authcore import AuthManager, InvalidCredentials, NewUser, TotpEnrolment, UserChangeRefused
from authcore.testing.race import outcomes, race

PW = "Correct-Horse-Battery-9"
T0 = 1_800_000_010.0

HOSTILE = {
    "empty": "",
    "spaces": "   ",
    "one-megabyte": "1" * 1_000_000,
    "arabic-indic-digits": "١٢٣٤٥٦",
    "full-width-digits": "１２３４５６",
    "nul": "\x00" * 6,
    "nul-inside": "123\x00456",
    "sql": "' OR '1'='1' --",
    "sql-digits": "123456' OR 1=1 --",
    "recovery-sql": "aaaaa-' OR 1=1 --",
    "long-recovery": "abcde-fghjk-mnpqr",
    "control": "\x1b[2J12345",
    "surrogate": "\ud800" * 6,
}


def _provider(manager: AuthManager) -> tuple[LocalProvider, list[float]]:
    """The provider at T0 (the list holds the time, for the test to move), with ``alice`` enrolled."""
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    now = [T0]
    provider.clock = lambda: datetime.fromtimestamp(now[0], UTC)
    provider.create_user(NewUser(login="alice", password=SecretStr(PW)))
    return provider, now


@pytest.fixture
def alice(manager: AuthManager) -> tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment]:
    """Provider, clock, alice's authenticator and her confirmed enrolment (the step before T0 used)."""
    provider, now = _provider(manager)
    enrolment = provider.begin_enrolment("alice")
    totp = pyotp.TOTP(enrolment.secret)
    provider.confirm_enrolment("alice", totp.at(T0 - 30))
    return provider, now, totp, enrolment


@pytest.mark.parametrize("code", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_codes_are_wrong_codes(
    alice: tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment], code: str
) -> None:
    """Every method refuses with InvalidCredentials and its one message; the code is never echoed."""
    provider, _, totp, _ = alice
    for method in ("totp", "recovery", "enrol", code):
        with pytest.raises(InvalidCredentials) as caught:
            provider.check_second_factor("alice", method, code)
        assert type(caught.value) is InvalidCredentials
        assert str(caught.value) == InvalidCredentials.default_message
        assert code not in repr(caught.value) or not code.strip()
    with pytest.raises(InvalidCredentials):
        provider.confirm_enrolment("alice", code)
    provider.check_second_factor("alice", "totp", totp.at(T0))  # nothing was spent


@pytest.mark.parametrize("login", ["", "a\x00b", "x" * 100_000, "' OR 1=1 --", "\ud800"])
def test_hostile_logins(alice: tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment], login: str) -> None:
    """A login no account can have is a refused code, never another error."""
    provider, _, totp, _ = alice
    with pytest.raises(InvalidCredentials):
        provider.check_second_factor(login, "totp", totp.at(T0))


def test_non_text_input_is_refused(alice: tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment]) -> None:
    """A code or method that is not a string (a careless host passing JSON through) is a refused code."""
    provider, _, totp, _ = alice
    for code in (int(totp.at(T0)), None, [totp.at(T0)], b"123456"):
        for method in ("totp", "recovery"):
            with pytest.raises(InvalidCredentials):
                provider.check_second_factor("alice", method, code)  # type: ignore[arg-type]
    with pytest.raises(InvalidCredentials):
        provider.check_second_factor("alice", None, totp.at(T0))  # type: ignore[arg-type]
    provider.check_second_factor("alice", "totp", f" {totp.at(T0)[:3]} {totp.at(T0)[3:]} ")


@pytest.mark.parametrize("method", ["totp", "recovery"])
def test_eight_threads_one_code(
    alice: tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment], method: str
) -> None:
    """Eight concurrent uses of one valid code: exactly one is accepted, seven refused, nothing else."""
    provider, _, totp, enrolment = alice
    code = totp.at(T0) if method == "totp" else enrolment.recovery_codes[0]
    results = race(lambda _: provider.check_second_factor("alice", method, code))
    assert outcomes(results) == {"ok": 1, "InvalidCredentials": 7}, results


def test_eight_threads_one_enrolment_code(manager: AuthManager) -> None:
    """Eight concurrent confirmations with one code: one confirms, and that step cannot log in."""
    provider, _ = _provider(manager)
    totp = pyotp.TOTP(provider.begin_enrolment("alice").secret)
    results = race(lambda _: provider.confirm_enrolment("alice", totp.at(T0)))
    assert outcomes(results) == {"ok": 1, "InvalidCredentials": 7}, results
    with pytest.raises(InvalidCredentials):
        provider.check_second_factor("alice", "totp", totp.at(T0))


def test_concurrent_enrolments_leave_one(manager: AuthManager) -> None:
    """Four enrolments begun at once: none fails, and exactly the last one stored confirms, with its codes."""
    provider, _ = _provider(manager)
    made = race(lambda _: provider.begin_enrolment("alice"), 4)
    enrolments = [m for m in made if isinstance(m, TotpEnrolment)]
    assert len(enrolments) == 4, made
    stored = provider.store.enrolment(provider.store.get("alice").id)
    assert stored is not None
    (winner,) = [e for e in enrolments if e.secret == stored.secret]
    provider.confirm_enrolment("alice", pyotp.TOTP(winner.secret).at(T0))
    assert provider.second_factor_status("alice").recovery_codes_left == 10
    provider.check_second_factor("alice", "recovery", winner.recovery_codes[0])


def test_guessing_finds_nothing(alice: tuple[LocalProvider, list[float], pyotp.TOTP, TotpEnrolment]) -> None:
    """100 wrong TOTP codes and 100 wrong recovery codes: all refused; the real ones work afterwards
    (counting attempts is the manager's job)."""
    provider, _, totp, enrolment = alice
    valid = {totp.at(T0 + offset) for offset in (-30, 0, 30)}
    for _ in range(100):
        guess = f"{secrets.randbelow(1_000_000):06d}"
        if guess in valid:
            continue
        with pytest.raises(InvalidCredentials):
            provider.check_second_factor("alice", "totp", guess)
        code = "".join(secrets.choice("0123456789abcdefghjkmnpqrstvwxyz") for _ in range(10))
        assert code not in {c.replace("-", "") for c in enrolment.recovery_codes}
        with pytest.raises(InvalidCredentials):
            provider.check_second_factor("alice", "recovery", code)
    provider.check_second_factor("alice", "totp", totp.at(T0))
    provider.check_second_factor("alice", "recovery", enrolment.recovery_codes[-1])


def test_no_secret_in_any_repr_message_or_log(manager: AuthManager, caplog: pytest.LogCaptureFixture) -> None:
    """Secret and recovery codes appear in no repr, error, status or log line along the whole flow."""
    caplog.set_level(logging.DEBUG)
    provider, _ = _provider(manager)
    enrolment = provider.begin_enrolment("alice")
    totp = pyotp.TOTP(enrolment.secret)
    provider.confirm_enrolment("alice", totp.at(T0))
    secrets_shown = [
        enrolment.secret,
        *enrolment.recovery_codes,
        *(c.replace("-", "") for c in enrolment.recovery_codes),
    ]
    shown = [repr(enrolment), str(enrolment), repr(provider), repr(provider.store)]
    shown.append(repr(provider.store.enrolment(provider.store.get("alice").id)))
    shown.append(repr(provider.second_factor_status("alice")))
    with pytest.raises(UserChangeRefused) as again:
        provider.begin_enrolment("alice")
    shown += [str(again.value), repr(again.value)]
    for method, code in (("totp", totp.at(T0)), ("recovery", enrolment.recovery_codes[0] + "x")):
        with pytest.raises(InvalidCredentials) as caught:
            provider.check_second_factor("alice", method, code)
        shown += [str(caught.value), repr(caught.value)]
    provider.check_second_factor("alice", "recovery", enrolment.recovery_codes[1])
    provider.remove_second_factor("alice")
    shown.append(caplog.text)
    assert "recovery_codes=10" in repr(enrolment)
    row = EnrolmentRow(secret="JBSWY3DPEHPK3PXP", digits=6, period=30, confirmed=True, last_step=1)
    assert "JBSWY3DPEHPK3PXP" not in repr(row) and "JBSWY3DPEHPK3PXP" not in str(row)
    leaks = [s for s in shown if any(secret in s for secret in secrets_shown)]
    assert leaks == []
