"""Web-layer speed, as ratios against floors measured in the same run, in-process (httpx.ASGITransport).

Measured (requests per second; the runner's ``ratio`` is time per request against the floor,
so a throughput target of at least X is a ``target`` of 1/X):

* ``GET /protected`` guarded by ``current_user(["read"])`` with a cached token, against the same
  endpoint unprotected: throughput at least 0.85x (time ratio at most 1/0.85);
* Flask: ``GET /protected`` guarded by ``login_required(["read"])`` (bearer token, cached), against
  the same endpoint unprotected, through Flask's in-process WSGI test client: at least 0.85x;
* ``POST /auth/login`` with the dummy provider (session started, token signed, async worker
  thread for the provider), against a FastAPI endpoint that only parses the same body and signs a
  token: throughput at least 0.8x (time ratio at most 1.25).

Rounds of every contender interleave (the order reverses every round); each ratio is the median
of per-round ratios, with their spread (see ``_report.py``).

Usage: ``python benchmarks/bench_web.py [--quick] [results.json]``. The JSON goes to the path
given, else ``$AUTHCORE_BENCH_RESULTS/bench_web.json`` (set by ``benchmarks/run.py``), else
``benchmarks/results/web.json``. Exit 1 if a target is missed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from _report import CPU_CLOCK, ainterleave, finish, output_path, paused_gc, ratio_entry, spread_text
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from flask import Flask

from authcore import AuthManager, VerifiedToken
from authcore.tokens import TokenService
from authcore.web.common import LoginBody, parse_json
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth

QUICK = "--quick" in sys.argv[1:]
# Many short rounds of a few ms each (see _report.py): a spoiled round moves no median.
ROUNDS = 41 if QUICK else 151
REQUESTS = 20
SECRET = "benchmark-web-secret-" + "k" * 43
PROTECTED_TARGET = 0.85
FLASK_PROTECTED_TARGET = 0.85
LOGIN_TARGET = 0.8


def build() -> tuple[FastAPI, AuthManager]:
    manager = AuthManager.from_config({"tokens": {"secret": SECRET}, "providers": [{"name": "dummy"}]})
    auth = FastAPIAuth(manager)
    app = FastAPI()
    auth.install(app)
    floor_tokens = TokenService(manager.config.tokens)

    @app.get("/protected")
    async def protected(user: VerifiedToken = Depends(auth.current_user(["read"]))) -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/open")
    async def unprotected() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.post("/floor/login")
    async def floor_login(request: Request) -> JSONResponse:
        body = parse_json(await request.body(), LoginBody)
        now = time.time()
        token = floor_tokens.issue(
            {"sub": body.login, "sid": "s", "exp": int(now) + 900, "permissions": [body.password]}, now=now
        )
        return JSONResponse({"login": body.login, "token": token, "permissions": [body.password]})

    return app, manager


def build_flask(manager: AuthManager) -> Flask:
    """The same two endpoints in Flask (cookie sessions on, as MXCuBE runs it)."""
    app = Flask("bench")
    app.secret_key = SECRET
    auth = FlaskAuth(manager, app)

    @app.get("/protected")
    @auth.login_required(["read"])
    def protected() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/open")
    def unprotected() -> dict[str, bool]:
        return {"ok": True}

    return app


def measure_sync(send: Callable[[], Any], count: int) -> float:
    """CPU seconds per request of a synchronous client (Flask's test client), garbage collector paused."""
    with paused_gc():
        started = CPU_CLOCK()
        for _ in range(count):
            response = send()
            if response.status_code != 200:
                raise AssertionError(f"unexpected {response.status_code}: {response.text}")
        return (CPU_CLOCK() - started) / count


async def measure(send: Callable[[], Awaitable[httpx.Response]], count: int) -> float:
    """CPU seconds per request over *count* sequential requests (every thread of this process: the
    app runs in-process), with the garbage collector paused."""
    with paused_gc():
        started = CPU_CLOCK()
        for _ in range(count):
            response = await send()
            if response.status_code != 200:
                raise AssertionError(f"unexpected {response.status_code}: {response.text}")
        return (CPU_CLOCK() - started) / count


async def run() -> dict[str, list[float]]:
    app, manager = build()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post("/auth/login", json={"plugin": "dummy", "login": "bench", "password": "read"})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            body = {"plugin": "dummy", "login": "bench", "password": "read", "token": "read"}
            refused = await client.get("/protected")
            assert refused.status_code == 401, "the protected endpoint must refuse a request without a token"
            flask_client = build_flask(manager).test_client()
            assert flask_client.get("/protected").status_code == 401
            contenders: dict[str, Callable[[], Awaitable[float]]] = {
                name: (lambda s=send: measure(s, REQUESTS))
                for name, send in {
                    "open": lambda: client.get("/open", headers=headers),
                    "protected": lambda: client.get("/protected", headers=headers),
                    "floor_login": lambda: client.post("/floor/login", json=body),
                    "login": lambda: client.post("/auth/login", json=body),
                }.items()
            }
            for name, path in (("flask_open", "/open"), ("flask_protected", "/protected")):

                async def sync_round(path: str = path) -> float:
                    return measure_sync(lambda: flask_client.get(path, headers=headers), REQUESTS)

                contenders[name] = sync_round
            for contender in contenders.values():  # warm-up
                for _ in range(3):
                    await contender()
            return await ainterleave(contenders, ROUNDS)
    finally:
        manager.close()


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code."""
    output = output_path(argv, "web")
    samples = asyncio.run(run())

    def entry(name: str, key: str, floor_key: str, throughput_target: float, floor_name: str) -> dict[str, Any]:
        item = ratio_entry(
            name,
            samples[key],
            samples[floor_key],
            unit="us",
            scale=1e6,
            target=round(1 / throughput_target, 4),
            note=f"{ROUNDS} rounds x {REQUESTS} requests via httpx.ASGITransport, CPU time; floor: {floor_name}; "
            f"throughput target >= {throughput_target}x",
        )
        throughput_ratio = 1 / item["ratio"]
        item.update(
            requests_per_s=round(1e6 / item["measured"], 1),
            floor_requests_per_s=round(1e6 / item["floor"], 1),
            throughput_ratio=round(throughput_ratio, 4),
            throughput_target=throughput_target,
            ok=throughput_ratio >= throughput_target,
        )
        return item

    entries = [
        entry(
            "FastAPI current_user(['read']), cached token",
            "protected",
            "open",
            PROTECTED_TARGET,
            "the same endpoint unprotected",
        ),
        entry(
            "Flask login_required(['read']), cached token",
            "flask_protected",
            "flask_open",
            FLASK_PROTECTED_TARGET,
            "the same Flask endpoint unprotected",
        ),
        entry(
            "FastAPI POST /auth/login (dummy)",
            "login",
            "floor_login",
            LOGIN_TARGET,
            "an endpoint that parses the same body and signs a token",
        ),
    ]
    print(f"web layer: {ROUNDS} interleaved rounds x {REQUESTS} requests (x: throughput, median of per-round ratios)")
    print(f"{'name':<48} {'req/s':>9} {'floor':>9} {'x':>7} {'target':>7}  spread of the per-round time ratios")
    for e in entries:
        print(
            f"{e['name']:<48} {e['requests_per_s']:>9.0f} {e['floor_requests_per_s']:>9.0f} "
            f"{e['throughput_ratio']:>7.3f} {'>=' + str(e['throughput_target']):>7}  " + spread_text(e)
        )
    failures = [
        f"{e['name']}: {e['throughput_ratio']:.3f}x < {e['throughput_target']}x" for e in entries if not e["ok"]
    ]
    return finish(output, "web", entries, failures, rounds=ROUNDS, requests_per_round=REQUESTS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
