"""The HTTP contract suite's part for the password self-service rows (:mod:`authcore.web.self_service`).

:class:`ContractSelfService` gives the suite's provider (:class:`~.contract_provider.ContractProvider`)
the :class:`~authcore.capabilities.PasswordSelfService` capability in memory. Its "messages" go
to :data:`OUTBOX`, where the rows read the tokens a user would find in their mail: the adapter
serves the suite's manager in this process (:meth:`WebAdapterContract.serve
<authcore.testing.web_contract.WebAdapterContract.serve>` is handed the object), so the rows and
the provider share it. :func:`self_service_rows` exercises each row once, successfully, each
for a user of its own registered for the purpose, so the other rows' users are left alone.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import httpx

from ..capabilities import Invitations, PasswordSelfService
from ..errors import BadRequest, InvalidCredentials, InvalidToken, UserNotFound

if TYPE_CHECKING:
    from .web_contract import WebAdapterContract

__all__ = ["ContractSelfService", "Outbox", "OUTBOX", "self_service_rows"]

Purpose = Literal["reset", "verify", "invite"]


class Outbox:
    """The messages the contract provider "sent": the newest token per (login, purpose).

    Bounded (the oldest logins go first) and safe across the server's threads.
    """

    def __init__(self, max_entries: int = 1000) -> None:
        self.max_entries = max_entries
        self._tokens: OrderedDict[tuple[str, Purpose], list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # tokens are secrets, even in a test kit
        return f"Outbox(entries={len(self._tokens)})"

    def deliver(self, login: str, purpose: Purpose, token: str) -> None:
        """Keep *token* as the newest message of *purpose* to *login*."""
        with self._lock:
            self._tokens.setdefault((login, purpose), []).append(token)
            self._tokens.move_to_end((login, purpose))
            while len(self._tokens) > self.max_entries:
                self._tokens.popitem(last=False)

    def sent(self, login: str, purpose: Purpose) -> list[str]:
        """Every token of *purpose* sent to *login*, oldest first."""
        with self._lock:
            return list(self._tokens.get((login, purpose), ()))

    def last(self, login: str, purpose: Purpose) -> str:
        """The newest token of *purpose* sent to *login*; :class:`LookupError` if none was."""
        sent = self.sent(login, purpose)
        if not sent:
            raise LookupError(f"no {purpose} message was sent to that user")
        return sent[-1]


#: Where every :class:`ContractSelfService` delivers unless given another outbox.
OUTBOX = Outbox()


class ContractSelfService(PasswordSelfService, Invitations):
    """:class:`~authcore.capabilities.PasswordSelfService` for the contract provider, in memory.

    Tokens are single-use (kept hashed, spent by one ``pop``) and delivered to :attr:`outbox`.
    Expects the provider's ``passwords`` (login → password) and ``disabled`` (logins).
    """

    name: str
    passwords: dict[str, str]
    disabled: set[str]
    outbox: Outbox = OUTBOX

    def _pending(self) -> dict[str, str]:
        """Unspent tokens: ``purpose:sha256(token)`` → login. Made on first use (the provider's
        ``__init__`` is not this mixin's to extend)."""
        pending: dict[str, str] = self.__dict__.setdefault("_account_tokens", {})
        return pending

    @staticmethod
    def _key(token: str, purpose: Purpose) -> str:
        return f"{purpose}:{hashlib.sha256(token.encode()).hexdigest()}"

    def invite(self, email: str, roles: Sequence[str] = ()) -> None:
        """ "Mail" an invitation to *email* (kept in the outbox under the address; roles unused here)."""
        if "@" not in email:
            raise BadRequest("not an e-mail address", status_code=422)
        self.outbox.deliver(email, "invite", secrets.token_urlsafe(32))

    def _issue(self, login: str, purpose: Purpose) -> None:
        token = secrets.token_urlsafe(32)
        self._pending()[self._key(token, purpose)] = login
        self.outbox.deliver(login, purpose, token)

    def _spend(self, token: str, purpose: Purpose) -> str:
        """The login of an unspent token of *purpose*, spent now (one ``pop``: one winner)."""
        login = self._pending().pop(self._key(token, purpose), None)
        if login is None or login not in self.passwords:
            raise InvalidToken("the link is invalid or has expired")
        return login

    @property
    def verified(self) -> set[str]:
        """Logins whose address was verified."""
        verified: set[str] = self.__dict__.setdefault("_verified", set())
        return verified

    def change_password(self, login: str, current_password: str, new_password: str) -> None:
        """The current password must match (unknown and disabled users: the same refusal)."""
        known = self.passwords.get(login, "\x00decoy")
        if not secrets.compare_digest(known.encode(), current_password.encode()) or login in self.disabled:
            raise InvalidCredentials()
        if new_password == current_password:
            raise BadRequest("the new password must differ from the current one", status_code=422)
        self.passwords[login] = new_password

    def request_password_reset(self, login_or_email: str) -> None:
        """A reset token to an enabled user's outbox; nothing, silently, for anyone else."""
        if login_or_email in self.passwords and login_or_email not in self.disabled:
            self._issue(login_or_email, "reset")

    def reset_password(self, token: str, new_password: str) -> str:
        """Spend a reset token; the login it belonged to."""
        login = self._spend(token, "reset")
        self.passwords[login] = new_password
        return login

    def request_email_verification(self, login: str) -> None:
        """A verification token to the user's outbox."""
        if login not in self.passwords:
            raise UserNotFound()
        self._issue(login, "verify")

    def verify_email(self, token: str) -> str:
        """Spend a verification token; the login is verified."""
        login = self._spend(token, "verify")
        self.verified.add(login)
        return login


def self_service_rows(
    suite: WebAdapterContract, http: httpx.Client, admin: dict[str, str]
) -> dict[str, Callable[[], httpx.Response]]:
    """How to exercise each self-service row successfully, by route name.

    Every row registers a user of its own (``POST /auth/register/contract``), so changing or
    resetting a password ends nobody else's sessions.
    """
    p = suite.prefix

    def fresh_user() -> tuple[str, str, dict[str, str]]:
        """A new user: login, password, and the bearer header of a session of theirs."""
        login, password = f"self-{secrets.token_hex(6)}", secrets.token_urlsafe(12)
        registered = http.post(f"{p}/auth/register/contract", json={"login": login, "password": password})
        assert registered.status_code == 201, registered.text
        with httpx.Client(base_url=http.base_url, timeout=10) as device:  # a session of its own
            signed_in = suite.login(device, login, password)
        return login, password, suite.bearer(signed_in["token"])

    def change() -> httpx.Response:
        _login, password, bearer = fresh_user()
        body = {"current_password": password, "new_password": password + "-changed"}
        return http.post(f"{p}/auth/password/change", headers=bearer, json=body)

    def forgot() -> httpx.Response:
        login, _password, _bearer = fresh_user()
        return http.post(f"{p}/auth/password/forgot", json={"plugin": "contract", "login": login})

    def reset() -> httpx.Response:
        login, _password, _bearer = fresh_user()
        asked = http.post(f"{p}/auth/password/forgot", json={"login": login})  # the only capable instance
        assert asked.status_code == 202, asked.text
        body = {"token": OUTBOX.last(login, "reset"), "new_password": "a-new-password"}
        return http.post(f"{p}/auth/password/reset", json=body)

    def verification() -> httpx.Response:
        _login, _password, bearer = fresh_user()
        return http.post(f"{p}/auth/email/verification", headers=bearer)

    def verify() -> httpx.Response:
        login, _password, bearer = fresh_user()
        asked = http.post(f"{p}/auth/email/verification", headers=bearer, json={})
        assert asked.status_code == 202, asked.text
        return http.post(f"{p}/auth/email/verify", json={"plugin": "contract", "token": OUTBOX.last(login, "verify")})

    return {
        "password_change": change,
        "password_forgot": forgot,
        "password_reset": reset,
        "email_verification_request": verification,
        "email_verify": verify,
        "users_invite": lambda: http.post(
            f"{p}/auth/users/contract/invitations", headers=admin, json={"email": "new@example.org", "roles": ["staff"]}
        ),
    }
