"""A py-ispyb-compatible service: the seed's ``auth.yml``, endpoints under ``/ispyb/api/v1``.

A py-ispyb front-end works unchanged: it posts ``{plugin, login, password, token}`` to
``/ispyb/api/v1/auth/login``, reads ``/ispyb/api/v1/auth/config``, and sends the token as
``Authorization: Bearer``.

    AUTHCORE_SECRET=... uvicorn app:app            # or: python app.py

The site's own plugin (``site_auth``) lives beside this file, as py-ispyb's live in its
package. With ``ISPYB_DATABASE_URL`` set (``mysql+pymysql://user:password@host/ispyb``), logins
need a ``Person`` row and get the permissions of ISPyB's group tables, as in py-ispyb
(``ISPYB_CREATE_PERSON=1``: a missing Person is created).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from authcore import AuthManager, VerifiedToken
from authcore.web.fastapi import FastAPIAuth

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # AUTH_MODULE "site_auth.StaffAuthentication" is imported from here
PREFIX = "/ispyb/api/v1"
PROPOSALS = [{"proposalId": 1, "proposalCode": "MX", "proposalNumber": "1234", "owner": "test"}]


def create_app(config: str | os.PathLike[str] = HERE / "auth.yml") -> FastAPI:
    """The service, configured from *config* (py-ispyb's ``auth.yml`` format)."""
    manager = AuthManager.from_file(config)
    database = os.environ.get("ISPYB_DATABASE_URL")
    if database:
        # Deferred: SQLAlchemy and ispyb-models are needed only with a database (authcore[ispyb]).
        from authcore.compat.ispyb_db import IspybDatabase

        create = os.environ.get("ISPYB_CREATE_PERSON") == "1"
        manager.plugins.register(IspybDatabase(database, create_person_on_missing=create), name="ispyb-db")
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
