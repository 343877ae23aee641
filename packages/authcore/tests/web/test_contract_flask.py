"""The HTTP contract (authcore.testing.web_contract) against the Flask adapter, over werkzeug."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import authcore_webtest_support as support
from flask import Flask

from authcore import AuthManager
from authcore.testing.web_contract import WebAdapterContract
from authcore.web.flask import FlaskAuth
from authcore.web.settings import WebSettings


class TestFlaskContract(WebAdapterContract):
    @contextlib.contextmanager
    def serve(self, manager: AuthManager, settings: WebSettings) -> Iterator[str]:
        app = Flask("contract")
        app.secret_key = "contract-" + "k" * 40
        auth = FlaskAuth(manager, app, settings)

        @app.get(f"{settings.prefix}/protected")
        @auth.login_required(["read"])
        def protected() -> dict[str, str]:
            return {"login": auth.current_user.login}

        with support.run_werkzeug(app) as url:
            yield url
