"""auth-oidc speed against panva's oidc-provider (npm), as ratios to floors measured in the same run.

* Bearer verification of an ``at+jwt`` access token the issuer signed (RS256), uncached
  (``OIDCProvider.verify_bearer``: the offline check and the identity mapping), against the RS256
  floor of ``_rs256.py``: split, strict base64url, ``json.loads``, cryptography's RSA PKCS#1 v1.5
  verify with a pre-loaded key, and the same claim checks (iss, exp/nbf/iat with leeway, the
  audience or client). Target <= 1.2x. The shared verifier alone (``JWTVerifier.claims``) is
  reported beside it. The provider's HTTP request counter must not move in the timed loops.
* Cached verification (``AuthManager.verify`` of a token seen before): under 1 us, held as
  <= 0.03x the RS256 floor so that it holds on a machine of any speed (see bench_keycloak).
* Introspection, cached hit (``verify_bearer`` of an opaque token introspected before): under
  2 us, held as <= 0.06x the same floor.

Usage: ``python benchmarks/bench_oidc.py [--quick] [results.json]``. Exits 1 if a target is missed.
"""

from __future__ import annotations

import binascii
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from _report import CPU_CLOCK, finish, interleave, missed_targets, output_path, print_table, ratio_entry, run_round
from _rs256 import make_floor
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_oidc import OIDCProvider
from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, USERS, OidcProviderServer, standard_client, standard_users
from auth_oidc.testing.flow import drive_login, pkce_pair
from authcore import AuthManager

QUICK = "--quick" in sys.argv[1:]
ROUNDS = 101 if QUICK else 301
CALLS = 50
LEEWAY = 10.0
REDIRECT_URI = "http://127.0.0.1/callback"


def _tokens(server: OidcProviderServer) -> dict[str, Any]:
    """One code flow (PKCE) through the login page; the token endpoint's answer."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email groups",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "nonce": "n",
    }
    metadata = httpx.get(server.discovery_url, timeout=10).json()
    with httpx.Client(follow_redirects=False) as browser:
        url = f"{metadata['authorization_endpoint']}?{httpx.QueryParams(query)}"
        callback = drive_login(browser, url, login="alice", password=USERS["alice"][0], redirect_uri=REDIRECT_URI)
        code = httpx.URL(callback).params["code"]
        answer = browser.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    answer.raise_for_status()
    tokens: dict[str, Any] = answer.json()
    return tokens


def _manager(server: OidcProviderServer) -> tuple[AuthManager, OIDCProvider]:
    config: dict[str, Any] = {
        "issuer": server.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "leeway": LEEWAY,
        "audience": [server.options.resource_audience or server.options.resource],
        "introspection_cache_ttl": 300,
    }
    manager = AuthManager.from_config(
        {
            "providers": [{"name": "corp", "type": "oidc", "config": config}],
            "permissions": {"groups": {"staff": ["beamline:operate"]}},
        }
    )
    provider = manager.provider("corp")
    assert isinstance(provider, OIDCProvider)
    return manager, provider


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code."""
    output = output_path(argv, "oidc")
    now = time.time()
    jwt_server = OidcProviderServer(clients=[standard_client()], users=standard_users(), access_token_format="jwt")
    opaque_server = OidcProviderServer(clients=[standard_client()], users=standard_users())
    with jwt_server, opaque_server:
        manager, provider = _manager(jwt_server)
        opaque_manager, opaque_provider = _manager(opaque_server)
        token = _tokens(jwt_server)["access_token"]
        opaque = _tokens(opaque_server)["access_token"]
        jwk = jwt_server.public_jwks["keys"][0]
        key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        floor = make_floor(
            key,
            issuer=jwt_server.issuer,
            client_claim="client_id",
            client_id=CLIENT_ID,
            audience=str(_manager_audience(provider)),
            typ=None,
            leeway=LEEWAY,
        )
        verifier = provider.issuer_keys().access

        # Every contender agrees, and the warm-up fetched the discovery document and the keys.
        bearer = provider.verify_bearer(token)
        assert bearer is not None and bearer.identity.login == "alice"
        assert floor(token)["sub"] == verifier.claims(token)["sub"]  # type: ignore[index]
        assert manager.verify(token).login == "alice"  # now cached
        assert opaque_provider.verify_bearer(opaque) is not None  # introspected, now cached

        contenders: dict[str, Callable[[str], Any]] = {
            "floor": floor,
            "verify_bearer": provider.verify_bearer,
            "claims": verifier.claims,
            "cached": manager.verify,
        }
        calls = {"floor": CALLS, "verify_bearer": CALLS, "claims": CALLS, "cached": CALLS * 4}
        before, opaque_before = provider.http.requests, opaque_provider.http.requests
        samples = interleave(
            {
                name: (lambda f=function, n=calls[name]: run_round(f, token, n, CPU_CLOCK))
                for name, function in contenders.items()
            }
            | {"introspected": lambda: run_round(opaque_provider.verify_bearer, opaque, CALLS * 4, CPU_CLOCK)},
            ROUNDS,
        )
        requests_seen = provider.http.requests - before
        # The introspection cache keeps an answer for introspection_cache_ttl (300 s here): a
        # run longer than that asks again, once, as it should.
        reintrospections = opaque_provider.http.requests - opaque_before
        manager.close()
        opaque_manager.close()
    entries = _entries(samples, calls, requests_seen)
    entries[-1]["note"] += f"; introspection requests during the run: {reintrospections}"
    return _report(output, entries, requests_seen, now)


def _int(value: str) -> int:
    return int.from_bytes(binascii.a2b_base64(value.replace("-", "+").replace("_", "/") + "=="), "big")


def _manager_audience(provider: OIDCProvider) -> str:
    return provider.config.audience[0]


def _entries(samples: dict[str, list[float]], calls: dict[str, int], requests_seen: int) -> list[dict[str, Any]]:
    floor_note = "CPU time; floor: inline cryptography RS256 verifier with the same claim checks"
    return [
        ratio_entry(
            "oidc verify_bearer at+jwt RS256 (uncached)",
            samples["verify_bearer"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=1.2,
            note=f"{ROUNDS} rounds x {CALLS} calls; {floor_note}; HTTP requests in the timed loops: {requests_seen}",
        ),
        ratio_entry(
            "authcore.jose JWTVerifier.claims (reference)",
            samples["claims"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=None,
            note=f"{ROUNDS} rounds x {CALLS} calls; {floor_note}",
        ),
        ratio_entry(
            "AuthManager.verify of a cached OIDC token",
            samples["cached"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=0.03,
            note=f"{ROUNDS} rounds x {calls['cached']} calls; target: under 1 us, as 0.03x the RS256 floor",
        ),
        ratio_entry(
            "oidc verify_bearer of an introspected opaque token (cached hit)",
            samples["introspected"],
            samples["floor"],
            unit="us",
            scale=1e6,
            target=0.06,
            note=f"{ROUNDS} rounds x {CALLS * 4} calls; target: under 2 us, as 0.06x the RS256 floor",
        ),
    ]


def _report(output: Any, entries: list[dict[str, Any]], requests_seen: int, started: float) -> int:
    failures = missed_targets(entries)
    if requests_seen:
        failures.append(f"{requests_seen} HTTP requests reached the issuer during the timed JWT loops")
    print(f"oidc: floor = {entries[0]['floor']:.2f} us/verify, requests seen = {requests_seen}")
    print_table(entries)
    return finish(output, "oidc", entries, failures, started=started, requests_during_timed_loops=requests_seen)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
