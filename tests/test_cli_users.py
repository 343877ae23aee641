"""``authcore users ...``: each command a real ``authcore`` child process, against auth-local on an
SQLite file and auth-ldap on a real slapd (a missing slapd fails, never skips).

Exit codes: 0 done, 1 refused (no such user, exists), 2 usage, configuration or invalid input.
No password ever reaches standard output or standard error.
"""

from __future__ import annotations

import json
import os
import pty
import select
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth_ldap.pytest_plugin import start_slapd
from auth_ldap.testing import SlapdServer
from authcore import AuthManager, Identity

#: argon2 parameters that keep these tests quick (the defaults cost ~50 ms a hash).
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase here"
TRACEBACK = "Traceback (most recent call last)"

Users = Callable[..., Any]


def write_config(directory: Path, config: dict[str, Any], name: str = "auth.yml") -> Path:
    """*config* as a private file (JSON is YAML): a secret in a readable file would be warned about."""
    path = directory / name
    path.write_text(json.dumps(config), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def local_config(tmp_path: Path, *names: str) -> dict[str, Any]:
    """Local providers on SQLite files, and an SQLite session store every process shares."""
    return {
        "tokens": {"secret": "a-test-secret-that-is-long-enough-0123456789abcdef"},
        "sessions": {"store": f"sqlite:///{tmp_path / 'sessions.db'}"},
        "providers": [
            {
                "name": name,
                "type": "local",
                "config": {"database_url": f"sqlite:///{tmp_path / name}.db", **FAST_ARGON2},
            }
            for name in names or ("site",)
        ],
        "permissions": {"groups": {"staff": ["own_proposals"], "admins": ["users:admin"]}},
    }


class Cli:
    """``authcore`` on one configuration; remembers every output to check that no password leaked."""

    def __init__(self, run_cli: Any, config: Path) -> None:
        self.run_cli, self.config = run_cli, str(config)
        self.outputs: list[str] = []

    def run(self, *args: str, input: str | None = None) -> Any:
        proc = self.run_cli(*args, input=input)
        self.outputs += [proc.stdout, proc.stderr]
        assert TRACEBACK not in proc.stderr, proc.stderr
        return proc

    def users(self, command: str, *args: str, input: str | None = None, json_out: bool = True) -> Any:
        flags = ["--json"] if json_out else []
        return self.run("users", command, "--config", self.config, *flags, *args, input=input)

    def ok(self, command: str, *args: str, input: str | None = None) -> Any:
        proc = self.users(command, *args, input=input)
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)

    def fails(self, code: int, command: str, *args: str, input: str | None = None) -> str:
        proc = self.users(command, *args, input=input)
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        assert proc.stderr.strip() and not proc.stdout.strip(), (proc.stdout, proc.stderr)
        return str(proc.stderr)

    def login(self, provider: str, login: str, password: str) -> Any:
        return self.run(
            "login", "--config", self.config, "--provider", provider, "--login", login,
            "--password-stdin", "--json", input=password + "\n",
        )  # fmt: skip

    def verify(self, token: str) -> Any:
        return self.run("token", "verify", "--config", self.config, "-", input=token + "\n")

    def assert_never_shown(self, *secrets: str) -> None:
        for secret in secrets:
            assert not any(secret in output for output in self.outputs), f"{secret[:3]}... appeared in the output"


@pytest.fixture
def cli(run_cli: Any, tmp_path: Path) -> Cli:
    """The CLI on one local provider ``site``."""
    return Cli(run_cli, write_config(tmp_path, local_config(tmp_path)))


# --------------------------------------------------------------------------- auth-local


def test_every_command_on_local(cli: Cli) -> None:
    # A password on stdin with its trailing newline: the newline is not part of it (the login below proves it).
    created = cli.ok("create", "alice", "--given-name", "Alice", "--email", "a@example.org", "--role", "staff",
                     "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    assert created["login"] == created["client_id"] == "alice"
    assert created["groups"] == ["staff"] and created["attributes"]["enabled"] is True
    assert (created["given_name"], created["email"]) == ("Alice", "a@example.org")
    assert cli.login("site", "alice", PASSWORD).returncode == 0
    cli.ok("create", "bob", "--no-password")
    assert cli.login("site", "bob", "").returncode != 0  # no password: cannot log in yet

    listed = cli.ok("list")
    assert [u["login"] for u in listed["users"]] == ["alice", "bob"]
    assert [u["login"] for u in cli.ok("list", "--search", "ALI")["users"]] == ["alice"]
    assert [u["login"] for u in cli.ok("list", "--limit", "1", "--offset", "1")["users"]] == ["bob"]
    assert cli.ok("get", "alice")["email"] == "a@example.org"

    updated = cli.ok("update", "alice", "--family-name", "Liddell", "--display-name", "Alice L.")
    assert (updated["family_name"], updated["display_name"], updated["given_name"]) == ("Liddell", "Alice L.", "Alice")
    assert cli.ok("roles", "alice", "--add", "admins", "ops") == {"ok": True, "login": "alice", "provider": "site"}
    assert set(cli.ok("get", "alice")["groups"]) == {"staff", "admins", "ops"}
    cli.ok("roles", "alice", "--remove", "ops", "staff")
    assert cli.ok("get", "alice")["groups"] == ["admins"]

    cli.ok("set-password", "alice", "--password-stdin", input=NEW_PASSWORD + "\r\n")
    assert cli.login("site", "alice", PASSWORD).returncode == 1
    assert cli.login("site", "alice", NEW_PASSWORD).returncode == 0

    cli.ok("disable", "alice")
    assert cli.ok("get", "alice")["attributes"]["enabled"] is False
    assert cli.login("site", "alice", NEW_PASSWORD).returncode == 1
    cli.ok("enable", "alice")
    assert cli.login("site", "alice", NEW_PASSWORD).returncode == 0

    assert cli.ok("delete", "bob", "--yes") == {"ok": True, "login": "bob", "provider": "site"}
    assert "no such user" in cli.fails(1, "get", "bob")
    cli.assert_never_shown(PASSWORD, NEW_PASSWORD)


def test_text_output(cli: Cli) -> None:
    cli.ok("create", "carol", "--given-name", "Carol", "--role", "staff", "--no-password")
    listing = cli.users("list", json_out=False)
    assert listing.returncode == 0 and listing.stdout.splitlines() == ["carol\tCarol\t\tenabled\tstaff", "(1 users)"]
    shown = cli.users("get", "carol", json_out=False).stdout
    assert "login: carol" in shown and "roles: staff" in shown and "enabled: yes" in shown
    assert cli.users("disable", "carol", json_out=False).stdout == "disabled carol (provider site)\n"


def test_exit_codes(cli: Cli, run_cli: Any, tmp_path: Path) -> None:
    cli.ok("create", "dave", "--no-password")
    assert "no such user" in cli.fails(1, "get", "ghost")
    cli.fails(1, "disable", "ghost")
    cli.fails(1, "roles", "ghost", "--add", "staff")
    assert "exists" in cli.fails(1, "create", "dave", "--no-password")
    assert "no enabled provider named 'nope'" in cli.fails(2, "get", "dave", "--provider", "nope")
    assert "nothing to change" in cli.fails(2, "update", "dave")
    # No terminal to ask on: refused, nothing done.
    assert "--yes" in cli.fails(2, "delete", "dave")
    assert cli.ok("get", "dave")["login"] == "dave"
    assert "--password-stdin" in cli.fails(2, "create", "erin")
    assert "--password-stdin" in cli.fails(2, "set-password", "dave")
    cli.fails(1, "get", "erin")  # erin was never created
    cli.fails(2, "list", "--limit", "ten")
    cli.fails(2, "list", "--offset", "²")
    cli.fails(2, "roles", "dave")  # --add or --remove is required
    missing = Cli(run_cli, tmp_path / "missing.yml")
    assert missing.users("list").returncode == 2
    bare = run_cli("users")
    assert bare.returncode == 2 and "choose a command" in bare.stderr


def test_the_provider_is_chosen_or_asked_for(run_cli: Any, tmp_path: Path) -> None:
    two = Cli(run_cli, write_config(tmp_path, local_config(tmp_path, "one", "two"), "two.yml"))
    assert "providers with user management: one, two" in two.fails(2, "list")
    assert two.ok("create", "x", "--no-password", "--provider", "two")["login"] == "x"
    assert two.ok("list", "--provider", "one") == {"users": []}
    dummy = {"tokens": {"secret": "s" * 48}, "providers": [{"name": "dev", "type": "dummy"}]}
    only_dummy = Cli(run_cli, write_config(tmp_path, dummy, "dummy.yml"))
    assert "providers with user management: none" in only_dummy.fails(2, "list")
    assert "does not support" in only_dummy.fails(2, "list", "--provider", "dev")


def test_hostile_input(cli: Cli) -> None:
    unicode_login = "zoë.测试-Ω"
    assert cli.ok("create", unicode_login, "--given-name", "Zoë 🙂", "--password-stdin", input=PASSWORD)["login"] == (
        unicode_login
    )
    assert cli.ok("get", unicode_login)["given_name"] == "Zoë 🙂"
    assert unicode_login in cli.users("list", json_out=False).stdout
    assert cli.login("site", unicode_login, PASSWORD).returncode == 0  # no newline at all on stdin: fine too

    huge = "N" * 100_000
    message = cli.fails(2, "create", "huge", "--given-name", huge, "--no-password")
    assert huge[:300] not in message and len(message) < 2000
    cli.fails(2, "create", "L" * 300, "--no-password")  # a login is at most 256 characters
    cli.fails(2, "update", unicode_login, "--email", "e" * 400)
    cli.fails(2, "create", "esc\x1b[31mape", "--no-password")  # no control characters in a login
    cli.fails(1, "get", "esc\x1b[31mape")  # ... and none is found
    cli.fails(2, "roles", unicode_login, "--add", " padded ")
    assert cli.ok("list", "--search", "%")["users"] == []  # a LIKE wildcard is text
    assert cli.ok("list", "--search", "_")["users"] == []

    # Passwords: NUL, empty, too short or common (the policy), too long; never echoed.
    nul = "pass\x00word-long-enough"
    cli.fails(2, "set-password", unicode_login, "--password-stdin", input=nul + "\n")
    assert "no password" in cli.fails(2, "set-password", unicode_login, "--password-stdin", input="")
    assert "no password" in cli.fails(2, "set-password", unicode_login, "--password-stdin", input="\n")
    assert "12 characters" in cli.fails(2, "set-password", unicode_login, "--password-stdin", input="short-pw\n")
    cli.fails(2, "create", "weak", "--password-stdin", input="password1234\n")
    long_password = "p" * 5000
    cli.fails(2, "set-password", unicode_login, "--password-stdin", input=long_password + "\n")
    assert cli.login("site", unicode_login, PASSWORD).returncode == 0  # still the first one
    cli.assert_never_shown(PASSWORD, nul, "short-pw", "password1234", long_password[:200])


def test_disabling_ends_sessions_in_every_process(cli: Cli) -> None:
    cli.ok("create", "frank", "--role", "staff", "--password-stdin", input=PASSWORD + "\n")
    first = json.loads(cli.login("site", "frank", PASSWORD).stdout)
    second = json.loads(cli.login("site", "frank", PASSWORD).stdout)
    assert cli.verify(first["token"]).returncode == 0
    sessions = cli.ok("sessions", "frank")["sessions"]
    assert len(sessions) == 2 and {s["login"] for s in sessions} == {"frank"}
    assert set(sessions[0]) == {
        "session_id",
        "login",
        "provider",
        "created_at",
        "last_used_at",
        "expires_at",
        "current",
    }
    assert first["token"] not in json.dumps(sessions) and first["refresh_token"] not in json.dumps(sessions)

    cli.ok("disable", "frank")
    for token in (first["token"], second["token"]):
        refused = cli.verify(token)
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert cli.ok("sessions", "frank") == {"sessions": []}

    cli.ok("enable", "frank")
    third = json.loads(cli.login("site", "frank", PASSWORD).stdout)
    assert cli.ok("sessions", "frank", "--end") == {"ok": True, "login": "frank", "provider": "site", "ended": 1}
    assert cli.verify(third["token"]).returncode == 1

    fourth = json.loads(cli.login("site", "frank", PASSWORD).stdout)
    cli.ok("delete", "frank", "--yes")
    assert cli.verify(fourth["token"]).returncode == 1
    cli.assert_never_shown(PASSWORD)
    tokens = [t[k] for t in (first, second, third, fourth) for k in ("token", "refresh_token")]
    assert not any(token in output for output in cli.outputs[1::2] for token in tokens)  # not in stderr


def test_set_password_ends_every_session_of_the_user(cli: Cli, run_cli: Any) -> None:
    """An administrator replaces a lost or leaked password: whoever signed in with the old one is out,
    on every device and every personal access token (the session store is an SQLite file all share)."""
    cli.ok("create", "hana", "--role", "staff", "--password-stdin", input=PASSWORD + "\n")
    cli.ok("create", "ivan", "--role", "staff", "--password-stdin", input=PASSWORD + "\n")
    devices = [json.loads(cli.login("site", "hana", PASSWORD).stdout)["token"] for _ in range(2)]
    bystander = json.loads(cli.login("site", "ivan", PASSWORD).stdout)["token"]
    with AuthManager.from_file(cli.config) as manager:  # a script's token, issued in this process
        pat, _record = manager.issue_personal_token(Identity(login="hana", provider="site"), lifetime=3600)
    assert all(cli.verify(token).returncode == 0 for token in [*devices, pat])

    done = cli.ok("set-password", "HANA", "--password-stdin", input=NEW_PASSWORD + "\n")  # any spelling
    assert done == {"ok": True, "login": "HANA", "provider": "site", "ended": 3}
    assert [cli.verify(token).returncode for token in [*devices, pat]] == [1, 1, 1]
    assert cli.verify(bystander).returncode == 0  # another user's session is left alone
    assert cli.login("site", "hana", NEW_PASSWORD).returncode == 0
    text = cli.users("set-password", "ivan", "--password-stdin", input=NEW_PASSWORD + "\n", json_out=False)
    assert text.stdout == "password set for ivan (provider site): 1 ended\n"
    assert "end every session" in run_cli("users", "--help").stdout
    cli.assert_never_shown(PASSWORD, NEW_PASSWORD, pat)


# --------------------------------------------------------------------------- auth-ldap


@pytest.fixture(scope="module")
def ldap_server() -> Iterator[SlapdServer]:
    """One slapd of this module's own (the tests write to it, each to logins of its own)."""
    server = start_slapd()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ldap_cli(run_cli: Any, tmp_path: Path, ldap_server: SlapdServer) -> Iterator[Cli]:
    """The CLI on an ldap provider with the writer account (read packages/lowball-authcore/tests/conftest.py)."""
    server = ldap_server
    provider = server.provider_config(writer=True, timeout=5, connect_timeout=5)
    config = {
        "tokens": {"secret": "a-test-secret-that-is-long-enough-0123456789abcdef"},
        "sessions": {"store": f"sqlite:///{tmp_path / 'sessions.db'}"},
        "providers": [{"name": "ldap", "type": "ldap", "config": provider}],
        "permissions": {"groups": {"admins": ["admin"], "staff": ["own_proposals"]}},
    }
    cli = Cli(run_cli, write_config(tmp_path, config))
    yield cli
    cli.assert_never_shown(server.writer_password, server.reader_password)


def test_every_command_on_ldap(ldap_cli: Cli) -> None:
    cli = ldap_cli
    alice = cli.ok("get", "alice")
    assert set(alice["groups"]) >= {"admins", "staff"} and alice["attributes"]["enabled"] is True
    assert [u["login"] for u in cli.ok("list", "--search", "Doe, John")["users"]] == ["john.doe"]
    assert len(cli.ok("list", "--limit", "3", "--offset", "2")["users"]) == 3

    login = "new, user+1 ü"
    created = cli.ok("create", login, "--given-name", "New", "--family-name", "User", "--email", "n@example.org",
                     "--role", "staff", "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    assert created["login"] == login and created["groups"] == ["staff"]
    assert "exists" in cli.fails(1, "create", login, "--no-password")
    token = json.loads(cli.login("ldap", login, PASSWORD).stdout)["token"]
    assert cli.verify(token).returncode == 0

    assert cli.ok("update", login, "--display-name", "Renamed")["display_name"] == "Renamed"
    cli.ok("roles", login, "--add", "admins")
    assert set(cli.ok("get", login)["groups"]) == {"admins", "staff"}
    cli.ok("roles", login, "--remove", "admins")
    assert "no group 'no-such-group'" in cli.fails(1, "roles", login, "--add", "no-such-group")

    assert cli.ok("set-password", login, "--password-stdin", input=NEW_PASSWORD + "\n")["ended"] == 1
    assert cli.verify(token).returncode == 1  # the session of the old password ended with it
    assert cli.login("ldap", login, PASSWORD).returncode == 1
    token = json.loads(cli.login("ldap", login, NEW_PASSWORD).stdout)["token"]
    assert len(cli.ok("sessions", login)["sessions"]) == 1

    cli.ok("disable", login)  # the directory locks the entry, the core ends the sessions
    assert cli.verify(token).returncode == 1
    assert cli.login("ldap", login, NEW_PASSWORD).returncode == 1
    cli.ok("enable", login)
    assert cli.login("ldap", login, NEW_PASSWORD).returncode == 0
    cli.ok("delete", login, "--yes")
    assert "no user" in cli.fails(1, "get", login)
    cli.assert_never_shown(PASSWORD, NEW_PASSWORD)


def test_hostile_input_on_ldap(ldap_cli: Cli) -> None:
    cli = ldap_cli
    assert cli.ok("get", "zoë")["login"] == "zoë"
    for name in ("a*", "*", "(uid=*)", "alice)(uid=*"):  # filter syntax is text, never a wildcard
        cli.fails(1, "get", name)
    assert cli.ok("list", "--search", "*")["users"] == []
    cli.fails(2, "create", "huge", "--given-name", "N" * 100_000, "--no-password")
    nul = "pass\x00word"
    cli.fails(2, "set-password", "bob", "--password-stdin", input=nul + "\n")
    cli.fails(2, "set-password", "bob", "--password-stdin", input="")
    assert cli.login("ldap", "bob", "bob-pw").returncode == 0
    cli.assert_never_shown(nul)


# --------------------------------------------------------------------------- on a terminal


def on_terminal(cli: Cli, cli_process: Any, *args: str, answers: dict[str, str]) -> tuple[int, str]:
    """Run ``authcore users ARGS --config ...`` on a pseudo-terminal of its own; answer each prompt
    (a key of *answers*) when it appears. Returns the exit code and everything the terminal showed."""
    command, env = cli_process
    argv = [*command, "users", *args, "--config", cli.config]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal, as getpass wants
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    shown, pending = "", dict(answers)
    try:
        while True:
            # A safety net against a hang, not a timing assertion: a prompt comes or the test fails.
            ready, _, _ = select.select([fd], [], [], 120)
            assert ready, f"no output; the terminal shows: {shown!r}"
            try:
                chunk = os.read(fd, 4096).decode("utf-8", "replace")
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            for prompt in [p for p in pending if p in shown]:
                os.write(fd, (pending.pop(prompt) + "\n").encode())
    finally:
        os.close(fd)
        status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), shown


def test_prompts_on_a_terminal(cli: Cli, cli_process: Any) -> None:
    code, shown = on_terminal(
        cli,
        cli_process,
        "create",
        "gina",
        "--role",
        "staff",
        answers={"new password for gina": PASSWORD, "again": PASSWORD},
    )
    assert code == 0 and "created gina" in shown, shown
    assert PASSWORD not in shown  # getpass: not echoed
    assert cli.login("site", "gina", PASSWORD).returncode == 0

    code, shown = on_terminal(
        cli, cli_process, "set-password", "gina", answers={"new password": NEW_PASSWORD, "again": "a typo in it"}
    )
    assert code == 2 and "the passwords differ" in shown and NEW_PASSWORD not in shown
    assert cli.login("site", "gina", PASSWORD).returncode == 0

    code, shown = on_terminal(cli, cli_process, "delete", "gina", answers={"[y/N]": "n"})
    assert code == 2 and "not deleted" in shown
    assert cli.ok("get", "gina")["login"] == "gina"
    code, shown = on_terminal(cli, cli_process, "delete", "gina", answers={"[y/N]": "y"})
    assert code == 0 and "deleted gina" in shown
    cli.fails(1, "get", "gina")


def test_invite_and_second_factor_commands(run_cli: Any, tmp_path: Path) -> None:
    """``invite`` mails an invitation (a real SMTP server); ``second-factor`` shows a user's factor
    and ``--reset`` removes it, after which the password alone signs in again."""
    import pyotp

    from auth_local.testing import start_smtp

    sink = start_smtp()
    try:
        config = local_config(tmp_path)
        config["providers"][0]["config"].update(
            registration="invitation",
            delivery="smtp",
            smtp={"host": "127.0.0.1", "port": sink.port, "security": "none", "from_address": "auth@example.org"},
            invitation_url="https://example.org/join?token={token}",
        )
        cli = Cli(run_cli, write_config(tmp_path, config))
        assert cli.ok("invite", "new@example.org", "--role", "staff") == {
            "ok": True,
            "login": "new@example.org",
            "provider": "site",
        }
        (mail,) = sink.received()
        assert mail.recipients == ("new@example.org",) and "https://example.org/join?token=" in mail.text
        assert "not an e-mail address" in cli.fails(2, "invite", "not-an-address")

        cli.ok("create", "alice", "--password-stdin", input=PASSWORD + "\n")
        assert cli.ok("second-factor", "alice") == {"enrolled": False, "required": False, "recovery_codes_left": 0}
        with AuthManager.from_config(config) as manager:  # alice enrols (the web page or API would)
            enrolment = manager.begin_enrolment("site", "alice")
            manager.confirm_enrolment("site", "alice", pyotp.TOTP(enrolment.secret).now())
        assert cli.ok("second-factor", "alice")["enrolled"] is True
        text = cli.users("second-factor", "alice", json_out=False).stdout
        assert text == "alice: enrolled (10 recovery codes left); required: no\n"
        assert cli.login("site", "alice", PASSWORD).returncode == 1  # no code on the next line
        cli.ok("second-factor", "alice", "--reset")
        assert cli.login("site", "alice", PASSWORD).returncode == 0
        cli.assert_never_shown(PASSWORD, enrolment.secret, *enrolment.recovery_codes)
    finally:
        sink.stop()
