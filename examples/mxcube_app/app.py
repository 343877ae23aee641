"""An MXCuBE-like Flask app: login under ``/mxcube/api/v0.1``, cookie sessions with sliding expiry.

The front-end logs in (``POST /mxcube/api/v0.1/auth/login``), keeps the session cookie, and
calls ``/mxcube/api/v0.1/auth/refresh_session`` every 9 s while the tab is open, which pushes
the idle expiry back (``PERMANENT_SESSION_LIFETIME`` = the idle timeout).

    MXCUBE_SECRET_KEY=... flask --app app run --port 8081   # or: python app.py
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from authcore import AuthManager
from authcore.web.flask import FlaskAuth

HERE = Path(__file__).resolve().parent
PREFIX = "/mxcube/api/v0.1"


def create_app(config: str | os.PathLike[str] = HERE / "authcore.yml", *, idle_timeout: float | None = None) -> Flask:
    """The app, with authcore configured from *config*."""
    app = Flask("mxcube-like")
    app.secret_key = os.environ.get("MXCUBE_SECRET_KEY") or secrets.token_hex(32)
    auth = FlaskAuth(AuthManager.from_file(config), app, prefix=PREFIX, idle_timeout=idle_timeout)
    queue: list[dict[str, Any]] = []

    @app.get(f"{PREFIX}/queue")
    @auth.login_required(["queue:read"])
    def get_queue() -> dict[str, Any]:
        """The sample queue."""
        return {"queue": queue, "user": auth.current_user.login}

    @app.post(f"{PREFIX}/queue")
    @auth.login_required(["queue:write"])
    def add_sample() -> dict[str, Any]:
        """Add a sample (cookie sessions: needs the X-CSRF-Token header)."""
        queue.append({"sample": len(queue) + 1, "by": auth.current_user.login})
        return {"queue": queue}

    @app.post(f"{PREFIX}/beamline/move")
    @auth.login_required(["beamline:control"])
    def move() -> dict[str, str]:
        """Staff only."""
        return {"moved": "ok"}

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=8081)
