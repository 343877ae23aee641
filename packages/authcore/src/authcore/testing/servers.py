"""Real servers for web tests: an app served on a free loopback port in a thread, and Chromium.

* :func:`free_port`: a loopback port nobody listens on now (:mod:`authcore.testing.ports`).
* :func:`run_asgi`: an ASGI app (FastAPI, the service) under uvicorn; yields its base URL.
* :func:`run_wsgi`: a WSGI app (Flask, Django) under werkzeug's threaded server.
* :func:`launch_chromium`: Debian's headless ``/usr/bin/chromium`` through Playwright; a
  missing browser fails the test with what to install (browser tests are never skipped).

uvicorn, werkzeug and playwright are imported when used, never by ``import authcore.testing``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .ports import free_port

__all__ = ["free_port", "run_asgi", "run_wsgi", "launch_chromium", "CHROMIUM", "CHROMIUM_ARGS"]

#: The browser: Debian's ``chromium`` package (``AUTHCORE_CHROMIUM`` overrides the path).
CHROMIUM = os.environ.get("AUTHCORE_CHROMIUM", "/usr/bin/chromium")
#: Headless, sandbox off (root in CI), and nothing that phones home.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: A bound on waiting for a server to start: not a timed assertion.
_STARTUP_BOUND = 30.0


@contextlib.contextmanager
def run_asgi(app: Any, port: int | None = None, *, lifespan: str = "on") -> Iterator[str]:
    """Serve the ASGI *app* with uvicorn in a thread on *port* (default: a free one); yield its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan=lifespan)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_BOUND
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def run_wsgi(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve the WSGI *app* with werkzeug's threaded server in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port or 0, app, threaded=True)
    # The loop looks for shutdown() every poll_interval: socketserver's 0.5 s was half a second
    # of every test that stops a server.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from Playwright's sync API, on Debian's binary.

    Calls ``pytest.fail`` (never skip) when the binary is missing.
    """
    if not Path(CHROMIUM).exists():
        import pytest

        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (browser tests are never skipped)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
