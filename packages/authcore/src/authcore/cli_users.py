"""``authcore users ...``: user management on the command line (issue 14).

Every command runs :func:`authcore.web.users.run_operation`, the operation behind the web
endpoints, so a body is validated by the provider's package models and disabling or
deleting a user ends their sessions (with a shared session store, in every process).
``set-password`` ends every session of the user too (personal access tokens included): an
administrator replaces a password because it is lost or leaked, and whoever signed in with
the old one must not stay signed in.

Exit codes, as for the other commands: 0 done; 1 refused (no such user, the user exists,
the provider refuses the change); 2 usage, configuration or invalid input (a field the
models refuse, a password the policy refuses, an operation the provider lacks).

A password is read from standard input (``--password-stdin``: one line, its newline
dropped) or asked twice on the terminal; never taken from the command line, which other
users of the machine can read. No password reaches the output, in any case.

This module imports only the standard library at import time: ``authcore --help`` stays
quick and loads no core, web layer or provider.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import AuthManager

__all__ = ["add_users_parser", "run_users", "UsersUsage"]

_PROFILE_FLAGS = (("--given-name", "given_name"), ("--family-name", "family_name"), ("--email", "email"))


class UsersUsage(Exception):
    """A usage error of ``authcore users`` (exit code 2); the message is printed as it is."""


def add_users_parser(commands: Any) -> None:
    """Register ``users`` and its commands on *commands* (``build_parser``'s sub-parsers)."""
    users = commands.add_parser("users", help="manage the users of a provider (create, list, disable, ...)")
    sub = users.add_subparsers(dest="users_command", metavar="COMMAND", parser_class=type(users))

    def command(name: str, help: str, *, login: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
        parser.add_argument("--config", required=True, metavar="FILE")
        parser.add_argument("--provider", metavar="NAME", help="provider instance (default: the only one with users)")
        parser.add_argument("--json", action="store_true", help="print JSON")
        if login:
            parser.add_argument("login", metavar="LOGIN")
        return parser

    listing = command("list", "list users", login=False)
    listing.add_argument("--search", metavar="TEXT", help="only users whose login or name contains TEXT")
    listing.add_argument("--limit", type=_count, default=None, metavar="N", help="at most N users (default 100)")
    listing.add_argument("--offset", type=_count, default=None, metavar="N", help="skip the first N users")
    command("get", "show one user")
    create = command("create", "create a user")
    _profile_flags(create)
    create.add_argument("--role", action="append", default=[], metavar="ROLE", help="give a role (repeatable)")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument("--no-password", action="store_true", help="no password: the user cannot log in yet")
    update = command("update", "change a user's names or e-mail")
    _profile_flags(update)
    update.add_argument("--display-name", metavar="TEXT")
    password = command("set-password", "replace a user's password and end every session of theirs")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    command("enable", "let a user log in again")
    command("disable", "stop a user from logging in and end their sessions")
    delete = command("delete", "delete a user and end their sessions")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    roles = command("roles", "add or remove roles")
    change = roles.add_mutually_exclusive_group(required=True)
    change.add_argument("--add", nargs="+", metavar="ROLE", help="roles to give")
    change.add_argument("--remove", nargs="+", metavar="ROLE", help="roles to take away")
    sessions = command("sessions", "list a user's live sessions")
    sessions.add_argument("--end", action="store_true", help="end every one of them")
    factor = command("second-factor", "show a user's second factor")
    factor.add_argument("--reset", action="store_true", help="remove it (a lost device): the next login enrols again")
    invite = command("invite", "send an invitation to register by e-mail", login=False)
    invite.add_argument("email", metavar="EMAIL")
    invite.add_argument("--role", action="append", default=[], metavar="ROLE", help="a role the account gets")


def _profile_flags(parser: argparse.ArgumentParser) -> None:
    for flag, _field in _PROFILE_FLAGS:
        parser.add_argument(flag, metavar="TEXT")


def _count(value: str) -> int:
    # isascii(): "²".isdigit() is true too, and int() refuses it.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise argparse.ArgumentTypeError(f"not a non-negative integer: {_shown(value)}")
    return int(value)


def _shown(value: object) -> str:
    """*value* for a terminal: control characters escaped, so a field cannot drive the terminal."""
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


# --------------------------------------------------------------------------- input


def _stdin_password() -> str:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):  # a Windows-style line end
        password = password[:-1]
    if not password:
        raise UsersUsage("authcore users: no password on standard input")
    return password


def _prompted_password(login: str) -> str:
    if not sys.stdin.isatty():
        # getpass would fall back to reading the (non-terminal) input with a warning: refuse instead.
        raise UsersUsage("authcore users: no terminal to ask for the password: give --password-stdin or --no-password")
    first = getpass.getpass(f"new password for {_shown(login)}: ")
    if getpass.getpass("again: ") != first:
        raise UsersUsage("authcore users: the passwords differ")
    if not first:
        raise UsersUsage("authcore users: empty password")
    return first


def _new_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_password", False):
        return None
    return _stdin_password() if args.password_stdin else _prompted_password(args.login)


def _confirm_delete(args: argparse.Namespace, provider: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsersUsage("authcore users delete: give --yes to delete without a terminal to ask on")
    answer = input(f"delete user {_shown(args.login)} of provider {_shown(provider)}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UsersUsage("authcore users delete: not deleted")


# --------------------------------------------------------------------------- running


def _provider(manager: AuthManager, wanted: str | None) -> str:
    from .capabilities import UserManagement

    if wanted is not None:
        return wanted
    managed = sorted(name for name, p in manager.providers.items() if isinstance(p, UserManagement))
    if len(managed) == 1:
        return managed[0]
    raise UsersUsage(
        "authcore users: give --provider NAME; providers with user management: " + (", ".join(managed) or "none")
    )


def _body(args: argparse.Namespace, fields: Mapping[str, str]) -> dict[str, Any]:
    return {field: getattr(args, attr) for field, attr in fields.items() if getattr(args, attr, None) is not None}


_UPDATE_FIELDS = {"given_name": "given_name", "family_name": "family_name", "email": "email"}


def _execute(manager: AuthManager, args: argparse.Namespace, provider: str, password: str | None) -> tuple[str, Any]:
    """Run the command (*password*: the new one, already read); return ``(what to say, JSON result)``."""
    from .web.users import run_operation

    name, login = args.users_command, getattr(args, "login", None)
    if name == "list":
        given = (("search", args.search), ("limit", args.limit), ("offset", args.offset))
        query = {key: str(value) for key, value in given if value is not None}
        return "list", run_operation(manager, "list", provider, query=query)[1]
    if name == "get":
        return "get", run_operation(manager, "get", provider, login=login)[1]
    if name == "create":
        body = {"login": login, **_body(args, _UPDATE_FIELDS), "roles": args.role}
        if password is not None:
            body["password"] = password
        return "created", run_operation(manager, "create", provider, body=body)[1]
    if name == "update":
        body = _body(args, {**_UPDATE_FIELDS, "display_name": "display_name"})
        if not body:
            raise UsersUsage("authcore users update: nothing to change (--given-name, --family-name, ...)")
        return "updated", run_operation(manager, "update", provider, login=login, body=body)[1]
    if name == "set-password":
        return "password set for", {"ended": _set_password(manager, provider, args.login, password)}
    if name in ("enable", "disable", "delete"):
        if name == "delete":
            _confirm_delete(args, provider)
        run_operation(manager, name, provider, login=login)
        return f"{name}d", None
    if name == "roles":
        operation, roles = ("add_roles", args.add) if args.add else ("remove_roles", args.remove)
        run_operation(manager, operation, provider, login=login, body={"roles": roles})
        return "roles changed for", None
    if name == "sessions":
        if args.end:
            ended = len(run_operation(manager, "sessions", provider, login=login)[1]["sessions"])
            run_operation(manager, "end_sessions", provider, login=login)
            return "sessions ended for", {"ended": ended}
        return "sessions", run_operation(manager, "sessions", provider, login=login)[1]
    if name == "second-factor":
        if args.reset:
            run_operation(manager, "second_factor_reset", provider, login=login)
            return "second factor removed for", None
        return "second factor", run_operation(manager, "second_factor", provider, login=login)[1]
    if name == "invite":
        run_operation(manager, "invite", provider, body={"email": args.email, "roles": args.role})
        return "invited", None
    raise UsersUsage("authcore users: choose a command: " + ", ".join(_COMMAND_NAMES))


_COMMAND_NAMES = (
    "list", "get", "create", "update", "set-password", "enable", "disable", "delete", "roles", "sessions",
    "second-factor", "invite",
)  # fmt: skip


def _set_password(manager: AuthManager, provider: str, login: str, password: str | None) -> int:
    """Set the password, then end every session of the user's; how many ended."""
    # None never comes here (set-password always reads one); the adapter would refuse it anyway.
    from pydantic import TypeAdapter, ValidationError

    from .errors import BadRequest, NotSupported
    from .providers import Password
    from .web.common import validation_problems

    users = manager.users(provider)
    try:
        checked = TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        raise BadRequest("the password is not valid", status_code=422, problems=validation_problems(exc)) from None
    users.set_password(login, checked.get_secret_value())
    # Sessions carry the login as the provider spells it ("ALICE" typed may be "alice").
    with contextlib.suppress(NotSupported):
        login = users.get_user(login).login
    return manager.end_sessions_of(login, provider=provider)


def _say(args: argparse.Namespace, provider: str, verb: str, result: Any) -> None:
    subject = getattr(args, "login", None) or getattr(args, "email", None)
    if args.json:
        if result is None or "ended" in result:  # an action: say what it was done to
            result = {"ok": True, "login": subject, "provider": provider, **(result or {})}
        print(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    elif verb == "list":
        for user in result["users"]:
            _user_line(user)
        print(f"({len(result['users'])} users)")
    elif verb in ("get", "created", "updated"):
        if verb != "get":
            print(f"{verb} {_shown(result['login'])} (provider {_shown(provider)})")
        for key in ("login", "display_name", "given_name", "family_name", "email"):
            print(f"{key}: {_shown(result.get(key) or '')}")
        print(f"enabled: {'yes' if result.get('attributes', {}).get('enabled', True) else 'no'}")
        print(f"roles: {', '.join(_shown(g) for g in result.get('groups', ())) or '(none)'}")
    elif verb == "sessions":
        for s in result["sessions"]:
            print(f"{_shown(s['session_id'])}  created {s['created_at']}  last used {s['last_used_at']}"
                  f"  expires {s['expires_at']}")  # fmt: skip
        print(f"({len(result['sessions'])} live sessions)")
    elif verb == "second factor":
        left = result["recovery_codes_left"]
        state = f"enrolled ({left} recovery codes left)" if result["enrolled"] else "not enrolled"
        print(f"{_shown(args.login)}: {state}; required: {'yes' if result['required'] else 'no'}")
    else:
        extra = f": {result['ended']} ended" if isinstance(result, dict) and "ended" in result else ""
        print(f"{verb} {_shown(subject)} (provider {_shown(provider)}){extra}")


def _user_line(user: Mapping[str, Any]) -> None:
    enabled = user.get("attributes", {}).get("enabled", True)
    name = user.get("display_name") or " ".join(p for p in (user.get("given_name"), user.get("family_name")) if p)
    roles = ",".join(user.get("groups", ()))
    print(f"{_shown(user['login'])}\t{_shown(name)}\t{_shown(user.get('email') or '')}\t"
          f"{'enabled' if enabled else 'DISABLED'}\t{_shown(roles)}")  # fmt: skip


def run_users(args: argparse.Namespace, manager_for: Any) -> int:
    """Run ``authcore users COMMAND``; *manager_for(path)* opens the configuration's manager.

    Errors other than usage and invalid input propagate as :class:`~authcore.errors.AuthError`
    (the caller prints them with their exit code).
    """
    if args.users_command is None:
        print("authcore users: choose a command: " + ", ".join(_COMMAND_NAMES), file=sys.stderr)
        return 2
    from .errors import BadRequest

    try:
        # Read before the configuration is opened: a missing password costs no database connection.
        password = _new_password(args) if args.users_command in ("create", "set-password") else None
        with manager_for(args.config) as manager:
            provider = _provider(manager, args.provider)
            verb, result = _execute(manager, args, provider, password)
    except UsersUsage as exc:
        print(exc, file=sys.stderr)
        return 2
    except BadRequest as exc:  # invalid input: a usage error here, with what was wrong (never the value)
        print(f"authcore users: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            where = ".".join(str(p) for p in problem.get("loc", ()))
            print(f"  {_shown(where) or 'value'}: {_shown(problem.get('msg', ''))}", file=sys.stderr)
        return 2
    _say(args, provider, verb, result)
    return 0
