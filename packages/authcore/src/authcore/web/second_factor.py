"""The second step of a login, and a signed-in user's TOTP enrolment, over HTTP.

A login whose provider wants a second factor answers 401 ``second_factor_required`` with a
``challenge``, the ``methods`` it takes and ``expires_in``; the client then posts a code here.
The work is :mod:`authcore.second_factor`'s; these are its rows of
:data:`~authcore.web.routes.ROUTES`:

======  =====================================  ==============================  ======  ======
method  path (after the prefix)                operation                       status  guard
======  =====================================  ==============================  ======  ======
POST    /auth/login/second-factor              second_factor_login             200     public
POST    /auth/login/second-factor/enrolment    second_factor_login_enrolment   200     public
GET     /auth/me/second-factor                 second_factor_status            200     user
POST    /auth/me/second-factor                 second_factor_enrol             200     user
POST    /auth/me/second-factor/confirm         second_factor_confirm           204     user
DELETE  /auth/me/second-factor                 second_factor_remove            204     user
======  =====================================  ==============================  ======  ======

``second_factor_login`` takes ``{challenge, code, method?}`` and answers like ``POST
/auth/login`` (a cookie session too, when the site uses them). ``..._enrolment`` takes
``{challenge}`` of a login that must ``enrol`` and answers the new secret (``secret``, ``uri``,
``recovery_codes``), which ``second_factor_login`` with ``method: "enrol"`` confirms. A signed-in
user enrols the same way (``second_factor_enrol``, then ``..._confirm`` with ``{code}``) and
removes their factor with a current or recovery code (``{code}``). A personal access token cannot
change a second factor: that takes a signed-in person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..capabilities import TotpEnrolment
from ..errors import Forbidden
from .common import json_body, login_payload
from .http import WebRequest, WebResponse

if TYPE_CHECKING:
    from ..models import VerifiedToken
    from .core import WebCore

__all__ = ["BODIES", "OPERATIONS", "ChallengeBody", "CodeBody", "SecondStepBody", "enrolment_payload"]

_Challenge = Field(min_length=1, max_length=128)
#: Longer than any code; what is longer is refused here, what is malformed by the core.
_Code = Field(min_length=1, max_length=64)


class SecondStepBody(BaseModel):
    """``POST /auth/login/second-factor``: the challenge of the login, a code, and how it was made."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    challenge: str = _Challenge
    code: str = _Code
    method: str | None = Field(default=None, max_length=16)


class ChallengeBody(BaseModel):
    """``POST /auth/login/second-factor/enrolment``: the challenge of a login that must enrol."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    challenge: str = _Challenge


class CodeBody(BaseModel):
    """A code from the authenticator app (or a recovery code, to remove the factor)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    code: str = _Code


def enrolment_payload(enrolment: TotpEnrolment) -> dict[str, Any]:
    """What the user copies into an authenticator app, and the recovery codes to keep."""
    return {"secret": enrolment.secret, "uri": enrolment.uri, "recovery_codes": list(enrolment.recovery_codes)}


def _person(caller: VerifiedToken | None) -> VerifiedToken:
    assert caller is not None  # the "user" guard ran
    if caller.claims.get("token_type") == "personal":
        raise Forbidden("a personal access token cannot change a second factor: sign in")
    return caller


def _login(core: WebCore, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
    body = json_body(request, SecondStepBody)
    result = core.manager.complete_login(body.challenge, body.code, method=body.method)
    response = WebResponse(json=login_payload(result))
    if core.settings.cookie_auth:
        response.json["csrf_token"] = core.sessions.start(request, response, result)
    return response


def _login_enrolment(core: WebCore, request: WebRequest, _caller: VerifiedToken | None) -> WebResponse:
    body = json_body(request, ChallengeBody)
    return WebResponse(json=enrolment_payload(core.manager.begin_login_enrolment(body.challenge)))


def _status(core: WebCore, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    user = _person(caller)
    status = core.manager.second_factor_status(user.provider, user.login)
    return WebResponse(
        json={
            "enrolled": status.enrolled,
            "required": status.required,
            "recovery_codes_left": status.recovery_codes_left,
        }
    )


def _enrol(core: WebCore, _request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    user = _person(caller)
    return WebResponse(json=enrolment_payload(core.manager.begin_enrolment(user.provider, user.login)))


def _confirm(core: WebCore, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    user = _person(caller)
    body = json_body(request, CodeBody)
    core.manager.confirm_enrolment(user.provider, user.login, body.code)
    return WebResponse(status=204)


def _remove(core: WebCore, request: WebRequest, caller: VerifiedToken | None) -> WebResponse:
    user = _person(caller)
    body = json_body(request, CodeBody)
    core.manager.remove_second_factor(user.provider, user.login, body.code)
    return WebResponse(status=204)


#: The JSON body each operation takes (shown in FastAPI's OpenAPI schema).
BODIES: dict[str, type[BaseModel]] = {
    "second_factor_login": SecondStepBody,
    "second_factor_login_enrolment": ChallengeBody,
    "second_factor_confirm": CodeBody,
    "second_factor_remove": CodeBody,
}

#: The operations of this module's rows of :data:`~authcore.web.routes.ROUTES`, by name.
OPERATIONS: dict[str, Callable[[WebCore, WebRequest, VerifiedToken | None], WebResponse]] = {
    "second_factor_login": _login,
    "second_factor_login_enrolment": _login_enrolment,
    "second_factor_status": _status,
    "second_factor_enrol": _enrol,
    "second_factor_confirm": _confirm,
    "second_factor_remove": _remove,
}
