"""Several instances on Redis, measured over real HTTP: the store's cost, and latency through HAProxy.

Every server is a real process on a loopback port: ``authcore serve`` (the dummy provider, a fixed
``tokens.secret``, cookie sessions off), Debian's ``redis-server`` and ``haproxy``
(:mod:`authcore.testing.haproxy`). Measured:

* **the Redis store against the memory store**, one ``authcore serve`` each, same configuration
  but ``sessions.store`` (Redis with its append-only file, ``appendfsync everysec`` as
  docs/deploy.md advises): requests per second of one client (sequential requests on a kept-alive
  connection, wall time) for ``GET /auth/me`` with a cached token (target: at least 0.9x the
  memory store), ``POST /auth/login`` and ``POST /auth/refresh`` (a rotation chain; target at
  least 0.8x). The runner's ``ratio`` is time per request against the floor,
  so a throughput target of at least X is a ``target`` of 1/X. Rounds of both stores interleave
  (``_report.interleave``) and each ratio is the median of the per-round ratios.
* **the same under concurrency**: requests per second of ``POST /auth/login`` and ``POST
  /auth/refresh`` with :data:`CONCURRENCY` clients at once, each on its own kept-alive
  connection sending its next request when its last one is answered (a refresh chain per
  client), memory and Redis rounds interleaved as above, with the same 0.8x targets: instances
  behind a balancer serve many clients at once, and the requests per second one instance serves
  then is what a site sizes a deployment by; one client's latency is the sequential rows'. The
  issue names no reading, so both are held to the target. Both stores run a dummy login and a
  refresh on the service's event loop (Redis's calls awaited there, authcore.loop_bridge), so
  the ratios are what Redis costs: one round trip for a refresh (the rotation), one for a
  login (the dummy provider answers without waiting, so the throttle counts after it: the
  session's creation and the throttle's step go in one write). The client is
  :mod:`_rawhttp` (prepared request bytes, one thread), so that its share of the machine, which
  the service and Redis share with it, stays small.
* **p50/p99 latency of ``GET /auth/me`` (cached) through HAProxy at a fixed rate**, open loop
  (requests leave on a schedule, whether or not earlier ones have answered, and each latency
  counts from its scheduled time, so a stall is not hidden by a client that waits), for HAProxy
  in front of one and of three instances on one Redis. The floor is the same schedule sent
  straight to one instance. Informational (no target), but every request must answer 200.

Usage: ``python benchmarks/bench_deploy.py [--quick] [results.json]``. The JSON goes to the path
given, else ``$AUTHCORE_BENCH_RESULTS/bench_deploy.json`` (set by ``benchmarks/run.py``), else
``benchmarks/results/deploy.json``. Exit 1 if a target is missed or a request failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _rawhttp import RawHttp, loop_factory
from _report import finish, interleave, output_path, paused_gc, ratio_entry, spread_text

from authcore.testing.haproxy import Deployment, HAProxy, deployment_config, start_deployment, start_haproxy
from authcore.testing.service_process import ServiceProcess, start_service

QUICK = "--quick" in sys.argv[1:]
ROUNDS = 11 if QUICK else 41
REQUESTS = 30
#: The fixed request rate of the latency runs, and how long each lasts.
RATE = 200
SECONDS = 2.0 if QUICK else 5.0
#: Sessions whose (cached) tokens the latency runs cycle through.
TOKENS = 20
#: Clients at once in the concurrent rows, requests each per round, and rounds.
CONCURRENCY = 8
PER_CLIENT = 15
CONCURRENT_ROUNDS = 9 if QUICK else 31
VERIFY_TARGET = 0.9
LOGIN_TARGET = 0.8
REFRESH_TARGET = 0.8
SECRET = "bench-deploy-secret-" + "k" * 44


def config(store: str) -> str:
    """The one configuration: only the store differs between the contenders."""
    return deployment_config(store, SECRET)


def login(client: httpx.Client, base: str, name: str) -> dict[str, Any]:
    answer = client.post(f"{base}/auth/login", json={"plugin": "dummy", "login": name, "password": "read"})
    if answer.status_code != 200 or answer.json()["login"] != name:
        raise AssertionError(f"login answered {answer.status_code}: {answer.text}")
    body: dict[str, Any] = answer.json()
    return body


# --------------------------------------------------------------------------- store ratios


class StoreContender:
    """One ``authcore serve`` and the three timed operations against it (seconds per request)."""

    def __init__(self, base: str, client: httpx.Client) -> None:
        self.base = base
        self.client = client
        tokens = login(client, base, "bench")
        self.headers = {"Authorization": f"Bearer {tokens['token']}"}
        self.refresh_token: str = tokens["refresh_token"]

    def _timed(self, send: Callable[[], httpx.Response]) -> float:
        with paused_gc():
            started = time.perf_counter()
            for _ in range(REQUESTS):
                answer = send()
                if answer.status_code != 200:
                    raise AssertionError(f"{self.base}: {answer.status_code} {answer.text}")
            return (time.perf_counter() - started) / REQUESTS

    def verify(self) -> float:
        return self._timed(lambda: self.client.get(f"{self.base}/auth/me", headers=self.headers))

    def login(self) -> float:
        body = {"plugin": "dummy", "login": "bench", "password": "read"}
        return self._timed(lambda: self.client.post(f"{self.base}/auth/login", json=body))

    def refresh(self) -> float:
        def send() -> httpx.Response:
            answer = self.client.post(f"{self.base}/auth/refresh", json={"refresh_token": self.refresh_token})
            if answer.status_code == 200:
                self.refresh_token = answer.json()["refresh_token"]  # the rotation chain goes on
            return answer

        return self._timed(send)


def store_entry(name: str, redis: list[float], memory: list[float], target: float | None, note: str) -> dict[str, Any]:
    """A Redis-vs-memory entry from per-round seconds per request, with its throughput figures.

    *target* is the least throughput ratio (``None``: informational, no verdict)."""
    item = ratio_entry(
        name,
        redis,
        memory,
        unit="ms",
        scale=1e3,
        target=None if target is None else round(1 / target, 4),
        note=note,
    )
    throughput = 1 / item["ratio"]
    item.update(
        requests_per_s=round(1e3 / item["measured"], 1),
        floor_requests_per_s=round(1e3 / item["floor"], 1),
        throughput_ratio=round(throughput, 4),
        throughput_target=target,
        ok=None if target is None else throughput >= target,
    )
    return item


def store_ratios(memory: ServiceProcess, redis: ServiceProcess) -> list[dict[str, Any]]:
    with httpx.Client(timeout=10) as client:
        stores = {"memory": StoreContender(memory.url, client), "redis": StoreContender(redis.url, client)}
        contenders = {
            f"{operation}:{store}": getattr(contender, operation)
            for operation in ("verify", "login", "refresh")
            for store, contender in stores.items()
        }
        for contender in contenders.values():  # warm-up: connections, caches, imports
            contender()
        samples = interleave(contenders, ROUNDS)
    entries = []
    for operation, label, target in (
        ("verify", "GET /auth/me, cached token", VERIFY_TARGET),
        ("login", "POST /auth/login (dummy)", LOGIN_TARGET),
        ("refresh", "POST /auth/refresh (rotation)", REFRESH_TARGET),
    ):
        note = (
            f"{ROUNDS} rounds x {REQUESTS} sequential requests to one `authcore serve`, wall time; "
            f"Redis: AOF, appendfsync everysec; floor: the same with sessions.store memory://; "
            f"throughput target >= {target}x"
        )
        redis_samples, memory_samples = samples[f"{operation}:redis"], samples[f"{operation}:memory"]
        name = f"{label}: Redis store vs memory store, over HTTP"
        entries.append(store_entry(name, redis_samples, memory_samples, target, note))
    return entries


# --------------------------------------------------------------------------- throughput, concurrent clients


def login_body(name: str) -> bytes:
    return json.dumps({"plugin": "dummy", "login": name, "password": "read"}).encode()


class ConcurrentContender:
    """CONCURRENCY clients of one ``authcore serve``, each with its own connection (and login, so
    that no two share a throttle counter but the address's) and its own refresh chain."""

    def __init__(self, runner: asyncio.Runner, base: str, store: str) -> None:
        self.runner = runner
        self.logins = [login_body(f"load-{store}-{index}") for index in range(CONCURRENCY)]
        self.connections = [RawHttp(base) for _ in range(CONCURRENCY)]
        answers = runner.run(self._each(lambda index: self.connections[index].post(b"/auth/login", self.logins[index])))
        self.refresh_tokens: list[str] = [json.loads(answer)["refresh_token"] for answer in answers]

    @staticmethod
    async def _each(one: Callable[[int], Any]) -> list[Any]:
        return list(await asyncio.gather(*(one(index) for index in range(CONCURRENCY))))

    def _round(self, one: Callable[[int], Any]) -> float:
        """Seconds per request while every client sends PER_CLIENT requests, one after the other."""

        async def client(index: int) -> None:
            for _ in range(PER_CLIENT):
                await one(index)

        with paused_gc():
            started = time.perf_counter()
            self.runner.run(self._each(client))
            return (time.perf_counter() - started) / (CONCURRENCY * PER_CLIENT)

    def login(self) -> float:
        return self._round(lambda index: self.connections[index].post(b"/auth/login", self.logins[index]))

    def refresh(self) -> float:
        async def one(index: int) -> None:
            body = json.dumps({"refresh_token": self.refresh_tokens[index]}).encode()
            answer = await self.connections[index].post(b"/auth/refresh", body)
            self.refresh_tokens[index] = json.loads(answer)["refresh_token"]  # the chain goes on

        return self._round(one)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def concurrent_ratios(memory: ServiceProcess, redis: ServiceProcess) -> list[dict[str, Any]]:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        stores = {
            "memory": ConcurrentContender(runner, memory.url, "memory"),
            "redis": ConcurrentContender(runner, redis.url, "redis"),
        }
        try:
            contenders = {
                f"{operation}:{store}": getattr(contender, operation)
                for operation in ("login", "refresh")
                for store, contender in stores.items()
            }
            for contender in contenders.values():  # warm-up: the service's worker threads, Redis connections
                contender()
            samples = interleave(contenders, CONCURRENT_ROUNDS)
        finally:
            for contender in stores.values():
                contender.close()
    entries = []
    for operation, label, target in (
        ("login", "POST /auth/login (dummy)", LOGIN_TARGET),
        ("refresh", "POST /auth/refresh (rotation)", REFRESH_TARGET),
    ):
        note = (
            f"{CONCURRENT_ROUNDS} rounds x {CONCURRENCY} clients at once x {PER_CLIENT} requests each (closed loop, "
            f"one kept-alive connection per client) to one `authcore serve`, wall time per request; Redis: AOF, "
            f"appendfsync everysec; floor: the same with sessions.store memory://; throughput target >= {target}x"
        )
        if operation == "login":
            note += (
                "; both run on the event loop; a Redis login makes one round trip"
                " (the session and the throttle's step in one write)"
            )
        name = f"{label}: Redis store vs memory store, {CONCURRENCY} concurrent clients"
        entries.append(store_entry(name, samples[f"{operation}:redis"], samples[f"{operation}:memory"], target, note))
    return entries


# --------------------------------------------------------------------------- latency at a fixed rate


def open_loop(base: str, tokens: list[str]) -> tuple[list[float], int]:
    """``GET /auth/me`` at RATE per second for SECONDS, each sent at its scheduled time by a thread
    pool; returns the latencies (seconds, from the scheduled time) and how many did not answer 200."""
    count = int(RATE * SECONDS)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(timeout=10, limits=limits) as client, ThreadPoolExecutor(max_workers=48) as pool:

        def send(index: int, scheduled: float) -> None:
            nonlocal errors
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            try:
                ok = client.get(f"{base}/auth/me", headers=headers).status_code == 200
            except httpx.HTTPError:
                ok = False
            finished = time.perf_counter()
            with lock:
                latencies.append(finished - scheduled)
                errors += not ok

        for index in range(len(tokens) * 2):  # warm-up: connections, and every token in every cache
            send(index, time.perf_counter())
        latencies.clear()
        start = time.perf_counter() + 0.05
        for index in range(count):
            scheduled = start + index / RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, index, scheduled)
    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_entries(deployment: Deployment, single: HAProxy) -> list[dict[str, Any]]:
    with httpx.Client(timeout=10) as client:
        tokens = [login(client, deployment.proxy.url, f"rate-{index}")["token"] for index in range(TOKENS)]
    runs = {
        "direct": open_loop(deployment.instances[0].url, tokens),
        "1 instance": open_loop(single.url, tokens),
        "3 instances": open_loop(deployment.proxy.url, tokens),
    }
    direct, _ = runs["direct"]
    entries = []
    for name in ("1 instance", "3 instances"):
        latencies, errors = runs[name]
        failed = errors + runs["direct"][1]
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            measured, floor = percentile(latencies, fraction) * 1e3, percentile(direct, fraction) * 1e3
            entries.append(
                {
                    "name": f"{label} GET /auth/me (cached) through HAProxy, {name}, {RATE} req/s",
                    "measured": round(measured, 3),
                    "floor": round(floor, 3),
                    "ratio": round(measured / floor, 3),
                    "target": None,
                    "max_measured": None,
                    "unit": "ms",
                    "requests": len(latencies),
                    "errors": failed,
                    "ok": None if failed == 0 else False,
                    "note": f"open loop: {int(RATE * SECONDS)} requests on a {RATE}/s schedule over "
                    f"{SECONDS:g} s, {TOKENS} sessions on one Redis, latency from the scheduled send time; "
                    f"floor: the same schedule straight to one instance; non-200 answers: {failed}",
                }
            )
    return entries


# --------------------------------------------------------------------------- main


def everysec(url: str) -> None:
    """Redis as docs/deploy.md runs it: append-only file, fsync once a second (Redis's default).

    The test kit's Redis fsyncs every write (``appendfsync always``: a SIGKILL loses nothing),
    which charges a disk flush to every login and refresh; a site chooses that knowingly.
    """
    import redis

    with redis.Redis.from_url(url) as client:
        client.config_set("appendfsync", "everysec")
        if client.config_get("appendonly")["appendonly"] != "yes":
            raise AssertionError("the benchmark's Redis runs with its append-only file")


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code."""
    output = output_path(argv, "deploy")
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as scratch:
        directory = Path(scratch)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["AUTHCORE_STATE_DIR"] = str(directory / "state")
        memory_config = directory / "memory" / "authcore.yml"
        memory_config.parent.mkdir()
        memory_config.write_text(config("memory://"))
        memory_config.chmod(0o600)
        memory = start_service(memory_config, env=env)
        deployment: Deployment | None = None
        single: HAProxy | None = None
        try:
            deployment = start_deployment(directory / "redis-deploy", config, env=env)
            everysec(deployment.redis.url)
            single = start_haproxy(directory / "haproxy-one", [deployment.instances[0].url])
            entries = store_ratios(memory, deployment.instances[0])
            entries += concurrent_ratios(memory, deployment.instances[0])
            entries += latency_entries(deployment, single)
        finally:
            if single is not None:
                single.stop()
            if deployment is not None:
                deployment.stop()
            memory.stop()
    print(
        f"deploy: {ROUNDS} interleaved rounds x {REQUESTS} requests; {CONCURRENT_ROUNDS} rounds x {CONCURRENCY} "
        f"clients x {PER_CLIENT} requests; latency at {RATE} req/s for {SECONDS:g} s"
    )
    for e in entries:
        if "throughput_ratio" in e:
            wanted = "informational" if e["throughput_target"] is None else f">= {e['throughput_target']}"
            print(
                f"{e['name']:<72} {e['requests_per_s']:>7.0f}/s vs {e['floor_requests_per_s']:>7.0f}/s "
                f"{e['throughput_ratio']:>6.3f}x ({wanted})  " + spread_text(e)
            )
        else:
            print(f"{e['name']:<72} {e['measured']:>8.2f} ms (direct {e['floor']:.2f} ms), errors {e['errors']}")
    failures = [
        f"{e['name']}: {e['throughput_ratio']:.3f}x < {e['throughput_target']}x"
        for e in entries
        if "throughput_ratio" in e and e["ok"] is False
    ]
    failures += [f"{e['name']}: {e['errors']} requests failed" for e in entries if e.get("errors")]
    return finish(
        output,
        "deploy",
        entries,
        failures,
        rounds=ROUNDS,
        requests_per_round=REQUESTS,
        concurrent_rounds=CONCURRENT_ROUNDS,
        concurrency=CONCURRENCY,
        requests_per_client=PER_CLIENT,
        rate=RATE,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
