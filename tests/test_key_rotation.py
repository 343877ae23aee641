"""docs/deploy.md's signing-key rotation, followed step by step on two ``authcore serve`` sharing one Redis.

The keys are made with the page's own ``openssl`` lines and the instances read the page's own
``tokens`` blocks (their key paths moved to the test's directory). Each step is rolled out one
instance at a time, so at every moment the two instances run neighbouring steps side by side,
as in a rolling restart behind a balancer. Checked at each moment: every access token either
instance has handed out verifies on both, and the one session begun before the rotation goes on
refreshing (nobody is logged out). After the last step, tokens signed with the old key are
refused and the session still refreshes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from authcore.testing.redis_server import RedisServer, start_redis
from authcore.testing.service_process import ServiceProcess, start_service

DEPLOY_DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
DOC_KEYS = "/etc/authcore/keys/"
OLD, NEW = "signing-2026-11", "signing-2027-05"


def _rotation_blocks(language: str) -> list[str]:
    """The fenced blocks of *language* in the page's rotation section (indented in its list), dedented."""
    text = DEPLOY_DOC.read_text()
    section = text[text.index("## Rotating the signing key") :]
    section = section[: section.index("\n## ", 1)]
    found = re.findall(rf"^( *)```{language}\n(.*?)^\1```", section, flags=re.M | re.S)
    return [textwrap.dedent(block) for _indent, block in found]


def _make_keys(directory: Path) -> None:
    """Run the page's ``openssl`` lines as written for the new key, and again for the old one."""
    (lines,) = _rotation_blocks("sh")
    commands = [shlex.split(line) for line in lines.splitlines() if line.strip()]
    assert commands and all(command[0] in ("openssl", "chmod") for command in commands), commands
    for name in (NEW, OLD):
        for command in commands:
            argv = [word.replace(NEW, name) for word in command]
            if argv[0] == "openssl":
                argv[0] = "/usr/bin/openssl"
            subprocess.run(argv, cwd=directory, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


class Instance:
    """One ``authcore serve`` slot whose configuration is changed by a restart (stop, start anew)."""

    def __init__(self, name: str, directory: Path, env: dict[str, str]) -> None:
        self.name, self.directory, self.env = name, directory, env
        self.process: ServiceProcess | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        assert self.process is not None
        return self.process.url

    def restart(self, config: dict[str, Any]) -> None:
        self.stop()
        self.starts += 1
        path = self.directory / f"{self.name}-{self.starts}.yml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        self.process = start_service(path, env=self.env)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def test_the_documented_rotation_logs_nobody_out(
    redis_server: RedisServer, tmp_path: Path, child_env: Callable[..., dict[str, str]]
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    _make_keys(keys)
    step1, step2 = (yaml.safe_load(block.replace(DOC_KEYS, f"{keys}/"))["tokens"] for block in _rotation_blocks("yaml"))
    assert step1["private_key_file"].endswith(f"{OLD}.pem") and step2["private_key_file"].endswith(f"{NEW}.pem")
    before = {"private_key_file": f"{keys}/{OLD}.pem", "public_key_files": []}
    step3 = {**step2, "public_key_files": []}  # "drop it from public_key_files"

    def config(tokens: dict[str, Any]) -> dict[str, Any]:
        return {
            "tokens": {"algorithm": "ES256", **tokens},
            "sessions": {"store": redis_server.url},
            "providers": [{"name": "dummy", "type": "dummy"}],
            "web": {"cookie_session": False},
        }

    env = child_env({"AUTHCORE_STATE_DIR": str(tmp_path / "state")})
    a, b = Instance("a", tmp_path, env), Instance("b", tmp_path, env)
    issued: list[str] = []  # every access token handed out, oldest first
    http = httpx.Client(timeout=10)

    def verifies_everywhere() -> None:
        for token in issued:
            for instance in (a, b):
                answer = http.get(f"{instance.url}/auth/me", headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 200, (instance.name, answer.text)

    def refreshed_on(instance: Instance) -> None:
        nonlocal refresh_token
        answer = http.post(f"{instance.url}/auth/refresh", json={"refresh_token": refresh_token})
        assert answer.status_code == 200, (instance.name, answer.text)  # the session goes on
        issued.append(answer.json()["token"])
        refresh_token = answer.json()["refresh_token"]

    try:
        a.restart(config(before))
        b.restart(config(before))
        answer = http.post(f"{a.url}/auth/login", json={"plugin": "dummy", "login": "ada", "password": "read"})
        assert answer.status_code == 200, answer.text
        issued.append(answer.json()["token"])
        refresh_token = answer.json()["refresh_token"]
        old_kids = _kids(http, a.url)

        for step in (step1, step2):  # each rolled out one instance at a time
            for instance in (a, b):
                instance.restart(config(step))
                verifies_everywhere()
                refreshed_on(a)
                refreshed_on(b)
                verifies_everywhere()
            if step is step1:  # published before it signs anything
                assert len(_kids(http, a.url)) == 2 and old_kids < _kids(http, a.url)

        signed_old = [token for token in issued if _kid(token) in old_kids]
        signed_new = [token for token in issued if _kid(token) not in old_kids]
        assert signed_old and signed_new
        for instance in (a, b):
            instance.restart(config(step3))
        for token in signed_old:
            assert http.get(f"{a.url}/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        issued[:] = signed_new
        refreshed_on(b)
        verifies_everywhere()
        assert _kids(http, b.url).isdisjoint(old_kids)
    finally:
        http.close()
        a.stop()
        b.stop()


def _kids(http: httpx.Client, base: str) -> set[str]:
    answer = http.get(f"{base}/.well-known/jwks.json")
    assert answer.status_code == 200, answer.text
    return {key["kid"] for key in answer.json()["keys"]}


def _kid(token: str) -> str:
    import base64
    import json

    header = token.split(".", 1)[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid
