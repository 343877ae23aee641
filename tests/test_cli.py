"""The ``authcore`` command line, each command a real child process.

Exit codes: 0 ok, 1 authentication failed, 2 usage or configuration error. Tokens
issued by one process verify in the next (development secret and SQLite sessions in
``$AUTHCORE_STATE_DIR``); expected errors print a message, never a traceback; tokens
never reach standard error.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

# py-ispyb's documentation (the seed), verbatim: the dummy plugin enabled ...
SEED_AUTH_YML = """\
AUTH:
  - dummy:
      ENABLED: true
      AUTH_MODULE: "pyispyb.app.extensions.auth.DummyAuthentication"
      AUTH_CLASS: "DummyAuthentication"
"""

# ... and the same plugin, disabled, as the "List of plugins" section shows it.
SEED_AUTH_YML_DISABLED = """\
AUTH:
  - dummy: # /!\\/!\\/!\\ ONLY USE FOR TESTS /!\\/!\\/!\\
      ENABLED: false
      AUTH_MODULE: "pyispyb.app.extensions.auth.DummyAuthentication"
      AUTH_CLASS: "DummyAuthentication"
"""

NATIVE_YML = """\
providers:
  - name: dev
    type: dummy
"""

TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def write(tmp_path: Path):
    def write(text: str, name: str = "auth.yml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def seed_config(write) -> Path:
    return write(SEED_AUTH_YML)


def login(run_cli, config: Path, provider: str = "dummy", user: str = "test", password: str = "Admin"):
    return run_cli(
        "login",
        "--config",
        str(config),
        "--provider",
        provider,
        "--login",
        user,
        "--password-stdin",
        "--json",
        input=password + "\n",
    )


def assert_clean_failure(proc, code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert TRACEBACK not in proc.stderr, proc.stderr
    assert proc.stderr.strip(), "an error must say what went wrong"


# --------------------------------------------------------------------------- the happy path


def test_help_exits_zero(run_cli):
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("providers", "check", "login", "token", "logout"):
        assert command in proc.stdout


def test_version(run_cli):
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"authcore \d+\.\d+\.\d+\S*\n", proc.stdout), proc.stdout


def test_seed_login_verify_logout_verify(run_cli, seed_config: Path):
    """The acceptance path, with py-ispyb's own auth.yml: each step in a separate process."""
    before = time.time()
    proc = login(run_cli, seed_config)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["login"] == "test"
    assert result["permissions"] == ["Admin"]
    token, refresh_token = result["token"], result["refresh_token"]
    assert isinstance(token, str) and token.count(".") == 2
    assert isinstance(refresh_token, str) and refresh_token and refresh_token != token
    stderr = proc.stderr

    proc = run_cli("token", "verify", "--config", str(seed_config), "--json", token)
    assert proc.returncode == 0, proc.stderr
    verified = json.loads(proc.stdout)
    assert verified["login"] == "test"
    assert verified["provider"] == "dummy"
    assert verified["permissions"] == ["Admin"]
    assert before < verified["expires_at"] <= time.time() + 24 * 3600
    stderr += proc.stderr

    proc = run_cli("logout", "--config", str(seed_config), token)
    assert proc.returncode == 0, proc.stderr
    stderr += proc.stderr

    proc = run_cli("token", "verify", "--config", str(seed_config), "--json", token)
    assert_clean_failure(proc, 1)
    assert proc.stdout.strip() == "" or "login" not in proc.stdout
    stderr += proc.stderr

    proc = run_cli("logout", "--config", str(seed_config), token)
    assert_clean_failure(proc, 1)
    stderr += proc.stderr

    assert token not in stderr
    assert refresh_token not in stderr
    for segment in token.split("."):
        assert segment not in stderr


def test_native_config_and_token_from_stdin(run_cli, write):
    config = write(NATIVE_YML)
    proc = login(run_cli, config, provider="dev", user="alice", password="read,write")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["login"], result["permissions"]) == ("alice", ["read", "write"])
    # '-' reads the token from standard input: it never has to appear in argv.
    proc = run_cli("token", "verify", "--config", str(config), "--json", "-", input=result["token"] + "\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["login"] == "alice"
    proc = run_cli("logout", "--config", str(config), "-", input=result["token"] + "\n")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("token", "verify", "--config", str(config), "-", input=result["token"] + "\n")
    assert_clean_failure(proc, 1)
    assert result["token"] not in proc.stderr


def test_plain_output_has_no_token_on_stderr(run_cli, seed_config: Path):
    proc = run_cli(
        "login",
        "--config",
        str(seed_config),
        "--provider",
        "dummy",
        "--login",
        "test",
        "--password-stdin",
        input="Admin\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Admin" in proc.stdout
    tokens = re.findall(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}", proc.stdout)
    assert tokens, proc.stdout
    assert tokens[0] not in proc.stderr
    proc = run_cli("token", "verify", "--config", str(seed_config), tokens[0])
    assert proc.returncode == 0, proc.stderr
    assert "test" in proc.stdout


def test_token_from_another_state_dir_is_refused(run_cli, seed_config: Path, tmp_path: Path):
    """The development secret lives in AUTHCORE_STATE_DIR: another state dir, another secret."""
    token = json.loads(login(run_cli, seed_config).stdout)["token"]
    other = tmp_path / "other-state"
    proc = run_cli("token", "verify", "--config", str(seed_config), token, env={"AUTHCORE_STATE_DIR": str(other)})
    assert_clean_failure(proc, 1)
    assert token not in proc.stderr


def test_disabled_seed_example_is_a_config_error(run_cli, write):
    # Every AUTH entry ENABLED: false: nothing could log in, so it must not start or pass a check.
    config = write(SEED_AUTH_YML_DISABLED)
    for proc in (run_cli("check", "--config", str(config)), login(run_cli, config)):
        assert_clean_failure(proc, 2)
        assert f"{config}, line 1, at AUTH: every provider is disabled" in proc.stderr, proc.stderr


def test_empty_provider_list_is_a_config_error(run_cli, write):
    config = write("tokens:\n  issuer: me\nproviders: []\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert f"{config}, line 3, at providers: no provider is configured" in proc.stderr, proc.stderr


def test_check_reports_provider_health(run_cli, seed_config: Path):
    proc = run_cli("check", "--config", str(seed_config), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert "dummy" in report["providers"]


# --------------------------------------------------------------------------- failures: exit 1


@pytest.mark.parametrize("password", ["a b", "not a permission", ""])
def test_failed_login_exits_1(run_cli, seed_config: Path, password: str):
    proc = login(run_cli, seed_config, password=password)
    assert_clean_failure(proc, 1)
    assert proc.stdout.strip() == ""
    if password:
        assert password not in proc.stderr


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.",
        "a.b.c",
        "x" * 10000,
    ],
)
def test_garbage_tokens_exit_1(run_cli, seed_config: Path, token: str):
    proc = run_cli("token", "verify", "--config", str(seed_config), "--json", token)
    assert_clean_failure(proc, 1)
    assert token not in proc.stderr


# --------------------------------------------------------------------------- failures: exit 2


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frobnicate",),
        ("login",),
        ("login", "--config", "auth.yml"),
        ("token",),
        ("token", "verify", "--config", "auth.yml"),
        ("logout", "--config", "auth.yml"),
        ("providers", "--no-such-option"),
    ],
    ids=lambda a: " ".join(a) or "no-arguments",
)
def test_wrong_usage_exits_2(run_cli, seed_config: Path, args: tuple[str, ...]):
    proc = run_cli(*args)
    assert_clean_failure(proc, 2)


def test_missing_config_file_exits_2(run_cli, tmp_path: Path):
    missing = tmp_path / "nowhere.yml"
    proc = run_cli("check", "--config", str(missing))
    assert_clean_failure(proc, 2)
    assert "nowhere.yml" in proc.stderr


def test_unknown_provider_name_exits_2(run_cli, seed_config: Path):
    proc = login(run_cli, seed_config, provider="nope")
    assert_clean_failure(proc, 2)
    assert "nope" in proc.stderr


def test_duplicate_key_names_file_and_line(run_cli, write):
    config = write(
        "providers:\n"  # line 1
        "  - name: dummy\n"  # line 2
        "    type: dummy\n"  # line 3
        "    type: noauth\n"  # line 4: the duplicate
    )
    for args in (("check", "--config", str(config)), ("login", "--config", str(config), "--provider", "dummy")):
        proc = run_cli(*args, input="Admin\n")
        assert_clean_failure(proc, 2)
        assert "auth.yml" in proc.stderr
        assert re.search(r"\b4\b", proc.stderr), proc.stderr
        assert "type" in proc.stderr


def test_unknown_key_names_file_line_and_key(run_cli, write):
    config = write(
        "providers:\n"  # line 1
        "  - name: dummy\n"  # line 2
        "    config:\n"  # line 3
        "      token_login: robot\n"  # line 4
        "      colour: blue\n"  # line 5: not a dummy setting
    )
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert "auth.yml" in proc.stderr
    assert re.search(r"\b5\b", proc.stderr), proc.stderr
    assert "colour" in proc.stderr


def test_unknown_top_level_key(run_cli, write):
    config = write("providers:\n  - name: dummy\nsesions: {}\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert "auth.yml" in proc.stderr
    assert "sesions" in proc.stderr
    assert re.search(r"\b3\b", proc.stderr), proc.stderr


def test_unresolved_environment_variable(run_cli, write):
    config = write("tokens:\n  secret: ${AUTHCORE_TEST_UNSET_SECRET}\nproviders:\n  - name: dummy\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert "AUTHCORE_TEST_UNSET_SECRET" in proc.stderr
    assert "auth.yml" in proc.stderr


def test_python_yaml_tags_are_refused_and_not_executed(run_cli, write, tmp_path: Path):
    marker = tmp_path / "pwned"
    config = write(f"providers:\n  - name: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert not marker.exists()


def test_unknown_provider_type_lists_installed_types(run_cli, write):
    config = write("providers:\n  - name: corp\n    type: kerberos-nope\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    # "pip install auth-kerberos-nope" would fetch nothing, or a stranger's package, from the index.
    assert "pip install" not in proc.stderr
    assert "install the distribution that provides it" in proc.stderr
    assert "dummy" in proc.stderr  # the installed types are listed
    assert f"{config}, line 3, at providers[0].type" in proc.stderr


def test_mistyped_provider_type_suggests_the_installed_one(run_cli, write):
    config = write("providers:\n  - name: corp\n    type: dumy\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert "did you mean 'dummy'?" in proc.stderr, proc.stderr


def test_two_instances_with_one_name(run_cli, write):
    config = write("providers:\n  - name: dev\n    type: dummy\n  - name: dev\n    type: noauth\n")
    proc = run_cli("check", "--config", str(config))
    assert_clean_failure(proc, 2)
    assert "dev" in proc.stderr


def test_production_refuses_dummy(run_cli, write):
    config = write("production: true\ntokens:\n  secret: ${AUTHCORE_TEST_SECRET}\nproviders:\n  - name: dummy\n")
    proc = run_cli(
        "check", "--config", str(config), env={"AUTHCORE_TEST_SECRET": "Qm9v-x7T1pL2sZ8kW4nR6yH3cJ5vB0aE9dF"}
    )
    assert_clean_failure(proc, 2)
    assert "dummy" in proc.stderr
    assert "Qm9v-x7T1pL2sZ8kW4nR6yH3cJ5vB0aE9dF" not in proc.stderr


def test_login_prompts_for_the_password_without_echo(tmp_path, cli_process):
    """Without --password-stdin the password is asked for on the terminal, with echo off."""
    import os
    import pty
    import select

    config = tmp_path / "authcore.yml"
    config.write_text("providers:\n  - name: dummy\n")
    password = "read,write-secret"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a real terminal
        base, env = cli_process
        command = [*base, "login", "--config", str(config), "--provider", "dummy", "--login", "test"]
        os.execvpe(command[0], command, env)
    output = b""

    def read_until(marker: bytes, seconds: float = 30) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} in {output!r}"
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk

    read_until(b"password for test:")
    prompt_end = len(output)
    os.write(fd, password.encode() + b"\n")
    read_until(b"refresh token:")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    after_prompt = output[prompt_end:].decode()
    assert "logged in as test" in after_prompt
    echoed = after_prompt.split("logged in as test")[0]
    assert password not in echoed, "the password was echoed"


# --------------------------------------------------------------------------- check: health, warnings; serve's hint

UNHEALTHY_MODULE = """
from authcore import Health, Identity, Provider

class Down(Provider):
    type = "down"
    def authenticate(self, credentials):
        return Identity(login=credentials.login)
    def health(self):
        return Health(ok=False, detail="ldaps://ldap.example.org: invalid credentials for the service account")
"""


@pytest.mark.parametrize("as_json", [False, True])
def test_check_fails_on_an_unhealthy_provider_and_says_why(run_cli, write, tmp_path: Path, as_json: bool):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "down_auth.py").write_text(UNHEALTHY_MODULE)
    config = write("providers:\n  - name: dummy\n  - name: corp\n    class: down_auth:Down\n")
    args = ("check", "--config", str(config), *(("--json",) if as_json else ()))
    proc = run_cli(*args, env={"PYTHONPATH": str(modules)})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert TRACEBACK not in proc.stderr
    detail = "ldaps://ldap.example.org: invalid credentials for the service account"
    if as_json:
        report = json.loads(proc.stdout)
        assert report["ok"] is False
        assert report["providers"]["corp"] == {"ok": False, "detail": detail}
        assert report["providers"]["dummy"]["ok"] is True
    else:
        assert f"corp: UNHEALTHY: {detail}" in proc.stdout
    assert "unhealthy: 'corp'" in proc.stderr


def test_check_warns_about_a_secret_readable_by_others(run_cli, write):
    secret = "Qm9v-x7T1pL2sZ8kW4nR6yH3cJ5vB0aE9dF"
    config = write(f"tokens:\n  secret: {secret}\nproviders:\n  - name: dummy\n")
    config.chmod(0o644)
    proc = run_cli("check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert f"permissions 0644 for {str(config)!r} are too open: it holds tokens.secret" in proc.stderr
    assert secret not in proc.stderr + proc.stdout
    config.chmod(0o600)
    proc = run_cli("check", "--config", str(config))
    assert proc.returncode == 0 and "too open" not in proc.stderr, proc.stderr


def test_serve_without_the_server_extra_names_our_distribution(run_cli):
    # uvicorn made unimportable: the hint must pin our authcore, not the index's unrelated 0.1.x.
    blocked = "import sys; sys.modules['uvicorn'] = None; from authcore.cli import run; run()"
    proc = run_cli("serve", command=[sys.executable, "-c", blocked])
    assert_clean_failure(proc, 2)
    assert "pip install 'authcore[server]>=0.2'" in proc.stderr, proc.stderr


CONTRACT_YML = """\
tokens:
  secret: cli-second-factor-test-secret-0123456789abcdef0123456789abcdef
providers:
  - name: contract
    class: authcore.testing.contract_provider:ContractProvider
"""


def test_login_with_a_second_factor_enrols_and_reads_the_code(write, cli_process):
    """A user the policy requires to enrol: the command shows the key, reads the app's code from
    the next line of standard input and prints the tokens; a wrong code exits 1 with no token."""
    import subprocess

    from authcore.testing.contract_second_factor import totp_code

    command, env = cli_process
    config = write(CONTRACT_YML)
    args = [*command, "login", "--config", str(config), "--provider", "contract", "--login", "tess"]
    for right in (True, False):
        child = subprocess.Popen(
            [*args, "--password-stdin", "--json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("tesspw\n")
        child.stdin.flush()
        lines = [child.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("This account needs a second factor")
        secret, uri = lines[1].strip(), lines[2].strip()
        assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
        out, err = child.communicate((totp_code(secret) if right else "000000") + "\n", timeout=60)
        assert TRACEBACK not in err and secret not in err
        if right:
            assert child.returncode == 0, err
            assert json.loads(out[out.index("{") :])["login"] == "tess"
        else:
            assert child.returncode == 1 and "invalid login or password" in err and '"token"' not in out
