"""Web adapters for authcore.

Only the log filter is imported here (standard library only): ``import authcore.web`` pulls
in no web framework. Import the adapter you use:

* :mod:`authcore.web.fastapi` (``pip install 'authcore[fastapi]>=0.2'``): router, ``current_user``,
  ``websocket_auth``, ``update_user``;
* :mod:`authcore.web.flask` (``pip install 'authcore[flask]>=0.2'``): extension, ``login_required``,
  blueprint, cookie sessions with sliding expiry;
* :mod:`authcore.web.service` (``pip install 'authcore[server]>=0.2'``): the standalone service
  behind ``authcore serve``, with its login page.

:mod:`authcore.web.common` holds what does not depend on a framework (bearer parsing, error
bodies, CSRF, cookies, throttling); :mod:`authcore.web.users` the user-management operations;
:mod:`authcore.web.logfilter` :class:`RedactTokens`, the filter that keeps query tokens out of a
host server's logs (``install_log_redaction()`` adds it to uvicorn's, gunicorn's and werkzeug's).
"""

from .logfilter import RedactTokens, install_log_redaction, redact_query_tokens

__all__ = ["RedactTokens", "install_log_redaction", "redact_query_tokens"]
