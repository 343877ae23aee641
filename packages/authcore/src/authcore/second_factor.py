"""The second step of a login: a pending login, its single-use challenge, and wrong codes counted.

A mixin of :class:`~authcore.AuthManager`. When a provider with the
:class:`~authcore.capabilities.SecondFactor` capability says a login needs a second step, the
manager does not start the session: it keeps the checked identity as a *pending login* and
raises :class:`~authcore.capabilities.SecondFactorRequired` carrying its *challenge*.

The pending login is a short token's session in the session store, opened by an opaque secret
(``mfa_`` + 256 random bits, only its hash stored, like a personal access token's): so every
instance sharing the store can finish it, disabling the user ends it, and it never verifies as
an access token nor refreshes. :meth:`SecondFactorLogins.complete_login` spends it (one store
revocation decides which of two racing calls wins) and starts the real session.

Wrong codes are counted in the shared state (the throttle's counters: Redis for several
instances): at most :data:`MAX_ATTEMPTS` per challenge, after which it is ended, and at most
:data:`MAX_USER_ATTEMPTS` per user in :data:`ATTEMPT_WINDOW` seconds across challenges, so that
knowing the password does not buy unlimited guesses one challenge at a time. A TOTP code has
10^6 values; with three accepted per step (clock drift), 20 guesses per 15 minutes give an
attacker about one chance in 17,000 per window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .capabilities import SecondFactor, SecondFactorRequired, SecondFactorStatus, TotpEnrolment
from .errors import (
    AuthError,
    BadRequest,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    ProviderUnavailable,
    Throttled,
)
from .logins import PENDING_SECOND_FACTOR, snapshot
from .sessions.shared import SharedState, shared_state_of

if TYPE_CHECKING:
    from .login_results import StartedLogin
    from .logins import Identities
    from .models import Identity, LoginResult
    from .providers import Provider
    from .sessions import SessionRecord, Sessions

__all__ = [
    "ATTEMPT_WINDOW",
    "CHALLENGE_LIFETIME",
    "CHALLENGE_PREFIX",
    "MAX_ATTEMPTS",
    "MAX_USER_ATTEMPTS",
    "SecondFactorLogins",
]

#: The prefix of a challenge (a pending login's opaque secret).
CHALLENGE_PREFIX = "mfa_"
#: Seconds a pending login waits for its second step.
CHALLENGE_LIFETIME = 300
#: Wrong codes one challenge takes before it is ended.
MAX_ATTEMPTS = 5
#: Wrong codes one user's challenges take together in :data:`ATTEMPT_WINDOW` seconds.
MAX_USER_ATTEMPTS = 20
ATTEMPT_WINDOW = 900.0

log = logging.getLogger("authcore")

_ATTEMPTS_LOCK = threading.Lock()
_METHODS = frozenset({"totp", "recovery", "enrol"})
#: A code is short; anything longer is refused before a provider sees it.
_MAX_CODE_LENGTH = 64


class SecondFactorLogins:
    """Mixin of :class:`~authcore.AuthManager`: logins that take a second step (see the module)."""

    if TYPE_CHECKING:  # provided by AuthManager
        _sessions: Sessions
        _identities: Identities
        provider: Callable[[str], Provider]

        def _started(
            self,
            provider: str,
            identity: Identity,
            granted: tuple[str, ...],
            lifetime: float | None,
            attempted: str | None,
        ) -> StartedLogin: ...

    _attempts: SharedState | None = None

    # ----------------------------------------------------------------- the login's second step

    def _ask_second_factor(
        self, provider: SecondFactor, identity: Identity, granted: tuple[str, ...], lifetime: float | None
    ) -> None:
        """Raise :class:`SecondFactorRequired` with a new challenge if *provider* wants a second step."""
        methods = tuple(provider.second_factor_methods(identity))
        if not methods:
            return
        data = snapshot(identity, granted)
        data[PENDING_SECOND_FACTOR] = {"methods": list(methods), "lifetime": lifetime}
        _record, challenge = self._sessions.start_personal(
            login=identity.login,
            provider=identity.provider,
            identity=data,
            lifetime=CHALLENGE_LIFETIME,
            prefix=CHALLENGE_PREFIX,
        )
        raise SecondFactorRequired(challenge, methods, CHALLENGE_LIFETIME)

    def complete_login(self, challenge: str, code: str, *, method: str | None = None) -> LoginResult:
        """Finish a login that raised :class:`SecondFactorRequired`: check *code* by *method*
        (default: the first the challenge named) and start the session the login would have.

        :class:`InvalidToken` for a challenge that is unknown, used, expired or ended after too
        many wrong codes; :class:`InvalidCredentials` for a wrong code; :class:`Throttled` when
        the user's challenges took too many wrong codes lately; :class:`BadRequest` for a method
        the challenge does not take.
        """
        record, pending = self._pending(challenge)
        methods = pending["methods"]
        chosen = methods[0] if method is None else method
        if chosen not in methods:
            raise BadRequest(f"this login takes a second factor by: {', '.join(methods)}")
        provider = self._second_factor_provider(record.provider)
        accepted = self._check_code(record.provider, record.login, chosen, code, challenge_id=record.session_id)
        identity = _checked(lambda: provider.check_second_factor(record.login, chosen, code), record.provider)
        accepted()
        # Single use: of two calls racing with good codes, the one whose revocation took effect wins.
        if not self._sessions.revoke(record.session_id):
            raise InvalidToken("unknown or ended second-factor challenge")
        checked, granted = self._identities.finish(self.provider(record.provider), identity)
        lifetime = pending.get("lifetime")
        return self._started(record.provider, checked, granted, lifetime, record.login).sign()

    def begin_login_enrolment(self, challenge: str) -> TotpEnrolment:
        """For a login whose challenge asks to ``enrol``: a new TOTP secret and recovery codes;
        :meth:`complete_login` with ``method="enrol"`` and a code from the app confirms it."""
        record, pending = self._pending(challenge)
        if "enrol" not in pending["methods"]:
            raise BadRequest("this login takes no enrolment: the user has a second factor")
        return self._second_factor_provider(record.provider).begin_enrolment(record.login)

    def _pending(self, challenge: str) -> tuple[SessionRecord, Mapping[str, Any]]:
        session_id = self._sessions.session_of_personal_token(challenge, CHALLENGE_PREFIX)
        record = self._sessions.get(session_id) if session_id is not None else None
        pending = record.identity.get(PENDING_SECOND_FACTOR) if record is not None else None
        if record is None or not isinstance(pending, dict) or not record.active(time.time()):
            raise InvalidToken("unknown or ended second-factor challenge")
        return record, pending

    # ----------------------------------------------------------------- a signed-in user's factor

    def second_factor_status(self, provider: str, login: str) -> SecondFactorStatus:
        """The state of *login*'s second factor at *provider*."""
        return self._second_factor_provider(provider).second_factor_status(login)

    def begin_enrolment(self, provider: str, login: str) -> TotpEnrolment:
        """Start a TOTP enrolment for a signed-in user (see :meth:`SecondFactor.begin_enrolment`)."""
        return self._second_factor_provider(provider).begin_enrolment(login)

    def confirm_enrolment(self, provider: str, login: str, code: str) -> None:
        """Confirm a signed-in user's pending enrolment with a code from the app (wrong codes count)."""
        factor = self._second_factor_provider(provider)
        accepted = self._check_code(provider, login, "enrol", code)
        _checked(lambda: factor.confirm_enrolment(login, code), provider)
        accepted()

    def remove_second_factor(self, provider: str, login: str, code: str | None) -> None:
        """Drop *login*'s second factor. A user proves a current code or a recovery code first;
        ``code=None`` is an administrator's reset (a lost device), for callers that checked that."""
        factor = self._second_factor_provider(provider)
        if code is not None:
            accepted = self._check_code(provider, login, "totp", code)
            try:
                _checked(lambda: factor.check_second_factor(login, "totp", code), provider)
            except InvalidCredentials:
                _checked(lambda: factor.check_second_factor(login, "recovery", code), provider)
            accepted()
        factor.remove_second_factor(login)

    # ----------------------------------------------------------------- shared parts

    def _second_factor_provider(self, name: str) -> SecondFactor:
        provider = self.provider(name)
        if not isinstance(provider, SecondFactor):
            raise NotSupported(name, "second factor")
        return provider

    def _check_code(
        self,
        provider_name: str,
        login: str,
        method: str,
        code: str,
        *,
        challenge_id: str | None = None,
    ) -> Callable[[], None]:
        """Refuse malformed input, and count this attempt against the user and the challenge;
        return what to call once the code is accepted (the user's count starts again).

        Every attempt counts until it succeeds (the throttle's "reserve" discipline), so a
        flood of parallel guesses cannot all slip in before the first failure is recorded.
        """
        if method not in _METHODS:
            raise BadRequest("unknown second-factor method")
        # Codes are short printable ASCII: other input never reaches a provider (whose
        # comparisons may not take it: hmac.compare_digest raises on non-ASCII text).
        if type(code) is not str or not code or len(code) > _MAX_CODE_LENGTH or not code.isascii():
            raise InvalidCredentials()
        if not code.isprintable():
            raise InvalidCredentials()
        state = self._attempts
        if state is None:
            with _ATTEMPTS_LOCK:  # one counter store per manager, even when two first attempts race
                state = self._attempts
                if state is None:
                    state = self._attempts = shared_state_of(self._sessions.store)
        now = time.time()
        user_key = f"second-factor:user:{provider_name}:{login}"
        keys, limits = [user_key], [MAX_USER_ATTEMPTS]
        if challenge_id is not None:
            keys.append(f"second-factor:challenge:{challenge_id}")
            limits.append(MAX_ATTEMPTS)
        tallies = state.hit(keys, limits, window=ATTEMPT_WINDOW, now=now)
        if tallies[0].hits >= MAX_USER_ATTEMPTS:
            raise Throttled(tallies[0].ends_at - now)
        if challenge_id is not None and tallies[1].hits >= MAX_ATTEMPTS:
            self._sessions.revoke(challenge_id)
            raise InvalidToken("too many wrong codes: sign in again")
        return lambda: state.forget([user_key])


_T = TypeVar("_T")


def _checked(check: Callable[[], _T], provider: str) -> _T:
    """Run a provider's code check: one message for every refusal (a wrong code tells nothing
    more), and an unexpected failure is the provider's outage, its message not shown."""
    try:
        return check()
    except InvalidCredentials:
        raise InvalidCredentials() from None
    except AuthError:
        raise
    except Exception as exc:
        log.error("provider %r failed checking a second factor: %s", provider, type(exc).__name__)
        raise ProviderUnavailable(f"provider {provider!r} failed") from exc
