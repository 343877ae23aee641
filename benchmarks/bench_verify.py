"""Access-token verification speed, as ratios against a floor measured in the same run.

The floor is the least work a correct HS256 verifier of our tokens can do, written inline
with the standard library: split, compare the header segment with the expected string,
strict base64url decoding (alphabet and padding checked), HMAC-SHA256 from a pre-keyed
state, ``hmac.compare_digest``, ``json.loads``, and the same claim checks as
``TokenService.decode`` (iss, aud, sub, sid, jti, numeric non-bool iat/nbf/exp, leeway).

Measured:

* ``TokenService.decode`` of an uncached HS256 token: target ratio <= 2.0;
* PyJWT's ``jwt.decode`` with equivalent options, for reference (no target);
* ``TokenCache.get`` on a hit: target <= 1 us per call and ratio <= 0.15.

Rounds of all measurements interleave (in an order that reverses every round); each ratio is
the median of per-round ratios, reported with its spread (see ``_report.py``); every call gets
a distinct but equal token string object, so string hashes are not cached between calls, as
with tokens read from requests.

Usage: ``python benchmarks/bench_verify.py [--quick] [results.json]``. Prints a table,
writes JSON, exits 1 if a target is missed. The JSON goes to the path given, else to
``$AUTHCORE_BENCH_RESULTS/bench_verify.json`` when run by ``benchmarks/run.py``, else to
``benchmarks/results/verify.json``. Each entry carries both this script's keys
(``per_call_us``, ``floor_us``) and the runner's (``measured``, ``floor``, ``unit``,
``max_measured``), plus ``ratio`` and ``target``. ``--quick`` runs fewer rounds.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jwt
from _report import CPU_CLOCK, finish, interleave, output_path, ratio_entry, run_round, spread_text

from authcore import AuthManager
from authcore.config import TokenConfig
from authcore.models import Identity, VerifiedToken
from authcore.token_cache import TokenCache
from authcore.tokens import TokenService

QUICK = "--quick" in sys.argv[1:]
# Many short rounds of a few ms each (see _report.py): a spoiled round moves no median.
ROUNDS = 61 if QUICK else 201
CALLS = 500
SECRET = "benchmark-secret-" + "k" * 47  # 64 bytes: what HS256 deserves
ISSUER = "https://auth.example.org"
AUDIENCE = "authcore"
LEEWAY = 10.0
_PADDING = ("", "", "==", "=")
_MAX_TIME = 1e11


def make_floor(secret: bytes, header_segment: str) -> Callable[[str], dict[str, Any]]:
    """The inline minimal verifier (see the module docstring)."""
    prototype = hmac.new(secret, digestmod=hashlib.sha256)
    a2b = binascii.a2b_base64
    loads = json.loads
    compare = hmac.compare_digest
    clock = time.time

    def floor(token: str) -> dict[str, Any]:
        if "+" in token or "/" in token or "=" in token:
            raise ValueError("bad alphabet")
        header, payload, signature = token.split(".")
        if header != header_segment:
            raise ValueError("bad header")
        mac = prototype.copy()
        mac.update(token[: len(header) + 1 + len(payload)].encode())
        raw = a2b(signature.replace("-", "+").replace("_", "/") + _PADDING[len(signature) & 3], strict_mode=True)
        if not compare(raw, mac.digest()):
            raise ValueError("bad signature")
        text = a2b(payload.replace("-", "+").replace("_", "/") + _PADDING[len(payload) & 3], strict_mode=True).decode()
        claims = loads(text)  # a str: json.loads(bytes) would first sniff the encoding
        now = clock()
        if type(claims) is not dict:
            raise ValueError("payload")
        if claims.get("iss") != ISSUER:
            raise ValueError("iss")
        aud = claims.get("aud")
        if aud != AUDIENCE and not (type(aud) is list and AUDIENCE in aud):
            raise ValueError("aud")
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            raise ValueError("sub")
        if type(claims.get("sid")) is not str or type(claims.get("jti")) is not str:
            raise ValueError("sid/jti")
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        for value in (exp, nbf, iat):
            if (type(value) is not int and type(value) is not float) or not -_MAX_TIME < value < _MAX_TIME:
                raise ValueError("times")
        if now > exp + LEEWAY or nbf > now + LEEWAY or iat > now + LEEWAY:  # type: ignore[operator]
            raise ValueError("time window")
        return claims

    return floor


def main(argv: list[str]) -> int:
    """Run the benchmark; return the process exit code."""
    output = output_path(argv, "verify")
    service = TokenService(TokenConfig(secret=SECRET, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY))
    now = time.time()
    token = service.issue(
        {
            "sub": "alice",
            "sid": "Q_mDuyclQS6n5pWMJeoCsA",
            "exp": int(now) + 3600,
            "username": "alice",
            "groups": ["staff", "mx-users", "proposal-mx1234"],
            "permissions": ["all_proposals", "own_sessions", "contents:read", "contents:write", "kernels:execute"],
            "provider": "site-ldap",
        },
        now=now,
    )
    floor = make_floor(SECRET.encode(), token.split(".")[0])

    def pyjwt_decode(value: str) -> dict[str, Any]:
        decoded: dict[str, Any] = jwt.decode(
            value,
            SECRET,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
        return decoded

    claims = service.decode(token)
    cache = TokenCache(10_000)
    verified = VerifiedToken(
        login=claims["sub"],
        provider=claims["provider"],
        permissions=frozenset(claims["permissions"]),
        groups=tuple(claims["groups"]),
        session_id=claims["sid"],
        token_id=claims["jti"],
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]),
        claims=claims,
    )
    for index in range(999):  # a realistically populated cache
        cache.put(f"{token}{index}", verified, now + 3600)
    cache.put(token, verified, now + 3600)

    def cache_get(value: str) -> VerifiedToken | None:
        return cache.get(value, now)

    # Every contender agrees on the result, and the floor really refuses a forgery.
    assert floor(token) == service.decode(token) == pyjwt_decode(token)
    assert cache_get(token) is verified
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for verifier in (floor, service.decode):
        try:
            verifier(forged)
        except Exception:  # any refusal will do
            pass
        else:
            raise AssertionError("a verifier accepted a forged token")

    # The whole AuthManager.verify with its cache switched off: signature, claims, the session
    # lookup (memory store) and the VerifiedToken it returns. Its token comes from a real login,
    # with the same permissions, issuer, audience and key as the one above.
    manager = AuthManager.from_config(
        {
            "providers": [{"name": "dummy"}],
            "tokens": {"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE, "leeway": LEEWAY, "cache_size": 0},
        }
    )
    manager_token = manager.login(
        "dummy", login="alice", password="all_proposals,own_sessions,contents:read,contents:write,kernels:execute"
    ).access_token
    assert manager.verify(manager_token).login == "alice"
    # A personal access token (opaque, pat_...): one hash, one store lookup, no signature.
    pat, _record = manager.issue_personal_token(
        Identity(
            login="alice", provider="dummy", permissions=tuple(claims["permissions"]), groups=tuple(claims["groups"])
        ),
        lifetime=3600,
    )
    assert manager.verify(pat).permissions == frozenset(claims["permissions"])

    contenders: dict[str, tuple[Callable[[str], Any], str]] = {
        "floor": (floor, token),
        "decode": (service.decode, token),
        "pyjwt": (pyjwt_decode, token),
        "cache": (cache_get, token),
        "manager": (manager.verify, manager_token),
        "pat": (manager.verify, pat),
    }
    # PyJWT is only a reference and ~6x slower: fewer calls keep the run short.
    calls = {"floor": CALLS, "decode": CALLS, "pyjwt": CALLS // 5, "cache": CALLS, "manager": CALLS, "pat": CALLS}
    samples = interleave(
        {
            name: (lambda f=function, v=value, n=calls[name]: run_round(f, v, n, CPU_CLOCK))
            for name, (function, value) in contenders.items()
        },
        ROUNDS,
    )
    manager.close()

    entries: list[dict[str, Any]] = []

    def entry(name: str, key: str, target: float | None, ceiling_us: float | None = None) -> dict[str, Any]:
        item = ratio_entry(
            name,
            samples[key],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=target,
            max_measured=ceiling_us,
            note=f"{ROUNDS} rounds x {calls[key]} calls, CPU time; floor: inline stdlib HS256 verifier",
        )
        # This script's own names for the same figures.
        item["per_call_us"], item["floor_us"] = item["measured"], item["floor"]
        entries.append(item)
        return item

    entry("TokenService.decode HS256 (uncached)", "decode", 2.0)
    entry("AuthManager.verify HS256, cache off (decode + session + result)", "manager", 2.0)
    entry("AuthManager.verify personal access token, cache off", "pat", 1.5)
    entry("jwt.decode HS256 (PyJWT, reference)", "pyjwt", None)
    # The ratio is the target: an absolute ceiling in microseconds fails on a slower machine.
    entry("TokenCache.get hit", "cache", 0.15)

    failures: list[str] = []
    for item in entries:
        if item["target"] is not None and item["ratio"] > item["target"]:
            failures.append(f"{item['name']}: ratio {item['ratio']:.3f} > {item['target']}")
        limit = item["max_measured"]
        if limit is not None and item["per_call_us"] > limit:
            failures.append(f"{item['name']}: {item['per_call_us']:.3f} us > {limit} us")

    floor_us = entries[0]["floor"]
    print(f"token verification: {ROUNDS} interleaved rounds x {CALLS} calls, floor = {floor_us:.3f} us/call")
    print(f"{'name':<40} {'us/call':>9} {'ratio':>7} {'target':>8}  spread of the per-round ratios")
    for item in entries:
        target = "-" if item["target"] is None else f"<={item['target']}"
        print(f"{item['name']:<40} {item['per_call_us']:>9.3f} {item['ratio']:>7.3f} {target:>8}  " + spread_text(item))

    return finish(output, "verify", entries, failures, rounds=ROUNDS, calls_per_round=CALLS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
