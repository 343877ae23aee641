"""The password policy: length, not containing the login, not one of the most common passwords.

The common passwords are the 10,000 most common of the list Django ships (see
``common-passwords.NOTICE.txt`` beside this module), lower-cased: a password is refused
when its lower-cased form is on the list, as Django's ``CommonPasswordValidator`` does.
"""

from __future__ import annotations

import functools
from importlib import resources

from authcore import BadRequest
from authcore.providers import MAX_PASSWORD_LENGTH

__all__ = ["PasswordPolicy", "PasswordRefused", "common_passwords"]


class PasswordRefused(BadRequest):
    """A new password the policy refuses (422). The message says why, never what the password was."""

    code = "password_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"password refused: {reason}", status_code=422)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased (read once)."""
    text = resources.files(__package__).joinpath("common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


class PasswordPolicy:
    """Checks a new password before it is hashed: :meth:`check` raises :class:`PasswordRefused`."""

    def __init__(self, *, min_length: int = 12, refuse_common: bool = True) -> None:
        self.min_length = min_length
        self.refuse_common = refuse_common

    def __repr__(self) -> str:
        return f"PasswordPolicy(min_length={self.min_length}, refuse_common={self.refuse_common})"

    def check(self, password: str, login: str) -> None:
        """Refuse *password* for the user *login* if it breaks a rule."""
        if not isinstance(password, str) or "\x00" in password:
            raise PasswordRefused("it must be text without NUL characters")
        if len(password) < self.min_length:
            raise PasswordRefused(f"it must be at least {self.min_length} characters long")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise PasswordRefused(f"it must be at most {MAX_PASSWORD_LENGTH} characters long")
        folded = password.casefold()
        name = login.casefold()
        # "Contains" only for logins of 4 characters or more: a one-letter login would refuse half the alphabet.
        if name and (folded == name or (len(name) >= 4 and name in folded)):
            raise PasswordRefused("it must not contain the login")
        if self.refuse_common and password.strip().lower() in common_passwords():
            raise PasswordRefused("it is one of the most common passwords")
