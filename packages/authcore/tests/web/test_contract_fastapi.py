"""The HTTP contract (authcore.testing.web_contract) against the FastAPI adapter, over uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import authcore_webtest_support as support
from fastapi import Depends, FastAPI

from authcore import AuthManager, VerifiedToken
from authcore.testing.web_contract import WebAdapterContract
from authcore.web.fastapi import FastAPIAuth
from authcore.web.settings import WebSettings


class TestFastAPIContract(WebAdapterContract):
    @contextlib.contextmanager
    def serve(self, manager: AuthManager, settings: WebSettings) -> Iterator[str]:
        auth = FastAPIAuth(manager, settings)
        app = FastAPI()
        auth.install(app)

        @app.get(f"{settings.prefix}/protected")
        async def protected(user: VerifiedToken = Depends(auth.current_user(["read"]))) -> dict[str, str]:
            return {"login": user.login}

        with support.run_uvicorn(app) as url:
            yield url
