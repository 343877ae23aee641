"""SMTP delivery over STARTTLS and implicit TLS, against a real aiosmtpd server with a throwaway CA.

The server's certificate is signed by a CA made for the test (``auth_local.testing.make_test_ca``):
trusted through ``smtp.ca_file``, refused by the system's store, refused for a host name it does
not name. A refused server never sees the password, and no error or log line holds it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from auth_local import LocalProvider
from auth_local.schema import account_tokens
from auth_local.testing import SmtpSink, SmtpTls, TlsFiles, make_test_ca
from authcore import AuthManager, ConfigError, NewUser, ProviderUnavailable

PW = "Correct-Horse-Battery-9"
NEW_PW = "Staple-Lantern-Orbit-42"
SMTP_LOGIN = "mailer"
SMTP_PASSWORD = "smtp-Secret-Pass-77"
TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")  # not \b: a token may end with "-"
#: The ways a password could show: as given, and as AUTH PLAIN / AUTH LOGIN encode it.
PASSWORD_FORMS = (
    SMTP_PASSWORD,
    base64.b64encode(f"\0{SMTP_LOGIN}\0{SMTP_PASSWORD}".encode()).decode(),
    base64.b64encode(SMTP_PASSWORD.encode()).decode(),
)
#: The client's host name for each server kind: one test each for a DNS name and an IP address.
HOSTS: dict[SmtpTls, str] = {"starttls": "localhost", "ssl": "127.0.0.1"}

StartServer = Callable[..., SmtpSink]
MakeProvider = Callable[..., LocalProvider]


@pytest.fixture
def make_provider(configs: Callable[..., dict[str, Any]], tmp_path: Path) -> Iterator[MakeProvider]:
    """``make_provider(**smtp)``: a provider on an SQLite file mailing with these ``smtp:`` settings, user alice.

    TLS does not depend on the database, so one (SQLite) is enough here.
    """
    managers: list[AuthManager] = []

    def make(**smtp: Any) -> LocalProvider:
        settings = {"from_address": "auth@example.org", **smtp}
        mail = {"delivery": "smtp", "smtp": settings, "reset_url": "https://example.org/r?token={token}"}
        database = f"sqlite:///{tmp_path / f'users{len(managers)}.db'}"
        manager = AuthManager.from_config(configs(database, **mail))
        managers.append(manager)
        provider = manager.provider("users")
        assert isinstance(provider, LocalProvider)
        provider.create_user(NewUser(login="alice", password=PW, email="alice@example.org"))
        return provider

    yield make
    for manager in managers:
        manager.close()


def tls_server(start_smtp_server: StartServer, files: TlsFiles, tls: SmtpTls) -> SmtpSink:
    """A server speaking *tls* with *files*' certificate, wanting the test's account."""
    return start_smtp_server(
        tls=tls, certificate=files.certificate, key=files.key, username=SMTP_LOGIN, password=SMTP_PASSWORD
    )


def with_login(server: SmtpSink, tls: SmtpTls, **extra: Any) -> dict[str, Any]:
    """``smtp:`` settings reaching *server* with *tls* and the account."""
    account = {"username": SMTP_LOGIN, "password": SMTP_PASSWORD}
    return {"host": HOSTS[tls], "port": server.port, "security": tls, **account, **extra}


def token_rows(provider: LocalProvider) -> int:
    """How many tokens the provider's table holds."""
    with provider.store.engine.connect() as connection:
        return len(connection.execute(select(account_tokens.c.token_hash)).all())


def assert_refused_unseen(
    provider: LocalProvider, server: SmtpSink, refused: ProviderUnavailable, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider's documented failure: no mail, no AUTH, no token left; no password anywhere shown."""
    assert "the message was not sent" in refused.message and f":{server.port} " in refused.message
    assert server.received() == [] and server.attempts == []  # the password never left the client
    assert token_rows(provider) == 0
    # Every record, the server's own transcript included: the password never reached it either.
    shown = [str(refused), repr(refused), repr(provider.config), repr(provider.delivery)]
    shown += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not any(form in text for form in PASSWORD_FORMS for text in shown)


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_reset_mail_over_tls_with_auth_and_the_site_ca(
    tls: SmtpTls,
    make_provider: MakeProvider,
    start_smtp_server: StartServer,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """STARTTLS (to ``localhost``) and implicit TLS (to ``127.0.0.1``): AUTH, the mail arrives, its token works."""
    caplog.set_level(logging.DEBUG)
    server = tls_server(start_smtp_server, tls_files, tls)
    provider = make_provider(**with_login(server, tls, ca_file=str(tls_files.ca_file)))
    provider.request_password_reset("alice")
    [mail] = server.received()
    assert server.logins == [SMTP_LOGIN] and mail.recipients == ("alice@example.org",)
    found = TOKEN.search(mail.text)
    assert found is not None
    assert provider.reset_password(found.group(1), NEW_PW) == "alice"
    # Our own records; aiosmtpd's "mail.log" transcript shows the AUTH line it received, as a server may.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert not any(form in ours for form in PASSWORD_FORMS)
    assert SMTP_PASSWORD not in repr(provider.config) + repr(provider.delivery)


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_the_system_store_does_not_trust_the_test_ca(
    tls: SmtpTls,
    make_provider: MakeProvider,
    start_smtp_server: StartServer,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No ca_file: the server's certificate is not trusted; ProviderUnavailable saying so, nothing sent."""
    caplog.set_level(logging.DEBUG)
    server = tls_server(start_smtp_server, tls_files, tls)
    provider = make_provider(**with_login(server, tls))
    with pytest.raises(ProviderUnavailable) as refused:
        provider.request_password_reset("alice")
    assert "not trusted (SSLCertVerificationError: unable to get local issuer certificate)" in refused.value.message
    assert "smtp.ca_file" in refused.value.message
    assert_refused_unseen(provider, server, refused.value, caplog)


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_a_certificate_for_another_host_is_refused(
    tls: SmtpTls,
    make_provider: MakeProvider,
    start_smtp_server: StartServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Signed by the trusted CA but for mail.example.org: the host name check refuses it."""
    caplog.set_level(logging.DEBUG)
    other = make_test_ca(tmp_path / "other", hostnames=["mail.example.org"])
    server = tls_server(start_smtp_server, other, tls)
    provider = make_provider(**with_login(server, tls, ca_file=str(other.ca_file)))
    with pytest.raises(ProviderUnavailable) as refused:
        provider.request_password_reset("alice")
    kind = "IP address" if tls == "ssl" else "Hostname"
    assert f"(SSLCertVerificationError: {kind} mismatch, certificate is not valid for '{HOSTS[tls]}'" in str(
        refused.value
    )
    assert_refused_unseen(provider, server, refused.value, caplog)


def test_a_server_requiring_starttls_refuses_a_plain_client(
    make_provider: MakeProvider,
    start_smtp_server: StartServer,
    tls_files: TlsFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``security: none`` to a server that requires STARTTLS: AUTH is not offered (the password stays
    here), and mail without AUTH is refused (530): ProviderUnavailable naming smtplib's error each time."""
    caplog.set_level(logging.DEBUG)
    server = tls_server(start_smtp_server, tls_files, "starttls")
    with_password = make_provider(**with_login(server, "starttls") | {"security": "none"})
    with pytest.raises(ProviderUnavailable) as no_auth:
        with_password.request_password_reset("alice")
    assert "(SMTPNotSupportedError)" in no_auth.value.message
    assert_refused_unseen(with_password, server, no_auth.value, caplog)
    anonymous = make_provider(host="localhost", port=server.port, security="none")
    with pytest.raises(ProviderUnavailable) as no_mail:
        anonymous.request_password_reset("alice")
    assert "(SMTPSenderRefused)" in no_mail.value.message  # MAIL FROM: 530 Must issue a STARTTLS command first
    assert server.received() == [] and token_rows(anonymous) == 0


def _pem_key(files: TlsFiles, tmp_path: Path) -> Path:
    return files.key  # the server's key given by mistake: PEM, but no certificate


def _damaged(files: TlsFiles, tmp_path: Path) -> Path:
    path = tmp_path / "damaged.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    return path


def _write(name: str, data: bytes) -> Callable[[TlsFiles, Path], Path]:
    def make(files: TlsFiles, tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


def _loop(files: TlsFiles, tmp_path: Path) -> Path:
    (tmp_path / "a.pem").symlink_to(tmp_path / "b.pem")
    (tmp_path / "b.pem").symlink_to(tmp_path / "a.pem")
    return tmp_path / "a.pem"


def _unreadable(files: TlsFiles, tmp_path: Path) -> Path:
    path = tmp_path / "closed.pem"
    path.write_bytes(files.ca_file.read_bytes())
    path.chmod(0)
    # Root reads any file whatever its mode: there, a path through a regular file stands in (ENOTDIR).
    return path if os.geteuid() != 0 else files.ca_file / "ca.pem"


BAD_CA_FILES: dict[str, tuple[Callable[[TlsFiles, Path], Path], str]] = {
    "missing": (lambda files, tmp: tmp / "nowhere.pem", "cannot read '{path}' (No such file or directory)"),
    "a directory": (lambda files, tmp: tmp, "'{path}' is not a file"),
    "unreadable": (_unreadable, "cannot read '{path}' ("),
    "a loop of links": (_loop, "cannot read '{path}' (Too many levels of symbolic links)"),
    "empty": (_write("empty.pem", b""), "'{path}' is not a PEM CA bundle"),
    "text": (_write("text.pem", b"not a certificate\n"), "'{path}' is not a PEM CA bundle"),
    "binary": (_write("random.der", bytes(range(256)) * 4), "'{path}' is not a PEM CA bundle"),
    "a private key": (_pem_key, "'{path}' is not a PEM CA bundle"),
    "a damaged certificate": (_damaged, "'{path}' is not a PEM CA bundle"),
}


@pytest.mark.parametrize("case", list(BAD_CA_FILES))
def test_a_bad_ca_file_is_a_config_error_naming_the_key(
    case: str, configs: Callable[..., dict[str, Any]], tls_files: TlsFiles, tmp_path: Path
) -> None:
    """Missing, unreadable, not PEM: a ConfigError at load naming ``smtp.ca_file`` and the file, not its content."""
    make, expected = BAD_CA_FILES[case]
    bad = make(tls_files, tmp_path)
    smtp = {"host": "localhost", "security": "starttls", "from_address": "a@example.org", "ca_file": str(bad)}
    with pytest.raises(ConfigError) as refused:
        AuthManager.from_config(configs(f"sqlite:///{tmp_path / 'users.db'}", delivery="smtp", smtp=smtp))
    message = refused.value.message
    assert message.startswith("<dict>, at providers[0].config.smtp.ca_file: "), message
    assert expected.format(path=bad) in message
    if case == "a private key":
        assert "PRIVATE KEY" not in message and tls_files.key.read_text().splitlines()[1] not in message


def test_a_bad_ca_file_in_a_file_is_located_and_a_ca_needs_tls(tmp_path: Path, tls_files: TlsFiles) -> None:
    """From YAML the error names file and line; ``ca_file`` with ``security: none`` is refused too."""
    config = tmp_path / "auth.yml"
    config.write_text(
        "tokens: {secret: a-test-secret-that-is-long-enough-0123456789}\n"
        "providers:\n"
        "  - name: users\n"
        "    type: local\n"
        "    config:\n"
        f"      database_url: sqlite:///{tmp_path / 'users.db'}\n"
        "      delivery: smtp\n"
        "      smtp:\n"
        "        host: localhost\n"
        "        from_address: auth@example.org\n"
        f"        ca_file: {tmp_path / 'missing.pem'}\n"
    )
    with pytest.raises(ConfigError) as missing:
        AuthManager.from_file(config)
    assert f"{config}, line 11, at providers[0].config.smtp.ca_file: cannot read" in missing.value.message
    config.write_text(
        config.read_text().replace(str(tmp_path / "missing.pem"), str(tls_files.ca_file)) + "        security: none\n"
    )
    with pytest.raises(ConfigError) as plain:
        AuthManager.from_file(config)
    assert ", at providers[0].config.smtp: ca_file is used only with security: starttls or ssl" in plain.value.message
