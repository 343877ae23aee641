"""The standalone service's login page, framework-neutral: rendering and its two form handlers.

``GET /`` shows the sign-in form (provider choice, login and password, an SSO button per
provider with the single sign-on capability) or who is signed in, with a sign-out button.
``POST /login`` and ``POST /logout`` are plain form posts (CSRF double submit before sign-in,
the session-bound token after), so the page works without JavaScript. A failed login says
"invalid login or password", whatever the reason. The session is the core's cookie session.
A login that takes a second factor shows a code form posting to ``POST /login/second-factor``
(with the new key and recovery codes first when the user must enrol).
"""

from __future__ import annotations

import contextlib
import html
from importlib import resources
from string import Template
from urllib.parse import parse_qs, urlsplit

from ..capabilities import SecondFactorRequired
from ..errors import AuthError, BadRequest, InvalidCredentials
from ..models import VerifiedToken
from .common import CSRF_FIELD, LoginBody, csrf_matches, error_response, new_csrf_token, safe_next
from .core import WebCore
from .http import SetCookie, WebRequest, WebResponse

__all__ = ["LoginPage", "DEVELOPMENT_BANNER", "STATIC_PATH", "content_security_policy", "template"]

#: Where the page's stylesheet is served.
STATIC_PATH = "/_authcore/static"
#: Printed on stderr (and shown on the page) when the development default runs.
DEVELOPMENT_BANNER = (
    "DEVELOPMENT MODE: no --config given, so the dummy provider is enabled: any login is accepted and "
    "the password names the permissions (e.g. 'read,write'). Listening on loopback only. Never expose this."
)
_FORM_EXPIRED = "The form expired; please try again."


def template(name: str) -> str:
    """A file shipped beside this module (``templates/login.html``, ``static/login.css``)."""
    return resources.files("authcore.web").joinpath(name).read_text(encoding="utf-8")


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' CSP: nothing but our stylesheet and images; forms post (and redirect) to us only.

    *form_targets*: further origins a form may be redirected to (the identity provider's
    end-session endpoint after the sign-out form).
    """
    form_action = " ".join(("'self'", *form_targets))
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


class LoginPage:
    """The login page of one :class:`WebCore`: rendering and its form handlers (synchronous)."""

    def __init__(self, core: WebCore, *, title: str, development: bool) -> None:
        self.core = core
        self.title = title
        self.development = development
        self.layout = Template(template("templates/login.html"))

    def render(self, *, csrf: str, user: VerifiedToken | None, error: str = "", status: str = "", **form: str) -> str:
        """The page's HTML: the sign-in forms, or who is signed in and a sign-out button."""
        esc = html.escape
        banner = f'<p class="banner">{esc(DEVELOPMENT_BANNER)}</p>' if self.development else ""
        if user is not None:
            permissions = ", ".join(sorted(user.permissions)) or "(none)"
            body = (
                '<p>You are signed in.</p><dl id="identity">'
                f'<dt>Login</dt><dd id="login-name">{esc(user.login)}</dd>'
                f"<dt>Provider</dt><dd>{esc(user.provider)}</dd>"
                f'<dt>Permissions</dt><dd id="permissions">{esc(permissions)}</dd></dl>'
                '<form method="post" action="/logout">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(csrf)}">'
                '<button type="submit" class="secondary">Sign out</button></form>'
            )
        elif form.get("challenge"):
            body = self._second_step_form(csrf, form)
        else:
            body = self._login_form(csrf, form.get("login", ""), form.get("provider", ""))
        return self.layout.substitute(
            title=esc(self.title), static=STATIC_PATH, banner=banner, status=esc(status), error=esc(error), body=body
        )

    def _login_form(self, csrf: str, login: str, chosen: str) -> str:
        esc = html.escape
        config = self.core.manager.public_config()
        password_providers = [p["name"] for p in config["providers"] if "password" in p.get("credentials", ())]
        parts = []
        if password_providers:
            options = "".join(
                f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>{esc(n)}</option>'
                for n in password_providers
            )
            parts.append(
                '<form method="post" action="/login" id="login-form">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(csrf)}">'
                f'<label for="provider">Sign in with</label><select id="provider" name="provider">{options}</select>'
                '<label for="login">Login</label>'
                f'<input id="login" name="login" autocomplete="username" required value="{esc(login)}">'
                '<label for="password">Password</label>'
                '<input id="password" name="password" type="password" autocomplete="current-password" required>'
                '<button type="submit">Sign in</button></form>'
            )
        links = "".join(
            f'<a class="button" href="{esc(self.core.path("sso_login", provider=n))}?next=/">'
            f"Sign in with {esc(n)} (single sign-on)</a> "
            for n in self.core.sso.providers()
        )
        if links:
            parts.append(f'<div class="sso">{links}</div>')
        return "".join(parts) or "<p>No provider accepts a sign-in from this page.</p>"

    @staticmethod
    def _second_step_form(csrf: str, form: dict[str, str]) -> str:
        """The code form of a login that takes a second factor; with the new secret when it must enrol."""
        esc = html.escape
        methods = form.get("methods", "").split()
        enrolling = methods == ["enrol"]
        parts = [
            '<form method="post" action="/login/second-factor" id="second-factor-form">',
            f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(csrf)}">',
            f'<input type="hidden" name="challenge" value="{esc(form["challenge"])}">',
            f'<input type="hidden" name="methods" value="{esc(" ".join(methods))}">',
        ]
        if enrolling and form.get("secret"):
            codes = "".join(f"<li>{esc(c)}</li>" for c in form.get("recovery_codes", "").split())
            parts.append(
                "<p>Your account needs a second factor. Add this key to an authenticator app, "
                "keep the recovery codes somewhere safe, then enter the app's code.</p>"
                f'<p><code id="totp-secret">{esc(form["secret"])}</code></p>'
                f'<p><a id="totp-uri" href="{esc(form.get("uri", ""))}">Open in an authenticator app</a></p>'
                f'<ol id="recovery-codes">{codes}</ol>'
            )
        if enrolling:
            parts.append('<input type="hidden" name="method" value="enrol">')
        else:
            parts.append(
                '<label for="method">Code from</label><select id="method" name="method">'
                '<option value="totp">your authenticator app</option>'
                '<option value="recovery">a recovery code</option></select>'
            )
        parts.append(
            '<label for="code">Code</label>'
            '<input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required>'
            '<button type="submit">Verify</button></form>'
        )
        return "".join(parts)

    def _second_step(self, request: WebRequest, required: SecondFactorRequired, error: str = "") -> WebResponse:
        """The page asking for the second factor of the login *required* stands for."""
        form = {"challenge": required.challenge, "methods": " ".join(required.methods)}
        if required.methods == ("enrol",):
            enrolment = self.core.manager.begin_login_enrolment(required.challenge)
            form.update(secret=enrolment.secret, uri=enrolment.uri, recovery_codes=" ".join(enrolment.recovery_codes))
        status = "Enter the code of your second factor."
        return self._page(request, 401, user=None, status=status, error=error, **form)

    def second_step(self, request: WebRequest) -> WebResponse:
        """``POST /login/second-factor``: the code form (CSRF double submit, like the sign-in form)."""
        form = self._posted_form(request)
        if isinstance(form, WebResponse):
            return form
        challenge, methods = form.get("challenge", ""), tuple(form.get("methods", "").split())
        try:
            result = self.core.manager.complete_login(challenge, form.get("code", ""), method=form.get("method"))
        except InvalidCredentials:
            # A wrong code: the same challenge, asked again (the enrolment's secret is not shown twice).
            again = {"challenge": challenge, "methods": " ".join(methods)}
            return self._page(request, 401, user=None, error="Invalid code.", **again)
        except AuthError as exc:
            message = "Please sign in again." if exc.status_code == 401 else str(error_response(exc)[1]["detail"])
            return self._page(request, exc.status_code, user=None, error=message)
        response = WebResponse.redirect("/", 303)
        self.core.sessions.start(request, response, result)
        return response

    def _page(self, request: WebRequest, code: int = 200, *, csrf: str | None = None, **kwargs: object) -> WebResponse:
        """A page; without *csrf* (before sign-in) the forms carry the double-submit cookie's value."""
        response = WebResponse(status=code, headers={"Cache-Control": "no-store"})
        if csrf is None:
            # Before sign-in there is no session to bind to: the plain double-submit cookie.
            names = self.core.settings.cookies
            csrf = request.cookies.get(names.csrf) or ""
            if not csrf or len(csrf) > 128 or not csrf.isascii():
                csrf = new_csrf_token()
                secure = self.core.settings.cookie_secure(request.hostname)
                response.cookies.append(
                    SetCookie(names.csrf, csrf, None, False, secure, names.samesite, names.path, names.domain)
                )
        response.html = self.render(csrf=csrf, **kwargs)  # type: ignore[arg-type]
        return response

    @staticmethod
    def _signed_out_url(request: WebRequest) -> str:
        return f"{request.base_url}/?signed_out=1"

    def _sign_out_targets(self, request: WebRequest, user: VerifiedToken | None) -> tuple[str, ...]:
        """Origins the sign-out form may be redirected to: the identity provider of an SSO user."""
        if user is None:
            return ()
        try:
            url = self.core.sso.logout_url(user, self._signed_out_url(request))
        except AuthError:
            return ()
        parts = urlsplit(url or "")
        return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme in ("http", "https") and parts.netloc else ()

    def show(self, request: WebRequest) -> WebResponse:
        """``GET /``: who is signed in (an expired access cookie is refreshed), else the sign-in form."""
        refreshed = WebResponse()
        user, csrf = self.core.sessions.resume_quietly(request, refreshed)
        status = "You have signed out." if request.query.get("signed_out") and user is None else ""
        response = self._page(request, user=user, status=status, csrf=csrf if user is not None else None)
        response.cookies.extend(refreshed.cookies)
        targets = self._sign_out_targets(request, user)
        if targets:
            response.headers["Content-Security-Policy"] = content_security_policy(targets)
        return response

    @staticmethod
    def _form(request: WebRequest) -> dict[str, str]:
        try:
            parsed = parse_qs(request.read_body().decode("utf-8"), keep_blank_values=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("malformed form") from None
        return {key: values[0] for key, values in parsed.items() if values}

    def _cross_site(self, request: WebRequest) -> bool:
        """Whether the browser says the form was posted from another site.

        Before sign-in the form's CSRF token is a plain double-submit cookie, which a sibling
        subdomain can plant (cookie tossing) to sign the victim into the attacker's account:
        the browser's own ``Sec-Fetch-Site`` and ``Origin`` headers refuse that.
        """
        if request.header("sec-fetch-site") in ("cross-site", "same-site"):
            return True
        origin = request.header("origin")
        return origin is not None and origin != "null" and not self.core.same_origin(origin, request.host)

    def _posted_form(self, request: WebRequest, *keep: str) -> dict[str, str] | WebResponse:
        """The form posted before sign-in, or the page refusing it: posted cross-site, unreadable,
        or without the CSRF double submit. *keep*: fields the refusal shows again."""
        if self._cross_site(request):
            return self._page(request, 403, user=None, error=_FORM_EXPIRED)
        try:
            form = self._form(request)
        except AuthError as exc:
            return self._page(request, exc.status_code, user=None, error="The form could not be read.")
        if not csrf_matches(request.cookies.get(self.core.settings.cookies.csrf), form.get(CSRF_FIELD)):
            return self._page(request, 403, user=None, error=_FORM_EXPIRED, **{k: form.get(k, "") for k in keep})
        return form

    def login(self, request: WebRequest) -> WebResponse:
        """``POST /login``: the sign-in form (CSRF double submit), throttled like the JSON login."""
        form = self._posted_form(request, "login", "provider")
        if isinstance(form, WebResponse):
            return form
        login, provider = form.get("login", ""), form.get("provider", "")
        try:
            body = LoginBody(plugin=provider or "-", login=login or None, password=form.get("password") or None)
            result = self.core.login(body, request.client)
        except SecondFactorRequired as required:
            return self._second_step(request, required)
        except AuthError as exc:
            status, payload, _headers = error_response(exc)
            if isinstance(exc, InvalidCredentials) or status == 400:
                message = "Invalid login or password."
            else:
                message = str(payload["detail"]).capitalize() + "."
            return self._page(request, status, user=None, error=message, login=login, provider=provider)
        except ValueError:  # the LoginBody shape (over-long fields): same answer as a wrong password
            return self._page(request, 401, user=None, error="Invalid login or password.", provider=provider)
        response = WebResponse.redirect(safe_next(form.get("next")), 303)
        self.core.sessions.start(request, response, result)
        return response

    def logout(self, request: WebRequest) -> WebResponse:
        """``POST /logout``: end the session (also through the refresh cookie), then single sign-out."""
        if self._cross_site(request):
            return self._page(request, 403, user=None, error=_FORM_EXPIRED)
        try:
            form = self._form(request)
        except AuthError:
            form = {}
        state = self.core.sessions.storage.load(request)
        # Bound to the session; without one (already ended), the plain double submit.
        expected = state.csrf if state is not None else request.cookies.get(self.core.settings.cookies.csrf)
        if not csrf_matches(expected, form.get(CSRF_FIELD)):
            return self._page(request, 403, user=None, error=_FORM_EXPIRED)
        target = "/?signed_out=1"
        user = self.core.sessions.end(state) if state is not None else None
        if user is not None:
            with contextlib.suppress(AuthError):  # no single sign-out: clear the cookies all the same
                target = self.core.sso.logout_url(user, self._signed_out_url(request)) or target
        response = WebResponse.redirect(target, 303)
        self.core.sessions.storage.clear(request, response)
        return response
