"""Keycloak provider speed, as ratios against floors measured in the same run.

* Bearer verification of a Keycloak access token, uncached (``KeycloakProvider.verify_bearer``),
  against the RS256 floor of ``_rs256.py``: split, strict base64url, ``json.loads``,
  cryptography's RSA PKCS#1 v1.5 verify with a pre-loaded key, and the same claim checks
  (iss, typ and no logout ``events``, exp/nbf/iat with leeway, azp/aud). Target <= 1.5x. python-keycloak's
  ``decode_token`` with the key given is measured for reference. The test server's request
  counter must not move during the timed loops (the keys are cached).
* Cached verification (``AuthManager.verify`` of a Keycloak token seen before): <= 1 us per call.
* Password-grant login through ``AuthManager.login`` against a bare HTTP POST of the same
  form to the same server (requests, keep-alive): target <= 1.2x.

Every ratio is the median of per-round ratios, floor and measured rounds interleaved, with the
spread of those ratios in the table and the JSON (see ``_report.py``).

Usage: ``python benchmarks/bench_keycloak.py [--quick] [results.json]``; JSON goes to the path
given, else ``$AUTHCORE_BENCH_RESULTS/bench_keycloak.json``, else ``benchmarks/results/keycloak.json``.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from _report import (
    CPU_CLOCK,
    finish,
    interleave,
    missed_targets,
    output_path,
    paused_gc,
    print_table,
    ratio_entry,
    run_round,
)
from _rs256 import make_floor
from jwcrypto import jwk
from keycloak import KeycloakOpenID

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import CLIENT_ID, CLIENT_SECRET, USERS, KeycloakTestServer, standard_realm
from authcore import AuthManager

QUICK = "--quick" in sys.argv[1:]
# Many short rounds (a few ms each, about one scheduler time slice): when another process takes
# the CPU it spoils a round or two, and the median of the per-round ratios shrugs those off.
ROUNDS = 101 if QUICK else 301
CALLS = 50
LOGIN_ROUNDS = 31 if QUICK else 101
LOGINS = 5
LEEWAY = 10.0


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code."""
    output = output_path(argv, "keycloak")

    server = KeycloakTestServer().start()
    realm = standard_realm(server)
    provider_config = {
        "server_url": server.url,
        "realm": realm.name,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "leeway": LEEWAY,
    }
    config = {
        "providers": [{"name": "sso", "type": "keycloak", "config": provider_config}],
        "permissions": {"groups": {"user": ["own_proposals"], "staff": ["staff_area"]}},
    }
    manager = AuthManager.from_config(config)
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    token = realm.issue("alice", CLIENT_ID)["access_token"]
    now = time.time()

    key = realm.active_key.private.public_key()
    floor = make_floor(
        key,
        issuer=realm.issuer,
        client_claim="azp",
        client_id=CLIENT_ID,
        audience=CLIENT_ID,
        typ="Bearer",
        leeway=LEEWAY,
    )
    openid = KeycloakOpenID(server_url=server.url, realm_name=realm.name, client_id=CLIENT_ID)
    jwcrypto_key = jwk.JWK(**realm.active_key.jwk())

    def keycloak_decode(value: str) -> dict[str, Any]:
        decoded: dict[str, Any] = openid.decode_token(
            value, key=jwcrypto_key, check_claims={"iss": realm.issuer, "azp": CLIENT_ID, "exp": None}
        )
        return decoded

    def verify_bearer(value: str) -> Any:
        return provider.verify_bearer(value)

    # Every contender agrees, and the warm-up fetched the keys.
    bearer = provider.verify_bearer(token)
    assert bearer is not None and bearer.identity.login == "alice"
    assert floor(token)["preferred_username"] == keycloak_decode(token)["preferred_username"] == "alice"
    assert manager.verify(token).login == "alice"  # now cached

    def cached(value: str) -> Any:
        return manager.verify(value)

    contenders: dict[str, Callable[[str], Any]] = {
        "floor": floor,
        "verify_bearer": verify_bearer,
        "decode_token": keycloak_decode,
        "cached": cached,
    }
    calls = {"floor": CALLS, "verify_bearer": CALLS, "decode_token": CALLS // 5, "cached": CALLS * 4}
    server.reset_hits()
    samples = interleave(
        {
            name: (lambda f=function, n=calls[name]: run_round(f, token, n, CPU_CLOCK))
            for name, function in contenders.items()
        },
        ROUNDS,
    )
    requests_seen = server.hits()

    # Logins: AuthManager.login vs a bare POST of the same form (one keep-alive session each).
    session = requests.Session()
    url = realm.issuer + "/protocol/openid-connect/token"
    password = USERS["alice"][0]
    form = {
        "username": "alice",
        "password": password,
        "client_id": CLIENT_ID,
        "grant_type": "password",
        "code": "",
        "redirect_uri": "",
        "scope": "openid",
        "client_secret": CLIENT_SECRET,
    }

    def bare_login() -> None:
        reply = session.post(url, data=form, timeout=10)
        assert reply.status_code == 200
        reply.json()

    def manager_login() -> None:
        manager.login("sso", login="alice", password=password)

    for login_call in (bare_login, manager_login):
        for _ in range(5):
            login_call()

    def login_round(login_call: Callable[[], None]) -> float:
        with paused_gc():
            start = time.perf_counter()
            for _ in range(LOGINS):
                login_call()
            return (time.perf_counter() - start) / LOGINS

    logins = interleave(
        {"bare": lambda: login_round(bare_login), "manager": lambda: login_round(manager_login)}, LOGIN_ROUNDS
    )
    manager.close()
    server.stop()

    floor_note = "CPU time; floor: inline cryptography RS256 verifier with the same claim checks"
    entries = [
        ratio_entry(
            "keycloak verify_bearer RS256 (uncached)",
            samples["verify_bearer"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=1.5,
            note=f"{ROUNDS} rounds x {CALLS} calls; {floor_note}; HTTP requests in the timed loops: {requests_seen}",
        ),
        ratio_entry(
            "python-keycloak decode_token, key given (reference)",
            samples["decode_token"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=None,
            note=f"{ROUNDS} rounds x {calls['decode_token']} calls; {floor_note}",
        ),
        ratio_entry(
            "AuthManager.verify of a cached Keycloak token",
            samples["cached"],
            samples["floor"],
            unit="us",
            scale=1e6,
            # Issue 5 set "under 1 us" where the RS256 floor was 36.7 us; as a ratio to the
            # same-run floor it holds on a machine of any speed (this one varies 2-3x by day).
            target=0.03,
            note=f"{ROUNDS} rounds x {calls['cached']} calls; 0.03x the RS256 floor is 1 us where it was set",
        ),
        ratio_entry(
            "keycloak password login via AuthManager.login",
            logins["manager"],
            logins["bare"],
            unit="ms",
            scale=1e3,
            target=1.2,
            note=f"{LOGIN_ROUNDS} rounds x {LOGINS} logins, wall time; floor: bare requests POST of the same form",
        ),
    ]
    floor_us = entries[0]["floor"]
    bare_ms = entries[-1]["floor"]

    failures = missed_targets(entries)
    if requests_seen:
        failures.append(f"{requests_seen} HTTP requests reached the server during the timed verification loops")
    entries[0]["ok"] = not requests_seen and entries[0]["ratio"] <= 1.5

    print(f"keycloak: floor = {floor_us:.2f} us/verify, bare login = {bare_ms:.3f} ms, requests seen = {requests_seen}")
    print_table(entries)
    return finish(output, "keycloak", entries, failures, started=now, requests_during_verify_loops=requests_seen)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
