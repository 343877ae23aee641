"""E-mail verification, invitations and the delivery settings, through a real SMTP server."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from auth_local import LocalConfig, LocalProvider
from auth_local.selfservice import LocalRegistration
from auth_local.testing import SmtpSink
from authcore import (
    AuthManager,
    BadRequest,
    ConfigError,
    InvalidToken,
    NewUser,
    Registration,
    SelfUpdate,
    UserExists,
    UserNotFound,
    UserUpdate,
)
from authcore.testing.race import outcomes, race

PW = "Correct-Horse-Battery-9"
TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")  # not \b: a token may end with "-"


def mail_settings(server: SmtpSink) -> dict[str, Any]:
    """Delivery to *server* with links for the three kinds of message."""
    return {
        "delivery": "smtp",
        "smtp": {"host": "127.0.0.1", "port": server.port, "security": "none", "from_address": "auth@example.org"},
        "reset_url": "https://example.org/reset?token={token}",
        "verification_url": "https://example.org/verify?token={token}",
        "invitation_url": "https://example.org/join?token={token}",
    }


def provider_of(manager: AuthManager) -> LocalProvider:
    """The ``users`` provider of *manager*."""
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    return provider


def token_in(server: SmtpSink, index: int = -1) -> str:
    """The token in the *index*-th message the server received."""
    found = TOKEN.search(server.received()[index].text)
    assert found is not None
    return found.group(1)


def test_email_verification(make_manager: Callable[..., AuthManager], smtp_server: SmtpSink) -> None:
    """Request, read, verify: ``email_verified`` turns true; the token works once; a new address clears the flag."""
    provider = provider_of(make_manager(**mail_settings(smtp_server)))
    provider.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
    assert provider.get_user("alice").attributes["email_verified"] is False
    provider.request_email_verification("Alice")
    mail = smtp_server.received()[0]
    assert mail.recipients == ("alice@example.org",) and "https://example.org/verify?token=" in mail.text
    token = token_in(smtp_server)
    assert provider.verify_email(token) == "alice"
    assert provider.get_user("alice").attributes["email_verified"] is True
    assert provider.self_update("alice", SelfUpdate(display_name="Al")).attributes["email_verified"] is True
    with pytest.raises(InvalidToken):
        provider.verify_email(token)
    provider.update_user("alice", UserUpdate(email="ALICE@example.org"))  # the same address, another case
    assert provider.get_user("alice").attributes["email_verified"] is True
    provider.self_update("alice", SelfUpdate(email="alice@elsewhere.example"))
    assert provider.get_user("alice").attributes["email_verified"] is False


def test_verification_proves_one_address_only(make_manager: Callable[..., AuthManager], smtp_server: SmtpSink) -> None:
    """A token sent to the old address is refused after a change and stays unspent; expiry and unknown users too."""
    provider = provider_of(make_manager(**mail_settings(smtp_server)))
    provider.create_user(NewUser(login="bob", password=PW, email="bob@example.org"))
    provider.create_user(NewUser(login="nomail", password=PW))
    provider.request_email_verification("bob")
    old = token_in(smtp_server)
    provider.update_user("bob", UserUpdate(email="bob@new.example"))
    with pytest.raises(InvalidToken):
        provider.verify_email(old)
    provider.update_user("bob", UserUpdate(email="bob@example.org"))  # back: the unspent token works again
    assert provider.verify_email(old) == "bob"
    with pytest.raises(UserNotFound):
        provider.request_email_verification("nobody")
    with pytest.raises(UserNotFound):
        provider.request_email_verification("x\x00" * 1000)
    with pytest.raises(BadRequest):
        provider.request_email_verification("nomail")
    provider.request_email_verification("bob")
    later = token_in(smtp_server)
    started = provider.clock()
    provider.clock = lambda: started + timedelta(days=2, seconds=1)
    with pytest.raises(InvalidToken):
        provider.verify_email(later)


def test_invitation_flow(make_manager: Callable[..., AuthManager], smtp_server: SmtpSink) -> None:
    """An invitation mails a link; registering with it gives the address (verified) and the roles, once."""
    manager = make_manager(registration="invitation", registration_roles=["developers"], **mail_settings(smtp_server))
    provider = provider_of(manager)
    assert provider.registration_model is LocalRegistration
    assert "self_register" in provider.supported_user_operations()
    provider.invite("New.Person@example.org", ["staff"])
    mail = smtp_server.received()[0]
    assert mail.recipients == ("New.Person@example.org",) and "https://example.org/join?token=" in mail.text
    token = token_in(smtp_server)
    with pytest.raises(BadRequest):  # another address than the invited one: refused, token kept
        provider.self_register(LocalRegistration(login="newbie", password=PW, email="x@example.org", invitation=token))
    identity = provider.self_register(
        LocalRegistration(login="newbie", password=PW, given_name="New", invitation=token)
    )
    assert identity.email == "New.Person@example.org" and set(identity.groups) == {"developers", "staff"}
    assert identity.attributes == {"email_verified": True}
    assert manager.login("users", login="newbie", password=PW).login == "newbie"
    with pytest.raises(InvalidToken):
        provider.self_register(LocalRegistration(login="second", password=PW, invitation=token))
    with pytest.raises(InvalidToken):
        provider.self_register(Registration(login="third", password=PW))
    with pytest.raises(ValidationError):  # the core's model has no invitation field
        Registration.model_validate({"login": "x", "password": PW, "invitation": token})


def test_invitation_edge_cases(make_manager: Callable[..., AuthManager], smtp_server: SmtpSink) -> None:
    """A taken login keeps the invitation; hostile addresses and roles are refused; 8 threads, one account."""
    provider = provider_of(make_manager(registration="invitation", **mail_settings(smtp_server)))
    provider.create_user(NewUser(login="taken", password=PW))
    for address in ("", "no-at-sign", "a@b@c", "a b@example.org", "a@example.org\r\nBcc: x@y", "x" * 400 + "@e.org"):
        with pytest.raises(BadRequest):
            provider.invite(address)
    with pytest.raises(BadRequest):
        provider.invite("ok@example.org", [" padded "])
    assert smtp_server.received() == []
    provider.invite("ok@example.org")
    token = token_in(smtp_server)
    with pytest.raises(UserExists):
        provider.self_register(LocalRegistration(login="TAKEN", password=PW, invitation=token))
    results = race(
        lambda index: provider.self_register(LocalRegistration(login=f"racer{index}", password=PW, invitation=token))
    )
    assert outcomes(results) == {"ok": 1, "InvalidToken": 7}, results
    assert len([u for u in provider.list_users() if u.login.startswith("racer")]) == 1
    provider.invite("late@example.org")
    late = token_in(smtp_server)
    started = provider.clock()
    provider.clock = lambda: started + timedelta(days=7, seconds=1)
    with pytest.raises(InvalidToken):
        provider.self_register(LocalRegistration(login="late", password=PW, invitation=late))


def test_log_delivery_hides_tokens_unless_asked(
    make_manager: Callable[..., AuthManager], caplog: pytest.LogCaptureFixture
) -> None:
    """``delivery: log`` names the recipient only; ``log_tokens`` writes the text and production refuses it."""
    caplog.set_level(logging.DEBUG)
    quiet = provider_of(make_manager())
    quiet.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
    quiet.request_password_reset("alice")
    assert "alice@example.org" in caplog.text and "token" not in caplog.text.split("alice@example.org")[-1]
    assert not TOKEN.search(caplog.text) and "reset?" not in caplog.text
    caplog.clear()
    loud = provider_of(make_manager(name="users", log_tokens=True, reset_url="https://x.example/r?token={token}"))
    loud.request_password_reset("alice")
    assert TOKEN.search(caplog.text)
    assert any("log_tokens" in issue for issue in LocalConfig(log_tokens=True).production_issues())
    assert LocalConfig(database_url="sqlite:////var/lib/authcore/users.db").production_issues() == []


def test_delivery_settings_are_checked(
    make_manager: Callable[..., AuthManager], capsys: pytest.CaptureFixture[str]
) -> None:
    """smtp needs its settings, links need {token}, a module:callable must import; a site's callable is used."""
    with pytest.raises(ValidationError):
        LocalConfig(delivery="smtp")
    with pytest.raises(ValidationError):
        LocalConfig(reset_url="https://example.org/reset")
    with pytest.raises(ValidationError):
        LocalConfig(delivery="not a target")
    with pytest.raises(ConfigError):
        make_manager(delivery="no_such_module_xyz:send")
    site = provider_of(make_manager(delivery="builtins:print"))  # any callable f(to, subject, text)
    site.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
    site.request_password_reset("alice")
    printed = capsys.readouterr().out
    assert printed.startswith("alice@example.org Reset your password")
    assert re.search(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", printed)  # not \b: it may start with "-"
    smtp = LocalConfig(
        delivery="smtp", smtp={"host": "h", "security": "none", "from_address": "a@b.c", "password": "pw-1234567"}
    )
    assert "pw-1234567" not in repr(smtp) and any("without TLS" in i for i in smtp.production_issues())
