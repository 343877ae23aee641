"""Three ``authcore serve`` behind HAProxy on one Redis: the deployment of docs/deploy.md, over real HTTP.

One Redis (Debian's ``redis-server``, append-only file on), three ``authcore serve`` processes
started with the *same* configuration file (the default one but for the store: the dummy
provider, a fixed ``tokens.secret``, ``sessions.store: redis://…``, cookie sessions off), and
HAProxy (Debian's ``haproxy``, round robin, health checks on ``/healthz``) in front of them; all
on free loopback ports, stopped by pid. Which instance served a request is read from the
instances' own access logs, so "landed on a different instance" is observed, not assumed.

Every wait is a bounded poll. The one time bound that is asserted is the issue's: a logout (or a
detected refresh-token reuse) on one instance is refused by every instance within 1 s.

docs/deploy.md's own examples are checked too: its configuration file passes ``authcore check``'s
validation in production mode, its systemd unit ``systemd-analyze verify``, its HAProxy
configuration is run (TLS on a test certificate) in front of the cluster, and its compose file
(no container runtime here) is read for what it runs.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authcore.testing.haproxy import HAPROXY, Deployment, start_deployment, start_haproxy

#: The issue's bound: a revocation on one instance reaches every instance within this.
REVOCATION_BOUND = 1.0
#: A cap on polls that wait for something to happen at all (not a timed assertion).
POLL_BOUND = 30.0
#: Sessions opened before a fault, all checked after it.
SESSIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, child_env: Callable[..., dict[str, str]]) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("deploy")
    # Unbuffered: the access log lines are read while the instances run.
    env = child_env({"AUTHCORE_STATE_DIR": str(directory / "state"), "PYTHONUNBUFFERED": "1"})
    deployment = start_deployment(directory, instances=3, env=env)
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


# --------------------------------------------------------------------------- helpers


def login(http: httpx.Client, base: str, name: str) -> dict[str, Any]:
    answer = http.post(f"{base}/auth/login", json={"plugin": "dummy", "login": name, "password": "read"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["login"] == name
    return body


def me(http: httpx.Client, base: str, token: str) -> httpx.Response:
    return http.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {token}"})


def assert_is(http: httpx.Client, base: str, token: str, name: str) -> None:
    """The token verifies, as *name* (never as somebody else)."""
    answer = me(http, base, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["login"] == name


def refresh(http: httpx.Client, base: str, refresh_token: str) -> httpx.Response:
    return http.post(f"{base}/auth/refresh", json={"refresh_token": refresh_token})


def logout(http: httpx.Client, base: str, token: str) -> None:
    answer = http.post(f"{base}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204, answer.text


def served(cluster: Deployment, path: str) -> list[int]:
    """How many requests for *path* each instance's access log holds."""
    return [instance.log_text().count(f'"path": "{path}"') for instance in cluster.instances]


def served_by(cluster: Deployment, path: str, action: Callable[[], Any]) -> int:
    """Run *action* (one request for *path*) and return the index of the instance that served it."""
    before = served(cluster, path)
    action()
    deadline = time.monotonic() + POLL_BOUND
    while time.monotonic() < deadline:  # the access line is written right after the answer
        grown = [
            index for index, (now, then) in enumerate(zip(served(cluster, path), before, strict=True)) if now > then
        ]
        if grown:
            assert len(grown) == 1, f"one request for {path}, logged by instances {grown}"
            return grown[0]
        time.sleep(0.02)
    raise AssertionError(f"no instance logged the request for {path}")


def refused_everywhere_within(http: httpx.Client, cluster: Deployment, token: str, since: float) -> dict[str, int]:
    """Poll every instance until each refuses *token*, up to REVOCATION_BOUND after *since*;
    returns each instance's last status."""
    last: dict[str, int] = {}
    pending = set(cluster.urls())
    while pending:
        for url in sorted(pending):
            last[url] = me(http, url, token).status_code
            if last[url] == 401:
                pending.discard(url)
        if time.monotonic() - since > REVOCATION_BOUND:
            break
        time.sleep(0.02)
    return last


# --------------------------------------------------------------------------- the tests


def test_verify_refresh_and_logout_each_land_on_another_instance(cluster: Deployment, http: httpx.Client) -> None:
    first, second, third = cluster.urls()
    # Directly: log in through the balancer, then each step on a chosen instance.
    tokens = login(http, cluster.proxy.url, "alice")
    assert_is(http, first, tokens["token"], "alice")
    renewed = refresh(http, second, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    new = renewed.json()
    assert new["login"] == "alice" and new["refresh_token"] != tokens["refresh_token"]
    assert_is(http, third, new["token"], "alice")
    logout(http, third, new["token"])
    assert me(http, third, new["token"]).status_code == 401

    # Through the balancer: round robin sends the three steps to three different instances.
    tokens = login(http, cluster.proxy.url, "bob")
    where: dict[str, int] = {}
    where["verify"] = served_by(cluster, "/auth/me", lambda: assert_is(http, cluster.proxy.url, tokens["token"], "bob"))
    holder: dict[str, Any] = {}

    def do_refresh() -> None:
        answer = refresh(http, cluster.proxy.url, tokens["refresh_token"])
        assert answer.status_code == 200, answer.text
        holder.update(answer.json())

    where["refresh"] = served_by(cluster, "/auth/refresh", do_refresh)
    where["logout"] = served_by(cluster, "/auth/logout", lambda: logout(http, cluster.proxy.url, holder["token"]))
    assert len(set(where.values())) == 3, where
    for url in cluster.urls():
        assert me(http, url, holder["token"]).status_code == 401


def test_a_logout_on_one_instance_is_refused_by_every_instance_within_1s(
    cluster: Deployment, http: httpx.Client
) -> None:
    """The default configuration (no tuning of tokens.revocation_check_interval): the broadcast must do it."""
    tokens = login(http, cluster.proxy.url, "carol")
    for url in cluster.urls():  # every instance's verified-token cache now holds the token
        assert_is(http, url, tokens["token"], "carol")
    logout(http, cluster.urls()[0], tokens["token"])
    statuses = refused_everywhere_within(http, cluster, tokens["token"], time.monotonic())
    assert statuses == dict.fromkeys(cluster.urls(), 401), f"still accepted {REVOCATION_BOUND} s after the logout"


def test_a_refresh_reuse_on_one_instance_is_refused_by_every_instance_within_1s(
    cluster: Deployment, http: httpx.Client
) -> None:
    tokens = login(http, cluster.proxy.url, "dave")
    renewed = refresh(http, cluster.urls()[0], tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    current = renewed.json()["token"]
    for url in cluster.urls():
        assert_is(http, url, current, "dave")
    reused = refresh(http, cluster.urls()[1], tokens["refresh_token"])  # the spent one: reuse detected
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_token", reused.text
    statuses = refused_everywhere_within(http, cluster, current, time.monotonic())
    assert statuses == dict.fromkeys(cluster.urls(), 401), f"still accepted {REVOCATION_BOUND} s after the reuse"


def test_an_instance_killed_mid_run_loses_no_session(cluster: Deployment, http: httpx.Client) -> None:
    names = [f"kill-{index}" for index in range(SESSIONS)]
    sessions = {name: login(http, cluster.proxy.url, name) for name in names}
    victim = cluster.instances[1]
    victim.kill()
    try:
        # HAProxy keeps an idle connection to each instance; a request it sends on one in the
        # instant before it reads the reset is closed without an answer, passed on to the client
        # as a silent close (browsers retry those). Once it has dropped them, and before its
        # checks have marked the instance down, a request sent to the dead instance cannot
        # connect and is dispatched to another one, so nothing fails.
        cluster.proxy.wait_for_no_idle_connection(f"127.0.0.1:{victim.port}")
        for name, tokens in sessions.items():
            assert_is(http, cluster.proxy.url, tokens["token"], name)
        cluster.proxy.wait_for_states({f"127.0.0.1:{victim.port}": "DOWN"})
        for name, tokens in sessions.items():
            assert_is(http, cluster.proxy.url, tokens["token"], name)
            renewed = refresh(http, cluster.proxy.url, tokens["refresh_token"])
            assert renewed.status_code == 200, renewed.text
            sessions[name] = renewed.json()
            assert_is(http, cluster.proxy.url, sessions[name]["token"], name)
        assert_is(http, cluster.proxy.url, login(http, cluster.proxy.url, "late")["token"], "late")
    finally:
        cluster.replace(1)
    for name, tokens in sessions.items():  # the instance that came back knows them all
        assert_is(http, cluster.instances[1].url, tokens["token"], name)


def _login_while_redis_is_down(http: httpx.Client, cluster: Deployment) -> httpx.Response:
    return http.post(f"{cluster.proxy.url}/auth/login", json={"plugin": "dummy", "login": "erin", "password": "read"})


def _await_login(http: httpx.Client, cluster: Deployment) -> httpx.Response:
    """Log in through the balancer until it works again (bounded): the service reconnects by itself."""
    deadline = time.monotonic() + POLL_BOUND
    answer = _login_while_redis_is_down(http, cluster)
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = _login_while_redis_is_down(http, cluster)
    return answer


def test_redis_restarted_mid_run_loses_no_session(cluster: Deployment, http: httpx.Client) -> None:
    names = [f"restart-{index}" for index in range(SESSIONS)]
    sessions = {name: login(http, cluster.proxy.url, name) for name in names}
    cluster.redis.stop()
    try:
        down = _login_while_redis_is_down(http, cluster)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "session_store_unavailable"
        spent = refresh(http, cluster.proxy.url, sessions[names[0]]["refresh_token"])
        assert spent.status_code == 503, spent.text
    finally:
        cluster.redis.start()  # same port, same directory: the append-only file is read back
    assert _await_login(http, cluster).status_code == 200
    for name, tokens in sessions.items():  # the refresh refused with a 503 did not spend its token
        renewed = refresh(http, cluster.proxy.url, tokens["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["login"] == name
        for url in cluster.urls():
            assert_is(http, url, renewed.json()["token"], name)


def test_a_login_while_redis_is_down_says_the_session_store_is_unavailable(
    cluster: Deployment, http: httpx.Client
) -> None:
    """The 503's message names what is down (the session store), not the identity provider, which is fine."""
    cluster.redis.stop()
    try:
        down = _login_while_redis_is_down(http, cluster)
    finally:
        cluster.redis.start()
    assert down.status_code == 503, down.text
    assert "session store" in down.json()["detail"], down.json()
    assert _await_login(http, cluster).status_code == 200


# --------------------------------------------------------------------------- docs/deploy.md's examples

DEPLOY_DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def _fenced(language: str, holding: str) -> str:
    """The one top-level fenced block of *language* in docs/deploy.md that holds *holding*."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```", DEPLOY_DOC.read_text(), flags=re.M | re.S)
    found = [block for block in blocks if holding in block]
    assert len(found) == 1, f"docs/deploy.md holds {len(found)} {language} blocks with {holding!r}"
    return found[0]


def test_the_documented_configuration_is_valid_in_production(run_cli: Any, tmp_path: Path) -> None:
    """docs/deploy.md's configuration file, its signing key and servers replaced by a test key and
    unreachable loopback ports, passes ``authcore check``'s validation with ``production: true``
    (no weak secret, no development default): what is left to fail is the directory's health."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp_path / "signing.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    text = _fenced("yaml", "production: true")
    text, keys = re.subn(r"/etc/authcore/keys/\S+\.pem", str(key), text)
    text, hosts = re.subn(r"(redis|ldap)\.internal(:[0-9]+)?", "127.0.0.1:1", text)
    assert (keys, hosts) == (1, 2), "the documented configuration changed shape: update this test"
    config = tmp_path / "authcore.yml"
    config.write_text(text)
    config.chmod(0o600)
    env = {"REDIS_PASSWORD": "a-test-redis-password", "AUTHCORE_SSO_STATE_SECRET": "s" * 48}
    checked = run_cli("check", "--config", str(config), "--json", env=env)
    assert checked.returncode == 1, checked.stdout + checked.stderr  # 2 would be a configuration error
    assert json.loads(checked.stdout)["providers"]["site-ldap"]["ok"] is False


def test_the_documented_systemd_unit_verifies(cli_process: tuple[list[str], dict[str, str]], tmp_path: Path) -> None:
    """docs/deploy.md's unit file, its program and secrets file at this machine's paths, passes
    ``systemd-analyze verify`` without a word: every directive known and well formed, the
    program executable."""
    command, _env = cli_process
    secrets = tmp_path / "secrets.env"
    secrets.write_text("REDIS_PASSWORD=a-test-redis-password\n")
    text, programs = re.subn(r"/opt/authcore/bin/authcore", " ".join(command), _fenced("ini", "[Service]"))
    text, files = re.subn(r"/etc/authcore/secrets\.env", str(secrets), text)
    assert (programs, files) == (1, 1), "the documented unit changed shape: update this test"
    unit = tmp_path / "authcore@.service"
    unit.write_text(text)
    verified = subprocess.run(
        ["/usr/bin/systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), verified.stderr


def test_the_documented_haproxy_configuration_serves_the_cluster(
    cluster: Deployment, http: httpx.Client, tmp_path: Path
) -> None:
    """docs/deploy.md's HAProxy configuration, run as written but for its addresses: TLS
    terminated with a test certificate on a loopback port, the three servers the cluster's.
    HAProxy accepts it, a login and a verify go through it over HTTPS, and round robin spreads
    requests over the instances."""
    from authcore.testing.servers import free_port
    from authcore.testing.tls import make_test_ca

    tls = make_test_ca(tmp_path / "tls")
    pem = tmp_path / "auth.pem"  # HAProxy's crt: the certificate and its key in one file
    pem.write_bytes(tls.certificate.read_bytes() + tls.key.read_bytes())
    port = free_port()
    documented = _fenced("haproxy", "backend authcore")
    config, binds = re.subn(r"bind :443 ssl crt \S+", f"bind 127.0.0.1:{port} ssl crt {pem}", documented)
    addresses = iter(url.removeprefix("http://") for url in cluster.urls())
    config, servers = re.subn(r"127\.0\.0\.1:800[1-3]", lambda _: next(addresses), config)
    assert (binds, servers) == (1, 3), "the documented configuration changed shape: update this test"
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with (tmp_path / "haproxy.log").open("wb") as log:
        process = subprocess.Popen([HAPROXY, "-f", str(path), "-db"], stdout=log, stderr=subprocess.STDOUT)
    base = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10, verify=ssl.create_default_context(cafile=tls.ca_file)) as tls_http:
            deadline = time.monotonic() + POLL_BOUND
            while True:  # a bounded wait for HAProxy to listen and find its servers up
                try:
                    if tls_http.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
                time.sleep(0.05)
            token = login(tls_http, base, "documented")["token"]
            landed = {served_by(cluster, "/auth/me", lambda: assert_is(tls_http, base, token, "documented"))}
            for _ in range(3):
                landed.add(served_by(cluster, "/auth/me", lambda: assert_is(tls_http, base, token, "documented")))
        assert len(landed) > 1, landed
    finally:
        process.terminate()
        process.wait(10)


def test_the_documented_compose_file_runs_what_the_page_says() -> None:
    """docs/deploy.md's compose file (no container runtime here to start it): its three instances
    install extras authcore declares and run ``authcore serve`` alike (the command's flags are
    checked with every other command line of the docs, tests/test_docs_examples.py), and its
    Redis keeps its append-only file and asks for a password."""
    import tomllib

    import yaml

    compose = yaml.safe_load(_fenced("yaml", "services:"))
    services = compose["services"]
    assert {"redis", "authcore-1", "authcore-2", "authcore-3", "haproxy"} <= set(services)
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert "--requirepass" in redis_command
    pyproject = tomllib.loads((DEPLOY_DOC.parents[1] / "packages/authcore/pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    for name in ("authcore-1", "authcore-2", "authcore-3"):
        command = services[name]["command"]
        wanted = re.search(r"'authcore\[([a-z,]+)\]", command)
        assert wanted is not None and set(wanted[1].split(",")) <= extras, command
        assert "exec authcore serve --config" in command, command
        assert (command, services[name]["volumes"]) == (
            services["authcore-1"]["command"],
            services["authcore-1"]["volumes"],
        )


# --------------------------------------------------------------------------- the test kit's own refusals


def test_a_missing_haproxy_is_an_error_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authcore.testing import haproxy

    monkeypatch.setattr(haproxy, "HAPROXY", str(tmp_path / "no-such-haproxy"))
    with pytest.raises(RuntimeError, match="apt-get install haproxy"):
        haproxy.start_haproxy(tmp_path, ["http://127.0.0.1:1"])


@pytest.mark.parametrize("backend", ["https://127.0.0.1:8000", "http://127.0.0.1", "http://127.0.0.1:8000/auth"])
def test_a_backend_is_a_plain_http_host_and_port(tmp_path: Path, backend: str) -> None:
    with pytest.raises(ValueError, match="a backend is http://host:port"):
        start_haproxy(tmp_path, [backend])
