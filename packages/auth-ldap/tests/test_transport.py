"""TLS, failures, timeouts, failover and recovery against real slapd processes."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest
from pydantic import SecretStr

from auth_ldap import LdapConfig, LdapProvider
from auth_ldap.testing import BlackHole, SlapdServer, free_port
from authcore import InvalidCredentials, PasswordCredentials, ProviderUnavailable

ALICE = PasswordCredentials(login="alice", password=SecretStr("alice-pw"))


@pytest.fixture
def make(configs: Any) -> Any:
    made: list[LdapProvider] = []

    def build(server: SlapdServer, **overrides: Any) -> LdapProvider:
        p = LdapProvider("ldap", LdapConfig.model_validate(configs[0](server, **overrides)))
        made.append(p)
        return p

    yield build
    for p in made:
        p.close()


# ------------------------------------------------------------------ TLS


def test_ldaps_with_the_fixture_ca(make: Any, slapd: SlapdServer) -> None:
    p = make(slapd, uri=slapd.ldaps_uri, ca_file=str(slapd.ca_file))
    assert p.authenticate(ALICE).login == "alice"
    conn = p._bind_pool._idle[0].conn
    assert conn.server.ssl and conn.socket.version().startswith("TLS")


def test_start_tls_with_the_fixture_ca(make: Any, slapd: SlapdServer) -> None:
    p = make(slapd, start_tls=True, ca_file=str(slapd.ca_file))
    assert p.authenticate(ALICE).login == "alice"
    for pool in (p._search_pool, p._bind_pool):
        assert pool is not None
        assert all(item.conn.tls_started for item in pool._idle)


def test_tls_binds_are_fast(make: Any, slapd: SlapdServer) -> None:
    """TCP_NODELAY: no 40 ms Nagle/delayed-ACK stall per request over TLS."""
    p = make(slapd, start_tls=True, ca_file=str(slapd.ca_file))
    p.authenticate(ALICE)
    start = time.perf_counter()
    for _ in range(20):
        p.authenticate(ALICE)
    assert (time.perf_counter() - start) / 20 < 0.03


@pytest.mark.parametrize("kind", ["ldaps", "starttls"])
def test_wrong_ca_fails_closed(make: Any, slapd: SlapdServer, kind: str) -> None:
    other = slapd.make_other_ca()
    overrides: dict[str, Any] = {"ca_file": str(other)}
    overrides.update({"uri": slapd.ldaps_uri} if kind == "ldaps" else {"start_tls": True})
    p = make(slapd, **overrides)
    with pytest.raises(ProviderUnavailable):
        p.authenticate(ALICE)
    assert not p.health().ok


def test_verification_is_on_by_default(make: Any, slapd: SlapdServer) -> None:
    """No CA file: the system CAs do not know the throwaway CA, so the connection is refused."""
    assert LdapConfig(uri="ldaps://x", base_dn="dc=x").tls_verify is True
    with pytest.raises(ProviderUnavailable):
        make(slapd, uri=slapd.ldaps_uri).authenticate(ALICE)
    # Switched off explicitly (refused under production: true), it connects.
    assert make(slapd, uri=slapd.ldaps_uri, tls_verify=False).authenticate(ALICE).login == "alice"


def test_production_refuses_tls_verify_off(slapd: SlapdServer, configs: Any) -> None:
    from authcore import AuthManager, ConfigError

    search_config, manager_config = configs
    config = manager_config(search_config(slapd, tls_verify=False), production=True)
    config["tokens"] = {"secret": "x9!Kq2@Lm4#Np6$Rs8%Tv0^Wy1&Za3*Bc5(De7)"}
    with pytest.raises(ConfigError, match="tls_verify"):
        AuthManager.from_config(config)


# ------------------------------------------------------------------ failures and timeouts


def test_server_down_is_unavailable_fast(make: Any, slapd: SlapdServer) -> None:
    p = make(slapd, uri=f"ldap://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        p.authenticate(ALICE)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("mode", ["search", "direct"])
def test_black_hole_is_unavailable_within_the_timeout(make: Any, slapd: SlapdServer, mode: str) -> None:
    overrides = {"user_dn_template": "uid={login},ou=people,dc=example,dc=org"} if mode == "direct" else {}
    with BlackHole() as hole:
        p = make(slapd, uri=hole.uri, timeout=0.5, connect_timeout=0.5, **overrides)
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            p.authenticate(ALICE)
        elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 1.5, elapsed


def test_paused_slapd_is_unavailable_within_the_timeout_then_recovers(make: Any, private_slapd: SlapdServer) -> None:
    p = make(private_slapd, timeout=0.5, failure_backoff=0)
    assert p.authenticate(ALICE).login == "alice"  # pooled connections exist now
    private_slapd.pause()
    try:
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            p.authenticate(ALICE)
        assert time.monotonic() - start < 1.5
    finally:
        private_slapd.resume()
    assert p.authenticate(ALICE).login == "alice"


def test_restart_mid_run_logins_succeed_again(make: Any, private_slapd: SlapdServer) -> None:
    p = make(private_slapd, failure_backoff=0.2)
    for _ in range(3):
        assert p.authenticate(ALICE).login == "alice"
    private_slapd.stop()
    with pytest.raises(ProviderUnavailable):
        p.authenticate(ALICE)
    private_slapd.start()
    time.sleep(0.25)
    for _ in range(5):  # pooled connections were dead: replaced without restarting anything
        assert p.authenticate(ALICE).login == "alice"
    # A restart while connections sit idle in the pool: the stale ones are detected and replaced.
    private_slapd.restart()
    assert p.authenticate(ALICE).login == "alice"
    with pytest.raises(InvalidCredentials):
        p.authenticate(PasswordCredentials(login="alice", password=SecretStr("nope-pw")))


def test_first_uri_down_every_login_served_by_the_second(make: Any, slapd: SlapdServer) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    p = make(slapd, uri=[dead, slapd.uri])
    for _ in range(50):
        assert p.authenticate(ALICE).login == "alice"
    for pool in (p._search_pool, p._bind_pool):
        assert pool is not None and pool._idle and all(item.server == 1 for item in pool._idle)
    assert p.health().extra["servers"][slapd.uri] == "up"


def test_black_holed_first_uri_costs_one_timeout_then_back_off(make: Any, slapd: SlapdServer) -> None:
    with BlackHole() as hole:
        p = make(slapd, uri=[hole.uri, slapd.uri], timeout=0.5, failure_backoff=30)
        start = time.monotonic()
        assert p.authenticate(ALICE).login == "alice"
        first = time.monotonic() - start
        start = time.monotonic()
        for _ in range(20):
            assert p.authenticate(ALICE).login == "alice"
        rest = time.monotonic() - start
    assert first < 1.5
    assert rest < 0.5, "the failed server is skipped during its back-off"


def test_fail_back_to_the_first_server(make: Any, private_slapd: SlapdServer, slapd: SlapdServer) -> None:
    """After the back-off, connections go to the first URI again."""
    # Direct bind: the two servers share alice's password, not their service passwords.
    direct = {"bind_dn": None, "bind_password": None, "user_dn_template": "uid={login},ou=people,dc=example,dc=org"}
    p = make(slapd, uri=[private_slapd.uri, slapd.uri], failure_backoff=0.2, **direct)
    private_slapd.stop()
    assert p.authenticate(ALICE).login == "alice"
    assert all(item.server == 1 for item in p._bind_pool._idle)
    private_slapd.start()
    time.sleep(0.3)
    assert p.authenticate(ALICE).login == "alice"
    assert all(item.server == 0 for item in p._bind_pool._idle)


def test_concurrent_logins_during_a_restart_recover(make: Any, private_slapd: SlapdServer) -> None:
    p = make(private_slapd, failure_backoff=0.1)
    stop = threading.Event()
    after: list[bool] = []

    def worker() -> None:
        while not stop.is_set():
            with contextlib.suppress(ProviderUnavailable):
                p.authenticate(ALICE)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    private_slapd.restart()
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    for _ in range(10):
        after.append(p.authenticate(ALICE).login == "alice")
    assert all(after)
