"""The ``authcore`` command line.

Exit codes: 0 success, 1 authentication failed (or a provider is unhealthy), 2 usage
or configuration error. Expected errors print one line, never a traceback.

Without ``tokens.secret`` and ``sessions.store`` in the configuration, a development
secret and an SQLite session store are kept in the state directory
(``$AUTHCORE_STATE_DIR``, else ``$XDG_STATE_HOME/authcore``, else
``~/.local/state/authcore``), so a token issued by ``authcore login`` verifies in a
later ``authcore token verify`` and dies with ``authcore logout``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .cli_users import add_users_parser, run_users
from .errors import AuthError

if TYPE_CHECKING:
    from .capabilities import SecondFactorRequired
    from .manager import AuthManager
    from .web.settings import WebSettings

__all__ = ["main", "run", "build_parser", "serve_settings", "state_dir"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def state_dir() -> Path:
    """Where the development secret and sessions of the command line live."""
    explicit = os.environ.get("AUTHCORE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "authcore"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``authcore``."""
    parser = _Parser(prog="authcore", description="Pluggable authentication: providers, logins and tokens.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    providers = commands.add_parser("providers", help="list the installed provider types")
    providers.add_argument("--json", action="store_true", help="print JSON")

    check = commands.add_parser("check", help="validate a configuration and check each provider's health")
    check.add_argument("--config", required=True, metavar="FILE")
    check.add_argument("--json", action="store_true", help="print JSON")

    login = commands.add_parser("login", help="log in and print the tokens")
    login.add_argument("--config", required=True, metavar="FILE")
    login.add_argument("--provider", required=True, metavar="NAME", help="provider instance name")
    login.add_argument("--login", metavar="USER", help="login name")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument("--token-stdin", action="store_true", help="read a bearer token from standard input")
    login.add_argument(
        "--recovery", action="store_true", help="the second factor is a recovery code, not the app's code"
    )
    login.add_argument("--json", action="store_true", help="print JSON")

    token = commands.add_parser("token", help="work with access tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND", parser_class=_Parser)
    verify = token_commands.add_parser("verify", help="verify an access token ('-' reads it from standard input)")
    verify.add_argument("--config", required=True, metavar="FILE")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument("token", metavar="TOKEN")

    logout = commands.add_parser("logout", help="end the session of an access token")
    logout.add_argument("--config", required=True, metavar="FILE")
    logout.add_argument("token", metavar="TOKEN", help="access token ('-' reads it from standard input)")

    serve = commands.add_parser(
        "serve",
        help="run the standalone auth service with its login page (needs 'authcore[server]>=0.2')",
        description="Run the auth service. Without --config: the development default (dummy provider, loopback only).",
    )
    serve.add_argument("--config", metavar="FILE", help="configuration file (default: the development default)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--prefix", help="prefix of the auth endpoints, e.g. /ispyb/api/v1 (default: web.prefix of the config)"
    )
    serve.add_argument("--public-url", metavar="URL", help="external base URL (SSO redirect URIs)")
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this origin (repeatable; replaces web.cors.origins)",
    )
    serve.add_argument("--no-throttle", action="store_true", help="do not throttle failed logins (web.throttle)")
    add_users_parser(commands)  # authcore users ...: cli_users.py
    return parser


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}")
    return int(value)


def _manager(path: str) -> AuthManager:
    from .manager import AuthManager  # deferred, like every command's imports: `--help` loads no core

    return AuthManager.from_file(path, state_dir=state_dir())


def _read_stdin_line() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _token_argument(value: str) -> str:
    return _read_stdin_line().strip() if value == "-" else value


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _cmd_providers(args: argparse.Namespace) -> int:
    from .plugins import installed_providers  # deferred: pydantic and pluggy only for this command

    entries = installed_providers()
    if args.json:
        _print_json([e.to_dict() for e in entries])
    elif not entries:
        print("no providers installed (pip install auth-dummy, or auth-noauth, auth-ldap, auth-keycloak)")
    else:
        for e in entries:
            print(f"{e.name:<16} {e.distribution} {e.version}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    with _manager(args.config) as manager:
        health = manager.health()
    ok = all(h.ok for h in health.values())
    if args.json:
        _print_json({"ok": ok, "providers": {n: {"ok": h.ok, "detail": h.detail} for n, h in health.items()}})
    else:
        print(f"{args.config}: configuration is valid")
        for name, h in health.items():
            print(f"  {name}: {'ok' if h.ok else 'UNHEALTHY'}{': ' + h.detail if h.detail else ''}")
    if not ok:
        unhealthy = ", ".join(repr(name) for name, h in health.items() if not h.ok)
        print(f"authcore check: unhealthy: {unhealthy}", file=sys.stderr)
    return 0 if ok else 1


def _cmd_login(args: argparse.Namespace) -> int:
    from .capabilities import SecondFactorRequired  # deferred: `--help` loads no core

    password: str | None = None
    token: str | None = None
    if args.password_stdin:
        password = _read_stdin_line()
    elif args.token_stdin:
        token = _read_stdin_line().strip()
    elif args.login is not None:
        password = getpass.getpass(f"password for {args.login}: ")
    with _manager(args.config) as manager:
        try:
            result = manager.login(args.provider, login=args.login, password=password, token=token)
        except SecondFactorRequired as required:
            result = _second_step(manager, required, from_stdin=args.password_stdin, recovery=args.recovery)
    if args.json:
        _print_json(
            {
                "login": result.login,
                "provider": result.identity.provider,
                "token": result.access_token,
                "refresh_token": result.refresh_token,
                "permissions": list(result.permissions),
                "groups": list(result.identity.groups),
                "expires_at": result.expires_at,
                "expires_in": result.expires_in,
            }
        )
    else:
        print(f"logged in as {result.login} (provider {result.identity.provider})")
        print(f"permissions: {', '.join(result.permissions) or '(none)'}")
        print(f"token: {result.access_token}")
        print(f"refresh token: {result.refresh_token}")
    return 0


def _second_step(manager: AuthManager, required: SecondFactorRequired, *, from_stdin: bool, recovery: bool) -> Any:
    """Finish a login that takes a second factor: the code is the next line of standard input
    when the password was, else asked for. A login that must enrol first shows the new key."""
    method = "recovery" if recovery else "totp"
    if "enrol" in required.methods:
        method = "enrol"
        enrolment = manager.begin_login_enrolment(required.challenge)
        codes = "\n".join(f"  {code}" for code in enrolment.recovery_codes)
        print(
            "This account needs a second factor. Add this key to an authenticator app:\n"
            f"  {enrolment.secret}\n  {enrolment.uri}\n"
            f"Recovery codes (keep them safe; each works once):\n{codes}",
            flush=True,
        )
    code = _read_stdin_line().strip() if from_stdin else getpass.getpass("code: ")
    return manager.complete_login(required.challenge, code, method=method)


def _cmd_token(args: argparse.Namespace) -> int:
    if args.token_command != "verify":
        raise _Usage("authcore token: choose a command: verify")
    with _manager(args.config) as manager:
        verified = manager.verify(_token_argument(args.token))
    if args.json:
        _print_json(verified.to_dict())
    else:
        print(f"valid: {verified.login} (provider {verified.provider})")
        print(f"permissions: {', '.join(sorted(verified.permissions)) or '(none)'}")
    return 0


def _cmd_logout(args: argparse.Namespace) -> int:
    with _manager(args.config) as manager:
        manager.logout(_token_argument(args.token))
    print("logged out")
    return 0


#: How to install what ``authcore serve`` needs: our distribution, not the index's unrelated 'authcore' 0.1.x.
SERVER_HINT = "pip install 'authcore[server]>=0.2'"
DEVELOPMENT_REFUSAL = (
    "authcore serve: the development default (no --config) listens on loopback only; "
    "give --config FILE to listen on {host}"
)


def serve_settings(args: argparse.Namespace, manager: AuthManager) -> WebSettings:
    """``authcore serve``'s web settings: the ``web:`` section, each flag given overriding its key."""
    from .web.settings import settings_from_config  # the web layer only for `serve`, like the service itself

    flags: dict[str, Any] = {"prefix": args.prefix, "public_url": args.public_url}
    flags = {key: value for key, value in flags.items() if value is not None}
    if args.cors_origin:
        flags["cors_origins"] = tuple(args.cors_origin)
    if args.no_throttle:
        flags["throttle"] = None
    return settings_from_config(manager.config.web, default_cookie_session=True, default_throttle=True, **flags)


def _cmd_serve(args: argparse.Namespace) -> int:
    from .web.common import is_loopback  # deferred: the web layer only for `serve`

    development = args.config is None
    if development and not is_loopback(args.host):
        print(DEVELOPMENT_REFUSAL.format(host=args.host), file=sys.stderr)
        return 2
    try:
        import uvicorn  # noqa: F401

        from .web import service
    except ImportError as exc:
        # Pinned: the index's unrelated 'authcore' 0.1.x would otherwise be what pip installs.
        print(f"authcore serve needs the server extra ({exc.name} is missing): {SERVER_HINT}", file=sys.stderr)
        return 2
    if development:
        manager = service.development_manager(state_dir())
        print(f"authcore serve: {service.DEVELOPMENT_BANNER}", file=sys.stderr)
    else:
        manager = _manager(args.config)
    try:
        settings = serve_settings(args, manager)
    except Exception:
        manager.close()
        raise
    print(f"authcore serve: login page at http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    service.serve(manager, host=args.host, port=args.port, settings=settings, development=development)
    return 0


def _cmd_users(args: argparse.Namespace) -> int:
    return run_users(args, _manager)


class _Usage(Exception):
    pass


_COMMANDS = {
    "providers": _cmd_providers,
    "check": _cmd_check,
    "login": _cmd_login,
    "token": _cmd_token,
    "logout": _cmd_logout,
    "serve": _cmd_serve,
    "users": _cmd_users,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``authcore``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"authcore {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="authcore: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return _COMMANDS[args.command](args)
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return 2
    except AuthError as exc:
        print(f"authcore: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("authcore: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """Console-script entry point: run :func:`main` and exit with its code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
