"""A py-ispyb-compatible service: the seed's ``auth.yml``, endpoints under ``/ispyb/api/v1``.

A py-ispyb front-end works unchanged: it posts ``{plugin, login, password, token}`` to
``/ispyb/api/v1/auth/login``, reads ``/ispyb/api/v1/auth/config``, and sends the token as
``Authorization: Bearer``.

    AUTHCORE_SECRET=... uvicorn app:app            # or: python app.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from authcore import AuthManager, VerifiedToken
from authcore.web.fastapi import FastAPIAuth

HERE = Path(__file__).resolve().parent
PREFIX = "/ispyb/api/v1"
PROPOSALS = [{"proposalId": 1, "proposalCode": "MX", "proposalNumber": "1234", "owner": "test"}]


def create_app(config: str | os.PathLike[str] = HERE / "auth.yml") -> FastAPI:
    """The service, configured from *config* (py-ispyb's ``auth.yml`` format)."""
    manager = AuthManager.from_file(config)
    auth = FastAPIAuth(manager, prefix=PREFIX)
    app = FastAPI(title="py-ispyb-compatible")
    auth.install(app)

    @app.get(f"{PREFIX}/proposals")
    async def proposals(user: VerifiedToken = Depends(auth.current_user())) -> list[dict[str, Any]]:
        """``all_proposals`` sees every proposal, ``own_proposals`` its own."""
        if user.allows("all_proposals"):
            return PROPOSALS
        if user.allows("own_proposals"):
            return [p for p in PROPOSALS if p["owner"] == user.login]
        return []

    @app.get(f"{PREFIX}/sessions")
    async def sessions(user: VerifiedToken = Depends(auth.current_user(["all_sessions"]))) -> list[dict[str, Any]]:
        """Staff only."""
        return [{"sessionId": 10, "proposalId": 1}]

    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000, access_log=False)
