"""The second step of a login through the core (AuthManager), on every session store: the
challenge, single use, wrong codes counted per challenge and per user, enrolment a login
demands, hostile input, and a challenge finished by another instance sharing the store."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest

from authcore import (
    AuthManager,
    BadRequest,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    SecondFactorRequired,
    Throttled,
)
from authcore.second_factor import MAX_ATTEMPTS, MAX_USER_ATTEMPTS
from authcore.testing.contract_provider import contract_config
from authcore.testing.contract_second_factor import totp_code

PASSWORD = {"login": "alice", "password": "wonderland"}


@pytest.fixture
def store(store_url: str) -> str:
    return store_url


def _config(store: str) -> dict[str, Any]:
    return {**contract_config(), "sessions": {"store": store}}


@pytest.fixture
def manager(store: str) -> Iterator[AuthManager]:
    with AuthManager.from_config(_config(store)) as made:
        yield made


def _enrol(manager: AuthManager, login: str = "alice") -> tuple[str, tuple[str, ...]]:
    """Enrol *login*; return the secret and the recovery codes. The confirming step is used up."""
    enrolment = manager.begin_enrolment("contract", login)
    manager.confirm_enrolment("contract", login, totp_code(enrolment.secret))
    return enrolment.secret, enrolment.recovery_codes


def _challenge(manager: AuthManager, **credentials: str) -> SecondFactorRequired:
    with pytest.raises(SecondFactorRequired) as raised:
        manager.login("contract", **(credentials or PASSWORD))
    return raised.value


def _next_step_code(secret: str) -> str:
    """A code of the next time step (accepted as clock drift; the current one is spent)."""
    return totp_code(secret, time.time() + 30)


def test_a_user_without_a_factor_logs_in_with_the_password_alone(manager: AuthManager) -> None:
    assert manager.login("contract", **PASSWORD).login == "alice"


def test_an_enrolled_user_gets_a_challenge_then_a_session(manager: AuthManager) -> None:
    secret, _codes = _enrol(manager)
    required = _challenge(manager)
    assert required.methods == ("totp", "recovery") and required.expires_in == 300
    assert required.challenge.startswith("mfa_")
    # The challenge is no message and no repr: it opens the second step.
    assert required.challenge not in str(required) + repr(required)
    assert required.status_code == 401 and required.code == "second_factor_required"
    result = manager.complete_login(required.challenge, _next_step_code(secret))
    assert manager.verify(result.access_token).login == "alice"
    assert manager.refresh(result.refresh_token).login == "alice"


def test_a_challenge_is_single_use_and_never_a_token(manager: AuthManager) -> None:
    _secret, codes = _enrol(manager)
    required = _challenge(manager)
    for use in (manager.verify, manager.refresh):
        with pytest.raises(InvalidToken):
            use(required.challenge)
    manager.complete_login(required.challenge, codes[0], method="recovery")
    with pytest.raises(InvalidToken):
        manager.complete_login(required.challenge, codes[1], method="recovery")


def test_two_racing_good_codes_start_one_session(manager: AuthManager) -> None:
    _secret, codes = _enrol(manager)
    required = _challenge(manager)

    def attempt(code: str) -> str:
        try:
            return manager.complete_login(required.challenge, code, method="recovery").session_id
        except InvalidToken:
            return ""

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sessions = [s for s in pool.map(attempt, codes) if s]
    assert len(sessions) == 1


def test_wrong_codes_end_the_challenge_after_the_limit(manager: AuthManager) -> None:
    secret, _codes = _enrol(manager)
    required = _challenge(manager)
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(InvalidCredentials) as wrong:
            manager.complete_login(required.challenge, "000000")
        assert str(wrong.value) == InvalidCredentials.default_message
    with pytest.raises(InvalidToken, match="too many wrong codes"):
        manager.complete_login(required.challenge, _next_step_code(secret))
    with pytest.raises(InvalidToken):  # ended, not merely refused once
        manager.complete_login(required.challenge, _next_step_code(secret))


def test_a_user_runs_out_of_guesses_across_challenges(manager: AuthManager) -> None:
    secret, _codes = _enrol(manager)
    for _ in range(MAX_USER_ATTEMPTS // (MAX_ATTEMPTS - 1)):
        required = _challenge(manager)
        for _ in range(MAX_ATTEMPTS - 1):
            with pytest.raises(InvalidCredentials):
                manager.complete_login(required.challenge, "000000")
    with pytest.raises(Throttled) as throttled:
        manager.complete_login(_challenge(manager).challenge, _next_step_code(secret))
    assert throttled.value.retry_after > 0


def test_a_method_the_challenge_does_not_take_is_a_bad_request(manager: AuthManager) -> None:
    _enrol(manager)
    required = _challenge(manager)
    with pytest.raises(BadRequest):
        manager.complete_login(required.challenge, "123456", method="enrol")
    with pytest.raises(BadRequest):
        manager.begin_login_enrolment(required.challenge)


@pytest.mark.parametrize(
    "challenge",
    ["", "mfa_", "mfa_" + "A" * 43, "x" * 1_000_000, "mfa_\x00" + "a" * 42, "mfa_" + "é" * 43, "rt_abc", None, 7],
)
def test_hostile_challenges_are_invalid_tokens(manager: AuthManager, challenge: Any) -> None:
    with pytest.raises(InvalidToken):
        manager.complete_login(challenge, "123456")


@pytest.mark.parametrize("code", ["", "1" * 65, "x" * 1_000_000, "١٢٣٤٥٦", "12345\x00", "' OR 1=1 --", None])
def test_hostile_codes_are_refused_with_the_one_message(manager: AuthManager, code: Any) -> None:
    _enrol(manager)
    required = _challenge(manager)
    with pytest.raises(InvalidCredentials) as refused:
        manager.complete_login(required.challenge, code)
    assert str(refused.value) == InvalidCredentials.default_message


def test_a_login_the_policy_requires_enrols_on_the_way_in(manager: AuthManager) -> None:
    required = _challenge(manager, login="tess", password="tesspw")
    assert required.methods == ("enrol",)
    enrolment = manager.begin_login_enrolment(required.challenge)
    result = manager.complete_login(required.challenge, totp_code(enrolment.secret), method="enrol")
    assert result.login == "tess"
    assert manager.second_factor_status("contract", "tess").enrolled
    # From now on the login asks for a code.
    assert _challenge(manager, login="tess", password="tesspw").methods == ("totp", "recovery")


def test_disabling_the_user_ends_the_pending_login(manager: AuthManager) -> None:
    secret, _codes = _enrol(manager)
    required = _challenge(manager)
    # A login waiting for its code is no session of the user's: not listed, but ended with them.
    assert manager.sessions_of("alice") == []
    assert len(manager.sessions_of("alice", pending=True)) == 1
    manager.users("contract").disable_user("alice")
    assert manager.end_sessions_of("alice") == 1
    with pytest.raises(InvalidToken):
        manager.complete_login(required.challenge, _next_step_code(secret))


def test_removing_the_factor_takes_a_code(manager: AuthManager) -> None:
    _secret, codes = _enrol(manager)
    with pytest.raises(InvalidCredentials):
        manager.remove_second_factor("contract", "alice", "000000")
    manager.remove_second_factor("contract", "alice", codes[0])
    assert not manager.second_factor_status("contract", "alice").enrolled
    assert manager.login("contract", **PASSWORD).login == "alice"


def test_a_provider_without_the_capability_says_so() -> None:
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager:
        with pytest.raises(NotSupported):
            manager.second_factor_status("dummy", "test")
        assert manager.login("dummy", login="test", password="Admin").login == "test"


@pytest.mark.parametrize("store_url", ["sqlite", "redis"], indirect=True)
def test_another_instance_sharing_the_store_finishes_the_login(store: str) -> None:
    with AuthManager.from_config(_config(store)) as first, AuthManager.from_config(_config(store)) as second:
        # Each instance has its own provider object (the contract's users live in memory): enrol both alike.
        enrolment = first.begin_enrolment("contract", "alice")
        first.confirm_enrolment("contract", "alice", totp_code(enrolment.secret))
        second.providers["contract"]._factors = first.providers["contract"]._factors  # type: ignore[attr-defined]
        required = _challenge(first)
        result = second.complete_login(required.challenge, enrolment.recovery_codes[0], method="recovery")
        assert first.verify(result.access_token).login == "alice"
        with pytest.raises(InvalidToken):
            first.complete_login(required.challenge, enrolment.recovery_codes[1], method="recovery")


def test_a_provider_failing_unexpectedly_is_an_outage_on_every_path(manager: AuthManager) -> None:
    """Whatever a provider's code check raises by surprise is ProviderUnavailable (503), its
    message not shown: at the login's second step and when a user removes their factor."""
    from authcore import ProviderUnavailable

    secret, _codes = _enrol(manager)
    required = _challenge(manager)
    provider: Any = manager.providers["contract"]

    def broken(login: str, method: str, code: str) -> None:
        raise RuntimeError(f"database said: {code}")

    provider.check_second_factor = broken
    for attempt in (
        lambda: manager.complete_login(required.challenge, _next_step_code(secret)),
        lambda: manager.remove_second_factor("contract", "alice", _next_step_code(secret)),
    ):
        with pytest.raises(ProviderUnavailable) as failed:
            attempt()
        assert "database said" not in str(failed.value)
