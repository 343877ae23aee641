"""Web adapters for authcore.

Nothing is imported here on purpose: ``import authcore.web`` costs nothing and pulls in
no web framework. Import the adapter you use:

* :mod:`authcore.web.fastapi` (``pip install 'authcore[fastapi]'``): router, ``current_user``,
  ``websocket_auth``, ``update_user``;
* :mod:`authcore.web.flask` (``pip install 'authcore[flask]'``): extension, ``login_required``,
  blueprint, cookie sessions with sliding expiry;
* :mod:`authcore.web.service` (``pip install 'authcore[server]'``): the standalone service
  behind ``authcore serve``, with its login page.

:mod:`authcore.web.common` holds what does not depend on a framework (bearer parsing, error
bodies, CSRF, cookies, throttling); :mod:`authcore.web.users` the user-management operations.
"""
