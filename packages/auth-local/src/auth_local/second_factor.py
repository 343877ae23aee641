"""The ``local`` provider's second factor: TOTP (RFC 6238) with single-use recovery codes.

A mixin of :class:`~auth_local.provider.LocalProvider` implementing authcore's
:class:`~authcore.SecondFactor` capability; the SQL is in :mod:`auth_local.factor_store`.
The manager keeps the pending login and counts wrong codes; this module keeps the secrets and
makes every code work once: a TOTP code only for a time step later than the last one accepted,
a recovery code until it is spent.

Codes are checked on their normalised form: spaces removed everywhere (apps show ``123 456``);
recovery codes ignoring case and dashes, with Crockford's reading of ``o`` as ``0`` and ``i``,
``l`` as ``1``. Anything else (too long, other digits, control characters) is a wrong code:
:class:`~authcore.InvalidCredentials` with its one message, and no code is ever logged.
"""

from __future__ import annotations

import base64
import functools
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import pyotp

from authcore import Identity, InvalidCredentials, SecondFactor, SecondFactorStatus, TotpEnrolment, UserChangeRefused
from authcore.providers import MAX_LOGIN_LENGTH

from .config import LocalConfig
from .factor_store import EnrolmentRow, FactorStore
from .fields import login_key, lookup_key
from .secret_box import SecretBox
from .store import UserRow

__all__ = [
    "LocalSecondFactor",
    "RECOVERY_ALPHABET",
    "new_recovery_code",
    "normal_recovery_code",
    "normal_totp_code",
]

log = logging.getLogger("auth_local")

#: Crockford's base32 alphabet, lower case: no ``i``, ``l``, ``o``, ``u`` to misread. 5 bits a character.
RECOVERY_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
#: Characters of a recovery code without its dash: 10 x 5 = 50 random bits.
RECOVERY_LENGTH: Final = 10
#: What a reader may type for a character the alphabet leaves out.
_CROCKFORD_READING: Final = str.maketrans({"o": "0", "i": "1", "l": "1"})
#: Longer input is no code (the core refuses more than 64 characters before a provider sees it).
_MAX_INPUT: Final = 64
#: A TOTP secret's random bytes: 160 bits, RFC 4226's recommendation; 32 base32 characters, no padding.
_SECRET_BYTES: Final = 20


def _compact(code: object) -> str | None:
    """*code* without any whitespace, or ``None`` when it cannot be a code at all."""
    if not isinstance(code, str) or len(code) > _MAX_INPUT:
        return None
    return "".join(code.split())


def normal_totp_code(code: object, digits: int) -> str | None:
    """*code* as *digits* ASCII digits, or ``None`` (other scripts' digits are not accepted)."""
    compact = _compact(code)
    if compact is None or len(compact) != digits or not all("0" <= c <= "9" for c in compact):
        return None
    return compact


def normal_recovery_code(code: object) -> str | None:
    """*code* as its 10 lower-case characters (no dash), or ``None``."""
    compact = _compact(code)
    if compact is None or not compact.isascii():
        return None
    normal = compact.replace("-", "").lower().translate(_CROCKFORD_READING)
    if len(normal) != RECOVERY_LENGTH or not all(c in RECOVERY_ALPHABET for c in normal):
        return None
    return normal


def new_recovery_code() -> str:
    """A fresh recovery code, ``xxxxx-xxxxx`` (50 random bits)."""
    chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return f"{chars[:5]}-{chars[5:]}"


def _new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


class LocalSecondFactor(SecondFactor):
    """authcore's :class:`~authcore.SecondFactor` for the ``local`` provider (see the module)."""

    name: str
    config: LocalConfig
    #: The current time (UTC); a test sets it to drive TOTP time steps without waiting.
    clock: Callable[[], datetime]
    #: ``row``: the user :meth:`~auth_local.provider.LocalProvider.authenticate` just accepted, per thread.
    _checked: threading.local

    if TYPE_CHECKING:  # provided by LocalProvider

        @property
        def store(self) -> FactorStore: ...

        def _identity(self, row: UserRow, *, admin: bool = False) -> Identity: ...

    @functools.cached_property
    def _secret_box(self) -> SecretBox:
        """How this provider stores TOTP secrets and recovery codes (under ``second_factor.secret_keys``)."""
        keys = [key.get_secret_value() for key in self.config.second_factor.secret_keys]
        return SecretBox(self.name, keys)

    # ------------------------------------------------------------ the login's second step

    def _required(self, groups: Sequence[str]) -> bool:
        return not set(self.config.second_factor.required_groups).isdisjoint(groups)

    def second_factor_methods(self, identity: Identity) -> tuple[str, ...]:
        """``("totp", "recovery")`` with a confirmed enrolment; ``("enrol",)`` for a user without
        one whose roles (or the identity's groups) include one of ``required_groups``; else ``()``."""
        # The manager asks right after authenticate() on the same thread: the row it read (with
        # its enrolment flag) saves two queries on every login; anyone else reads it afresh.
        row: UserRow | None = getattr(self._checked, "row", None)
        self._checked.row = None
        if row is None or row.login != identity.login:
            row = self.store.find(login_key(identity.login))
        if row is None:  # deleted since the password was checked
            raise InvalidCredentials()
        if row.second_factor:
            return ("totp", "recovery")
        if self._required([*identity.groups, *row.roles]):
            return ("enrol",)
        return ()

    def check_second_factor(self, login: str, method: str, code: str) -> Identity:
        """Accept a TOTP code (``totp``), spend a recovery code (``recovery``) or confirm the pending
        enrolment (``enrol``); the identity :meth:`authenticate` gives. :class:`InvalidCredentials` else."""
        row = None
        if isinstance(login, str) and 1 <= len(login) <= MAX_LOGIN_LENGTH and login.isprintable():
            row = self.store.find(login_key(login))
        if row is None or not row.enabled:
            raise InvalidCredentials()
        if method == "recovery":
            accepted = self._spend_recovery_code(row, code)
        elif method in ("totp", "enrol"):
            accepted = self._accept_totp(row, code, confirm=method == "enrol")
        else:
            accepted = False
        if not accepted:
            raise InvalidCredentials()
        return self._identity(row)

    def _accept_totp(self, row: UserRow, code: str, *, confirm: bool) -> bool:
        """Whether *code* is current for the user's enrolment (the pending one with *confirm*,
        else the confirmed one) at a time step not used yet; that step is then used (and the
        secret sealed anew if it was not sealed with the first of ``secret_keys``)."""
        enrolment = self.store.enrolment(row.id)
        if enrolment is None or enrolment.confirmed == confirm:
            return False
        box, stored = self._secret_box, enrolment.secret
        secret = box.open(stored, user_id=row.id)
        step = self._matching_step(enrolment, secret, code)
        if step is None:
            return False
        now = self.clock()
        reseal = None if box.fresh(stored) else box.seal(secret, user_id=row.id)
        if not self.store.use_step(row.id, secret=stored, step=step, confirm=confirm, now=now, reseal=reseal):
            return False  # the same code (or a later one) was accepted meanwhile
        if confirm:
            log.info("provider %r: user #%d confirmed a TOTP enrolment", self.name, row.id)
        return True

    def _matching_step(self, enrolment: EnrolmentRow, secret: str, code: str) -> int | None:
        """The time step within ``valid_window`` of now, later than the last used, whose code
        (of *secret*, the enrolment's, opened) is *code*."""
        normal = normal_totp_code(code, enrolment.digits)
        if normal is None:
            return None
        totp = pyotp.TOTP(secret, digits=enrolment.digits, interval=enrolment.period)
        current = int(self.clock().timestamp()) // enrolment.period
        window = self.config.second_factor.valid_window
        for step in range(max(current - window, enrolment.last_step + 1), current + window + 1):
            if hmac.compare_digest(normal, totp.generate_otp(step)):
                return step
        return None

    def _spend_recovery_code(self, row: UserRow, code: str) -> bool:
        normal = normal_recovery_code(code)
        digests = None if normal is None else self._secret_box.digests(row.id, normal)
        if digests is None or not self.store.spend_recovery_code(row.id, digests, self.clock()):
            return False
        log.info("provider %r: user #%d used a recovery code", self.name, row.id)
        return True

    # ------------------------------------------------------------ a user's own factor

    def second_factor_status(self, login: str) -> SecondFactorStatus:
        """Enrolled (confirmed), required by ``required_groups``, and the recovery codes left."""
        row = self.store.get(lookup_key(login))
        enrolment = self.store.enrolment(row.id)
        return SecondFactorStatus(
            enrolled=enrolment is not None and enrolment.confirmed,
            required=self._required(row.roles),
            recovery_codes_left=self.store.recovery_codes_left(row.id),
        )

    def begin_enrolment(self, login: str) -> TotpEnrolment:
        """A new secret and ``recovery_codes`` codes, pending until confirmed, in place of a pending one.

        :class:`~authcore.UserChangeRefused` when a confirmed enrolment exists;
        :class:`~authcore.UserNotFound` for an unknown login.
        """
        row = self.store.get(lookup_key(login))
        settings = self.config.second_factor
        secret = _new_secret()
        codes: dict[str, None] = {}  # distinct, in order
        while len(codes) < settings.recovery_codes:
            codes[new_recovery_code()] = None
        hashes = [self._secret_box.digest(row.id, code.replace("-", "")) for code in codes]
        stored = self._secret_box.seal(secret, user_id=row.id)
        if not self.store.begin_enrolment(
            row.id, secret=stored, digits=settings.digits, period=settings.period, code_hashes=hashes, now=self.clock()
        ):
            raise UserChangeRefused("the user has a second factor already: remove it first")
        totp = pyotp.TOTP(secret, digits=settings.digits, interval=settings.period)
        uri = totp.provisioning_uri(name=row.login, issuer_name=settings.issuer)
        return TotpEnrolment(secret=secret, uri=uri, recovery_codes=tuple(codes))

    def confirm_enrolment(self, login: str, code: str) -> None:
        """Confirm the pending enrolment with a current code from the app (its step counts as used).

        :class:`~authcore.InvalidCredentials` for a wrong code or no pending enrolment;
        :class:`~authcore.UserNotFound` for an unknown login.
        """
        row = self.store.get(lookup_key(login))
        if not self._accept_totp(row, code, confirm=True):
            raise InvalidCredentials()

    def remove_second_factor(self, login: str) -> None:
        """Drop the enrolment (confirmed or pending) and the recovery codes; nothing to drop is no error."""
        row = self.store.get(lookup_key(login))
        if self.store.remove_second_factor(row.id):
            log.info("provider %r: user #%d's second factor was removed", self.name, row.id)
