"""A Jupyverse-like FastAPI server using authcore through Jupyverse's auth API.

:class:`AuthcoreAuth` has the shape of ``jupyverse_api.Auth``: ``current_user(permissions)``,
``websocket_auth(permissions)`` and ``update_user``; swapping Jupyverse's ``fps-auth`` for
authcore is a matter of handing this object to the routers.

    uvicorn app:app --port 8888        # or: python app.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, WebSocket

from authcore import AuthManager, VerifiedToken
from authcore.web.fastapi import FastAPIAuth

HERE = Path(__file__).resolve().parent


class AuthcoreAuth(FastAPIAuth):
    """Jupyverse's ``Auth`` API, backed by authcore (``current_user``, ``websocket_auth``, ``update_user``)."""


def create_app(config: str | os.PathLike[str] = HERE / "authcore.yml") -> FastAPI:
    """The server, with authcore configured from *config*."""
    auth = AuthcoreAuth(AuthManager.from_file(config))
    app = FastAPI(title="jupyverse-like")
    auth.install(app)
    files: dict[str, str] = {"notebook.ipynb": "{}"}

    @app.get("/api/contents")
    async def list_contents(user: VerifiedToken = Depends(auth.current_user({"contents": ["read"]}))) -> list[str]:
        """Needs ``contents:read``."""
        return sorted(files)

    @app.put("/api/contents/{name}")
    async def save(
        name: str, body: dict[str, str], user: VerifiedToken = Depends(auth.current_user({"contents": ["write"]}))
    ) -> dict[str, str]:
        """Needs ``contents:write``."""
        files[name] = body.get("content", "")
        return {"name": name}

    @app.get("/api/me")
    async def me(user: VerifiedToken = Depends(auth.current_user())) -> dict[str, Any]:
        """Any logged-in user."""
        return {"username": user.login, "permissions": sorted(user.permissions)}

    @app.websocket("/api/kernels/{kernel_id}/channels")
    async def channels(
        websocket: WebSocket,
        kernel_id: str,
        result: Any = Depends(auth.websocket_auth({"kernels": ["read", "execute"]})),
    ) -> None:
        """Accepted with at least one of ``kernels:read``/``kernels:execute``; echoes messages."""
        if result is None:
            return  # refused: already closed with 1008
        websocket, checked = result
        await websocket.accept()
        await websocket.send_json({"kernel": kernel_id, "permissions": checked})
        async for message in websocket.iter_text():
            if not checked or "execute" not in checked.get("kernels", []):
                await websocket.send_json({"error": "execute not permitted"})
                continue
            await websocket.send_json({"echo": message})

    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8888, access_log=False)
