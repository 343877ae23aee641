"""Web adapters for authcore.

Only the log filter is imported here (standard library only): ``import authcore.web`` pulls
in no web framework. Import the adapter you use:

* :mod:`authcore.web.fastapi` (``pip install 'authcore[fastapi]>=0.2'``): router, ``current_user``,
  ``websocket_auth``, ``update_user``;
* :mod:`authcore.web.flask` (``pip install 'authcore[flask]>=0.2'``): extension, ``login_required``,
  blueprint, cookie sessions with sliding expiry;
* :mod:`authcore.web.django` (``pip install 'authcore[django]>=0.2'``): URL patterns,
  ``login_required``, a ``django.contrib.auth`` backend;
* :mod:`authcore.web.service` (``pip install 'authcore[server]>=0.2'``): the standalone service
  behind ``authcore serve``, with its login page.

The adapters only translate: the routes are one table (:mod:`authcore.web.routes`) run by
:class:`authcore.web.core.WebCore` over :mod:`authcore.web.http`'s request and response, with
the cookie session (:mod:`authcore.web.session`), single sign-on (:mod:`authcore.web.sso`),
settings (:mod:`authcore.web.settings`, from the ``web:`` section), parsing and CSRF
(:mod:`authcore.web.common`) and the user-management operations (:mod:`authcore.web.users`);
:mod:`authcore.web.logfilter` :class:`RedactTokens`, the filter that keeps query tokens out of a
host server's logs (``install_log_redaction()`` adds it to uvicorn's, gunicorn's and werkzeug's).
"""

from .logfilter import RedactTokens, install_log_redaction, redact_query_tokens

__all__ = ["RedactTokens", "install_log_redaction", "redact_query_tokens"]
