"""The HTTP contract suite's part for the second-factor rows, and the contract provider's TOTP.

:class:`ContractSecondFactor` gives :class:`~authcore.testing.contract_provider.ContractProvider`
TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one step of drift) kept in memory, with
the rules every provider keeps: a time step is used once, a recovery code once. Users named in
the configuration's ``second_factor_required`` must enrol at their next login. It is written
here with :mod:`hmac` so that the core's test kit needs no TOTP library.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from ..capabilities import SecondFactor, SecondFactorStatus, TotpEnrolment
from ..errors import InvalidCredentials, UserChangeRefused
from ..models import Identity

if TYPE_CHECKING:
    from .web_contract import WebAdapterContract

__all__ = ["ContractSecondFactor", "second_factor_rows", "totp_code"]

_STEP = 30


def totp_code(secret: str, at: float | None = None) -> str:
    """The 6-digit RFC 6238 code of the base32 *secret* at Unix time *at* (now by default)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // _STEP)
    digest = hmac.digest(key, struct.pack(">Q", counter), "sha1")
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


@dataclass
class _Factor:
    secret: str = ""
    pending: str = ""
    recovery: set[str] = field(default_factory=set)
    pending_recovery: tuple[str, ...] = ()
    last_step: int = -1


class ContractSecondFactor(SecondFactor):
    """TOTP in memory for the contract provider (see the module)."""

    name: str
    required: frozenset[str] = frozenset()
    get_user: Callable[[str], Identity]
    _factors: dict[str, _Factor] | None = None
    _factor_lock = threading.Lock()

    def _factor(self, login: str) -> _Factor:
        if self._factors is None:
            self._factors = {}
        return self._factors.setdefault(login, _Factor())

    def second_factor_methods(self, identity: Identity) -> tuple[str, ...]:
        """``totp``/``recovery`` once enrolled; ``enrol`` for a login the configuration requires it of."""
        if self._factor(identity.login).secret:
            return ("totp", "recovery")
        return ("enrol",) if identity.login in self.required else ()

    def check_second_factor(self, login: str, method: str, code: str) -> Identity:
        """See :meth:`SecondFactor.check_second_factor`."""
        with self._factor_lock:
            factor = self._factor(login)
            if method == "recovery" and code in factor.recovery:
                factor.recovery.discard(code)
            elif method == "totp" and factor.secret and self._spend_step(factor, factor.secret, code):
                pass
            elif method == "enrol" and factor.pending and self._spend_step(factor, factor.pending, code):
                factor.secret, factor.pending = factor.pending, ""
                factor.recovery, factor.pending_recovery = set(factor.pending_recovery), ()
            else:
                raise InvalidCredentials()
        return self.get_user(login)

    @staticmethod
    def _spend_step(factor: _Factor, secret: str, code: str) -> bool:
        now = time.time()
        for drift in (0, -1, 1):
            at = now + drift * _STEP
            step = int(at // _STEP)
            if step > factor.last_step and hmac.compare_digest(totp_code(secret, at).encode(), code.encode()):
                factor.last_step = step
                return True
        return False

    def second_factor_status(self, login: str) -> SecondFactorStatus:
        """See :meth:`SecondFactor.second_factor_status`."""
        self.get_user(login)
        factor = self._factor(login)
        return SecondFactorStatus(bool(factor.secret), login in self.required, len(factor.recovery))

    def begin_enrolment(self, login: str) -> TotpEnrolment:
        """See :meth:`SecondFactor.begin_enrolment`."""
        self.get_user(login)
        factor = self._factor(login)
        if factor.secret:
            raise UserChangeRefused("a second factor is enrolled: remove it first")
        factor.pending = base64.b32encode(secrets.token_bytes(20)).decode("ascii")
        factor.pending_recovery = tuple(secrets.token_hex(5) for _ in range(4))
        uri = f"otpauth://totp/{quote(self.name)}:{quote(login)}?secret={factor.pending}&issuer={quote(self.name)}"
        return TotpEnrolment(factor.pending, uri, factor.pending_recovery)

    def confirm_enrolment(self, login: str, code: str) -> None:
        """See :meth:`SecondFactor.confirm_enrolment`."""
        self.check_second_factor(login, "enrol", code)

    def remove_second_factor(self, login: str) -> None:
        """See :meth:`SecondFactor.remove_second_factor`."""
        if self._factors is not None:
            self._factors.pop(login, None)


def second_factor_rows(
    suite: WebAdapterContract, http: httpx.Client, admin: dict[str, str]
) -> dict[str, Callable[[], httpx.Response]]:
    """How to exercise each second-factor row successfully, by route name, in this order.

    Alice enrols (her recovery codes kept), signs in again with a recovery code, and removes the
    factor with another; ``tess``, whom the configuration requires to enrol, starts a login that
    must enrol. Alice ends without a second factor, as the other rows expect her.
    """
    p = suite.prefix
    alice: dict[str, str] = {}  # signed in when the rows run: an earlier row ends alice's sessions
    enrolment: dict[str, list[str]] = {}

    def enrol() -> httpx.Response:
        alice.update(suite.bearer(suite.login(httpx.Client(base_url=http.base_url), "alice", "wonderland")["token"]))
        answer = http.post(f"{p}/auth/me/second-factor", headers=alice)
        enrolment.update(answer.json())
        return answer

    def confirm() -> httpx.Response:
        code = totp_code(str(enrolment["secret"]))
        return http.post(f"{p}/auth/me/second-factor/confirm", headers=alice, json={"code": code})

    def challenge(login: str, password: str) -> str:
        answer = http.post(f"{p}/auth/login", json={"plugin": "contract", "login": login, "password": password})
        assert answer.status_code == 401 and answer.json()["code"] == "second_factor_required", answer.text
        return str(answer.json()["challenge"])

    def second_step() -> httpx.Response:
        body = {"challenge": challenge("alice", "wonderland"), "code": enrolment["recovery_codes"][0]}
        return http.post(f"{p}/auth/login/second-factor", json={**body, "method": "recovery"})

    def must_enrol() -> httpx.Response:
        body = {"challenge": challenge("tess", "tesspw")}
        return http.post(f"{p}/auth/login/second-factor/enrolment", json=body)

    def remove() -> httpx.Response:
        code = enrolment["recovery_codes"][1]
        return http.request("DELETE", f"{p}/auth/me/second-factor", headers=alice, json={"code": code})

    return {
        "second_factor_enrol": enrol,
        "second_factor_confirm": confirm,
        "second_factor_status": lambda: http.get(f"{p}/auth/me/second-factor", headers=alice),
        "second_factor_login": second_step,
        "second_factor_login_enrolment": must_enrol,
        "second_factor_remove": remove,
        "users_second_factor": lambda: http.get(f"{p}/auth/users/contract/tess/second-factor", headers=admin),
        "users_second_factor_reset": lambda: http.delete(f"{p}/auth/users/contract/tess/second-factor", headers=admin),
    }
