"""Password self-service over HTTP: change, forgotten password, reset, e-mail verification.

The rows of :data:`~authcore.web.routes.ROUTES` kept here (under the prefix), bound by
:class:`~authcore.web.core.WebCore` through :data:`OPERATIONS`; the provider's side is the
:class:`~authcore.capabilities.PasswordSelfService` capability:

======  ==========================  ==========================  ======  ======
method  path                        operation                   status  guard
======  ==========================  ==========================  ======  ======
POST    /auth/password/change       password_change             204     user
POST    /auth/password/forgot       password_forgot             202     public
POST    /auth/password/reset        password_reset              204     public
POST    /auth/email/verification    email_verification_request  202     user
POST    /auth/email/verify          email_verify                204     public
======  ==========================  ==========================  ======  ======

* ``change`` ``{current_password, new_password}``: the caller's own, on the caller's provider
  instance. A wrong current password is the 401 of a failed login (byte for byte), counted by
  the throttle as one. Then every *other* session of the caller ends, personal access tokens
  included: whoever held one with the old password loses it; the device the user is on keeps
  going. A personal access token cannot change the password (403): a leaked one must not
  take the account over.
* ``forgot`` ``{plugin?, login}`` (a login or an e-mail address): always the same 202 and the
  same body, whether or not an account matches; a delivery that fails is logged, not answered
  (a 503 would tell that the account exists).
* ``reset`` ``{plugin?, token, new_password}``: the token from the message; then *every*
  session of that user ends, and their failed logins no longer lock them out.
* ``email/verification`` (no body): sends the caller a message proving their address.
* ``email/verify`` ``{plugin?, token}``: the token from that message.

``plugin`` names the provider instance as a login body's does; without it, the only enabled
instance with the capability (else the only instance). An unusable one is the login's 400
``unknown_provider``; an instance without the capability answers 501. A token that is unknown,
used or expired is a 401 ``invalid_token`` with one message, and no token or password is ever
echoed (the bodies' models hide their input from validation errors).

Requests that send mail (``forgot``, ``email/verification``) go through the web throttle
(``WebSettings.throttle``), every request counting, in a namespace of their own: they cannot
flood a mailbox, and neither locks out the other's logins (asking for a reset after too many
wrong passwords must work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..capabilities import PasswordSelfService
from ..errors import (
    Forbidden,
    InvalidCredentials,
    NotSupported,
    ProviderUnavailable,
    UnknownPlugin,
)
from ..providers import Password, Provider
from .common import json_body
from .http import WebResponse

if TYPE_CHECKING:
    from ..models import VerifiedToken
    from .core import WebCore
    from .http import WebRequest
    from .throttle import Throttle

__all__ = [
    "BODIES",
    "OPERATIONS",
    "PasswordChange",
    "PasswordForgot",
    "PasswordReset",
    "EmailVerify",
    "FORGOT_ANSWER",
    "MAIL_THROTTLE",
]

log = logging.getLogger("authcore")

#: What ``forgot`` answers, in every case.
FORGOT_ANSWER = {"detail": "if an account matches, a message is on its way to its address"}
#: Prefixed to the throttle keys of requests that send mail (their own counters).
MAIL_THROTTLE = "mail:"
#: Longest token accepted (auth-local's are 43 characters; a site's own provider may use longer ones).
MAX_ACCOUNT_TOKEN_LENGTH = 512


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("no control characters")
    return value


def _token(value: str) -> str:
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("a token is printable ASCII without spaces")
    return value


#: A login or an e-mail address (RFC 5321 allows 320 characters for the latter).
LoginOrEmail = Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_printable)]
#: A reset or verification token as a message carried it.
AccountToken = Annotated[str, Field(min_length=1, max_length=MAX_ACCOUNT_TOKEN_LENGTH), AfterValidator(_token)]
#: ``plugin``: the provider instance (validated against the enabled ones afterwards).
PluginName = Annotated[str | None, Field(default=None, min_length=1, max_length=64)]


class _Body(BaseModel):
    # Unknown keys refused (a typo must not pass silently); input never in validation errors.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class PasswordChange(_Body):
    """``POST /auth/password/change``."""

    current_password: Password
    new_password: Password


class PasswordForgot(_Body):
    """``POST /auth/password/forgot``: a login or an e-mail address."""

    plugin: PluginName = None
    login: LoginOrEmail


class PasswordReset(_Body):
    """``POST /auth/password/reset``: the token from the reset message and the new password."""

    plugin: PluginName = None
    token: AccountToken = Field(repr=False)
    new_password: Password


class EmailVerify(_Body):
    """``POST /auth/email/verify``: the token from the verification message."""

    plugin: PluginName = None
    token: AccountToken = Field(repr=False)


class _NoBody(_Body):
    """``POST /auth/email/verification`` takes nothing (``{}`` or no body at all)."""


# --------------------------------------------------------------------------- helpers


def _capable(instance: Provider, name: str, operation: str) -> PasswordSelfService:
    if not isinstance(instance, PasswordSelfService):
        raise NotSupported(name, operation)
    return instance


def _named(core: WebCore, plugin: str | None, operation: str) -> tuple[str, PasswordSelfService]:
    """The instance a public body names (see the module docstring), with its capability."""
    providers = core.manager.providers
    if plugin is None:
        capable = sorted(n for n, p in providers.items() if isinstance(p, PasswordSelfService))
        candidates = capable or sorted(providers)
        if len(candidates) != 1:
            raise UnknownPlugin(candidates)
        plugin = candidates[0]
    if plugin not in providers:
        raise UnknownPlugin(providers)
    return plugin, _capable(providers[plugin], plugin, operation)


def _own(core: WebCore, caller: VerifiedToken, operation: str) -> PasswordSelfService:
    """The caller's provider instance, with its capability."""
    return _capable(core.manager.provider(caller.provider), caller.provider, operation)


def _mail_keys(login: str, address: str | None) -> tuple[str, str | None]:
    return MAIL_THROTTLE + login, MAIL_THROTTLE + address if address else None


def _count_mail(throttle: Throttle | None, login: str, address: str | None) -> None:
    """Count a request that may send mail; 429 past the limits. Never given back: every one may."""
    if throttle is not None:
        throttle.reserve(*_mail_keys(login, address))


@contextmanager
def _password_guess(throttle: Throttle | None, login: str, address: str | None) -> Iterator[None]:
    """A check of the current password, throttled like a login: a wrong one counts as a failure.

    Counted up front (:meth:`Throttle.reserve`, atomic), given back unless it was a wrong password.
    """
    if throttle is None:
        yield
        return
    throttle.reserve(login, address)
    try:
        yield
    except InvalidCredentials:
        raise
    except BaseException:
        throttle.release(login, address)
        raise
    throttle.release(login, address)


def _end_sessions(core: WebCore, login: str, provider: str, keep: str | None) -> int:
    """End every live session of *login* on *provider* but *keep*; how many ended."""
    ended = 0
    for record in core.manager.sessions_of(login, provider=provider):
        if record.session_id != keep:
            ended += core.manager.end_session(record.session_id)
    return ended


# --------------------------------------------------------------------------- the operations


def password_change(core: WebCore, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    """The caller changes their password; their other sessions end (see the module docstring)."""
    assert caller is not None
    if caller.claims.get("token_type") == "personal":
        raise Forbidden("a personal access token cannot change the password: sign in")
    body = json_body(request, PasswordChange)
    service = _own(core, caller, "change_password")
    current, new = body.current_password.get_secret_value(), body.new_password.get_secret_value()
    with _password_guess(core.settings.throttle, caller.login, request.client):
        service.change_password(caller.login, current, new)
    _end_sessions(core, caller.login, caller.provider, keep=caller.session_id)
    return WebResponse(status=204)


def password_forgot(core: WebCore, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
    """Ask for a reset message; the same 202 whether or not an account matches."""
    body = json_body(request, PasswordForgot)
    name, service = _named(core, body.plugin, "request_password_reset")
    _count_mail(core.settings.throttle, body.login, request.client)
    try:
        service.request_password_reset(body.login)
    except ProviderUnavailable:
        # Only an existing account's delivery fails: answering 503 would tell who has one.
        log.warning("provider %r: a password reset message could not be sent", name)
    return WebResponse(status=202, json=dict(FORGOT_ANSWER))


def password_reset(core: WebCore, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
    """Set a new password with a reset token; every session of that user ends."""
    body = json_body(request, PasswordReset)
    name, service = _named(core, body.plugin, "reset_password")
    login = service.reset_password(body.token, body.new_password.get_secret_value())
    core.manager.end_sessions_of(login, provider=name)
    throttle = core.settings.throttle
    if throttle is not None:
        # The mailbox is proven and the password new: earlier failed logins no longer hold them out.
        throttle.success(login)
    return WebResponse(status=204)


def email_verification_request(core: WebCore, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    """Send the caller a message proving their address."""
    assert caller is not None
    json_body(request, _NoBody, optional=True)
    service = _own(core, caller, "request_email_verification")
    _count_mail(core.settings.throttle, caller.login, request.client)
    service.request_email_verification(caller.login)
    return WebResponse(status=202, json={"detail": "a message is on its way to your address"})


def email_verify(core: WebCore, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
    """Mark an address verified with the token its message carried."""
    body = json_body(request, EmailVerify)
    _name, service = _named(core, body.plugin, "verify_email")
    service.verify_email(body.token)
    return WebResponse(status=204)


#: The JSON body each operation takes (shown in FastAPI's OpenAPI schema).
BODIES: dict[str, type[BaseModel]] = {
    "password_change": PasswordChange,
    "password_forgot": PasswordForgot,
    "password_reset": PasswordReset,
    "email_verify": EmailVerify,
}

#: The operations of this module's rows of :data:`~authcore.web.routes.ROUTES`, by name.
OPERATIONS: dict[str, Callable[[WebCore, WebRequest, VerifiedToken | None], WebResponse]] = {
    "password_change": password_change,
    "password_forgot": password_forgot,
    "password_reset": password_reset,
    "email_verification_request": email_verification_request,
    "email_verify": email_verify,
}
