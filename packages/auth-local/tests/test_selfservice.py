"""Password change and reset through a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from auth_local import LocalProvider
from auth_local.policy import PasswordRefused
from auth_local.schema import account_tokens
from auth_local.testing import SmtpSink, start_smtp
from authcore import (
    AuthManager,
    InvalidCredentials,
    InvalidToken,
    NewUser,
    NotSupported,
    PasswordSelfService,
    ProviderUnavailable,
)
from authcore.testing.race import outcomes, race

PW = "Correct-Horse-Battery-9"
NEW_PW = "Staple-Lantern-Orbit-42"
RESET_URL = "https://example.org/reset?token={token}"
TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")  # not \b: a token may end with "-"


def smtp_config(server: SmtpSink, **extra: Any) -> dict[str, Any]:
    """Provider settings delivering to *server* without TLS (loopback)."""
    smtp = {"host": "127.0.0.1", "port": server.port, "security": "none", "from_address": "auth@example.org"}
    return {"delivery": "smtp", "smtp": {**smtp, **extra}, "reset_url": RESET_URL}


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


@pytest.fixture
def mailed(make_manager: Callable[..., AuthManager], smtp_server: SmtpSink) -> LocalProvider:
    """A provider delivering to the test's SMTP server, with user ``alice`` (alice@example.org)."""
    provider = provider_of(make_manager(**smtp_config(smtp_server)))
    provider.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
    return provider


def test_the_capability_is_not_supported_by_default() -> None:
    """The core's mixin refuses every operation until a provider overrides it."""
    bare = PasswordSelfService()
    calls: list[Callable[[], object]] = [
        lambda: bare.change_password("a", "b", "c"),
        lambda: bare.request_password_reset("a"),
        lambda: bare.reset_password("t", "p"),
        lambda: bare.request_email_verification("a"),
        lambda: bare.verify_email("t"),
    ]
    for call in calls:
        with pytest.raises(NotSupported):
            call()


def test_reset_end_to_end(manager: AuthManager, mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """Request by login, read the mail, reset, log in with the new password; the old one and the token are dead."""
    assert mailed.request_password_reset("ALICE") is None
    [mail] = smtp_server.received()
    assert mail.recipients == ("alice@example.org",) and mail.sender == "auth@example.org"
    assert mail.subject == "Reset your password" and "https://example.org/reset?token=" in mail.text
    token = token_in(smtp_server)
    assert mailed.reset_password(token, NEW_PW) == "alice"
    assert manager.login("users", login="alice", password=NEW_PW).login == "alice"
    with pytest.raises(InvalidCredentials):
        manager.login("users", login="alice", password=PW)
    with pytest.raises(InvalidToken) as reused:
        mailed.reset_password(token, "Another-Password-77")
    assert reused.value.message == "the link is invalid or has expired"
    manager.login("users", login="alice", password=NEW_PW)  # the reused token changed nothing


def test_reset_by_address_and_no_mail_for_nobody(mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """An address (any case) finds its account; unknown, disabled and address-less accounts get the same None."""
    mailed.create_user(NewUser(login="bob", password=PW))  # no address
    mailed.create_user(NewUser(login="carl", password=PW, email="carl@example.org", enabled=False))
    for nobody in ("nobody", "nobody@example.org", "bob", "carl", "carl@example.org"):
        assert mailed.request_password_reset(nobody) is None
    assert smtp_server.received() == []
    assert mailed.request_password_reset("Alice@Example.ORG") is None
    assert [m.recipients for m in smtp_server.received()] == [("alice@example.org",)]
    assert mailed.reset_password(token_in(smtp_server), NEW_PW) == "alice"


def test_expired_token_is_refused(manager: AuthManager, mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """Past ``reset_token_ttl`` (the provider's clock moved on, no waiting): refused, with the same message."""
    mailed.request_password_reset("alice")
    token = token_in(smtp_server)
    started = mailed.clock()
    mailed.clock = lambda: started + timedelta(minutes=30, seconds=1)
    with pytest.raises(InvalidToken) as expired:
        mailed.reset_password(token, NEW_PW)
    assert expired.value.message == "the link is invalid or has expired"
    manager.login("users", login="alice", password=PW)
    mailed.request_password_reset("alice")  # issuing removes the expired row: the table stays small
    with mailed.store.engine.connect() as connection:
        assert len(connection.execute(select(account_tokens.c.id)).all()) == 1
    assert mailed.reset_password(token_in(smtp_server), NEW_PW) == "alice"


def test_a_new_request_voids_the_older_token(mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """Only the newest reset link works."""
    mailed.request_password_reset("alice")
    mailed.request_password_reset("alice")
    first, second = token_in(smtp_server, 0), token_in(smtp_server, 1)
    with pytest.raises(InvalidToken):
        mailed.reset_password(first, NEW_PW)
    assert mailed.reset_password(second, NEW_PW) == "alice"


def test_a_refused_password_leaves_the_token_usable(mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """The policy is checked before the token is spent."""
    mailed.request_password_reset("alice")
    token = token_in(smtp_server)
    with pytest.raises(PasswordRefused):
        mailed.reset_password(token, "short")
    with pytest.raises(PasswordRefused):
        mailed.reset_password(token, "xx-alice-xx-long-enough")  # contains the login
    assert mailed.reset_password(token, NEW_PW) == "alice"


def test_change_password(manager: AuthManager, mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """The current password is required; the policy applies; an outstanding reset link dies."""
    mailed.request_password_reset("alice")
    token = token_in(smtp_server)
    for login, current in (("alice", "wrong-password-123"), ("nobody", PW), ("a\x00", PW), ("x" * 10_000, PW)):
        with pytest.raises(InvalidCredentials):
            mailed.change_password(login, current, NEW_PW)
    with pytest.raises(PasswordRefused):
        mailed.change_password("alice", PW, "password")
    mailed.change_password("alice", PW, NEW_PW)
    manager.login("users", login="alice", password=NEW_PW)
    with pytest.raises(InvalidCredentials):
        mailed.change_password("alice", PW, "Yet-Another-Password-5")
    with pytest.raises(InvalidToken):
        mailed.reset_password(token, "Yet-Another-Password-5")
    mailed.disable_user("alice")
    with pytest.raises(InvalidCredentials):
        mailed.change_password("alice", NEW_PW, "Yet-Another-Password-5")


def test_only_hashes_are_stored_and_nothing_leaks(
    mailed: LocalProvider, smtp_server: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The table holds SHA-256 hashes; no token shows in a log line (DEBUG), an exception or a repr."""
    caplog.set_level(logging.DEBUG)
    mailed.request_password_reset("alice")
    token = token_in(smtp_server)
    with mailed.store.engine.connect() as connection:
        stored = connection.execute(select(account_tokens.c.token_hash, account_tokens.c.purpose)).all()
    assert [tuple(row) for row in stored] == [(hashlib.sha256(token.encode()).hexdigest(), "reset")]
    with pytest.raises(PasswordRefused) as refused:
        mailed.reset_password(token, "short")
    mailed.reset_password(token, NEW_PW)
    with pytest.raises(InvalidToken) as reused:
        mailed.reset_password(token, NEW_PW)
    # Every record but the receiving server's own transcript (aiosmtpd's "mail.log" shows the DATA it got).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert "auth_local" in {r.name for r in caplog.records}  # the provider did log, at INFO
    shown = [logged, repr(mailed), repr(mailed.config), repr(mailed.store), repr(mailed.delivery)]
    shown += [str(refused.value), repr(refused.value), str(reused.value), repr(smtp_server.received()[0])]
    assert not any(token in text for text in shown)
    assert NEW_PW not in logged


def test_hostile_tokens_and_addresses(mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """Huge, unicode, NUL and SQL-ish tokens are refused alike; such logins/addresses get None and no mail."""
    bad_tokens: list[Any] = [
        "", "x" * 1_000_000, "\x00" * 43, "é" * 43, "a" * 42 + "\x00", "' OR 1=1 --" + "a" * 32, "a" * 44, None, 42,
    ]  # fmt: skip
    for bad in bad_tokens:
        with pytest.raises(InvalidToken) as refused:
            mailed.reset_password(bad, NEW_PW)
        assert refused.value.message == "the link is invalid or has expired"
        with pytest.raises(InvalidToken):
            mailed.verify_email(bad)
    for hostile in (
        "x" * 1_000_000,
        "\x00",
        "alice\x00",
        "a@b\r\nBcc: evil@example.org",
        "ａｌｉｃｅ@example.org",
        "",
        7,
    ):
        assert mailed.request_password_reset(hostile) is None  # type: ignore[arg-type]
    assert smtp_server.received() == []


def test_brute_force_finds_nothing(manager: AuthManager, mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """1000 random well-formed tokens, with a real one outstanding: all refused, no password changed."""
    mailed.request_password_reset("alice")
    real = token_in(smtp_server)
    for _ in range(1000):
        guess = secrets.token_urlsafe(32)
        assert guess != real
        with pytest.raises(InvalidToken):
            mailed.reset_password(guess, NEW_PW)
    manager.login("users", login="alice", password=PW)
    assert mailed.reset_password(real, NEW_PW) == "alice"  # still valid afterwards


def test_eight_threads_one_token(manager: AuthManager, mailed: LocalProvider, smtp_server: SmtpSink) -> None:
    """Eight concurrent redemptions of one token: exactly one succeeds, the others get InvalidToken."""
    mailed.request_password_reset("alice")
    token = token_in(smtp_server)
    results = race(lambda index: mailed.reset_password(token, f"Thread-Password-{index}-Xyz"))
    assert outcomes(results) == {"ok": 1, "InvalidToken": 7}, results
    (winner,) = [index for index, result in enumerate(results) if not isinstance(result, Exception)]
    manager.login("users", login="alice", password=f"Thread-Password-{winner}-Xyz")


def test_smtp_down_is_unavailable_and_spends_nothing(
    mailed: LocalProvider, smtp_server: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """Server gone: ProviderUnavailable naming host and port; no token left behind; the older one still works."""
    mailed.request_password_reset("alice")
    older = token_in(smtp_server)
    smtp_server.stop()
    with pytest.raises(ProviderUnavailable) as down:
        mailed.request_password_reset("alice")
    assert f"127.0.0.1:{smtp_server.port}" in down.value.message and "not sent" in down.value.message
    with mailed.store.engine.connect() as connection:
        rows = connection.execute(select(account_tokens.c.used_at)).all()
    assert len(rows) == 1 and rows[0].used_at is None  # only the older token, unspent
    assert mailed.request_password_reset("nobody") is None  # unknown: no delivery attempted
    assert mailed.reset_password(older, NEW_PW) == "alice"
    assert older not in "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")


def test_smtp_login_and_a_wrong_password(make_manager: Callable[..., AuthManager]) -> None:
    """AUTH with the configured account; a refused login is ProviderUnavailable without the password."""
    server = start_smtp(username="mailer", password="smtp-secret-9")
    try:
        good = provider_of(make_manager(**smtp_config(server, username="mailer", password="smtp-secret-9")))
        good.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
        good.request_password_reset("alice")
        assert server.logins == ["mailer"] and len(server.received()) == 1
        assert "smtp-secret-9" not in repr(good.config)
        bad = provider_of(make_manager(**smtp_config(server, username="mailer", password="wrong-secret-1")))
        with pytest.raises(ProviderUnavailable) as refused:
            bad.request_password_reset("alice")
        assert "wrong-secret-1" not in str(refused.value) and "SMTPAuthenticationError" in str(refused.value)
        assert len(server.received()) == 1
    finally:
        server.stop()
