"""Real servers for tests: PostgreSQL, and an SMTP server that keeps what it receives.

SMTP: aiosmtpd on a free loopback port, plain, with STARTTLS or with implicit TLS, its
certificate from :func:`make_test_ca` (a throwaway CA made with ``cryptography``).

PostgreSQL: Debian's ``postgresql`` on a free loopback port, stopped by its pid.

:func:`start_postgres` runs ``initdb`` (password authentication over TCP, a superuser
``authcore`` with a random password) and ``postgres`` listening on 127.0.0.1 and on a unix
socket in the server's own directory, waits until it accepts a login, and returns a
:class:`PostgresServer`. :meth:`PostgresServer.create_database` hands each test an empty
database of its own.

PostgreSQL refuses to run as root. Run as root (CI is), the server runs as the ``postgres``
account that Debian's package creates, in a private directory owned by it (pytest's own
temporary directories are closed to other users); otherwise it runs as the caller, in the
given directory. A missing PostgreSQL is an error naming the package: the tests that need
it fail, never skip.
"""

from __future__ import annotations

import email
import email.policy
import glob
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

from authcore.testing.processes import stop_process
from authcore.testing.servers import free_port
from authcore.testing.tls import TlsFiles, make_test_ca

__all__ = [
    "POSTGRES_BIN",
    "INSTALL_HINT",
    "PostgresError",
    "PostgresServer",
    "start_postgres",
    "SmtpSink",
    "SmtpError",
    "ReceivedMail",
    "SmtpTls",
    "start_smtp",
    "TlsFiles",
    "make_test_ca",
]

#: Where Debian puts the server programs (``/usr/lib/postgresql/<version>/bin``): the newest
#: installed version, or ``AUTHCORE_POSTGRES_BIN``.
POSTGRES_BIN: Final = os.environ.get("AUTHCORE_POSTGRES_BIN") or next(
    iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)),
    "/usr/lib/postgresql/15/bin",
)
INSTALL_HINT: Final = "apt-get install postgresql"
#: The account the server runs as when the caller is root.
SYSTEM_USER: Final = "postgres"
#: Bounds on waiting for the server: not timed assertions.
_STARTUP_BOUND: Final = 60.0
_STOP_BOUND: Final = 20.0
#: The superuser initdb creates.
SUPERUSER: Final = "authcore"


class PostgresError(RuntimeError):
    """PostgreSQL is missing or did not start (the message says which, and what to install)."""


class PostgresServer:
    """One throwaway PostgreSQL cluster: a directory, a port on 127.0.0.1, a superuser with a password."""

    def __init__(self, directory: Path, port: int, *, private: bool) -> None:
        self.directory = directory
        self.port = port
        self.password = secrets.token_urlsafe(18)
        self._private = private  # our own temporary directory, removed by close()
        self._process: subprocess.Popen[bytes] | None = None
        self._account = pwd.getpwnam(SYSTEM_USER) if os.geteuid() == 0 else None

    def __repr__(self) -> str:  # no password
        return f"PostgresServer(port={self.port}, pid={self.pid}, running={self.running})"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        """What the server printed."""
        return self.directory / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs, else None."""
        return self._process.pid if self._process is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self._process is not None and self._process.poll() is None

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for *database*, with the superuser's password."""
        return f"postgresql+psycopg://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def initdb(self) -> None:
        """Create the cluster (once)."""
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._account is not None:
            os.chown(pwfile, self._account.pw_uid, self._account.pw_gid)
        pwfile.chmod(0o600)
        command = [
            f"{POSTGRES_BIN}/initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, cwd=self.directory, capture_output=True, **self._run_as())  # type: ignore[call-overload]
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PostgresError(f"initdb failed:\n{done.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        """Start the postmaster and wait until the superuser can log in over TCP."""
        if self.running:
            raise PostgresError("postgres is running already")
        command = [
            f"{POSTGRES_BIN}/postgres", "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.directory),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200",
        ]  # fmt: skip
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(  # type: ignore[call-overload]
                command, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **self._run_as()
            )
        deadline = time.monotonic() + _STARTUP_BOUND
        while not self._accepts_login():
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                self.stop()
                raise PostgresError(f"postgres did not start:\n{tail}")
            time.sleep(0.05)

    def _accepts_login(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url("postgres").replace("+psycopg", ""), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named *name*, or a random name); its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database *name*, closing whatever connections it still has."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by pid, SIGKILL if it lingers; reaped."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, shutdown=signal.SIGINT, bound=_STOP_BOUND)

    def close(self) -> None:
        """Stop the server and remove the private directory, if it made one."""
        self.stop()
        if self._private:
            shutil.rmtree(self.directory, ignore_errors=True)


def check_installed() -> None:
    """:class:`PostgresError` unless ``initdb`` and ``postgres`` are there (and, as root, the account)."""
    for program in ("initdb", "postgres"):
        if not os.access(f"{POSTGRES_BIN}/{program}", os.X_OK):
            raise PostgresError(f"{POSTGRES_BIN}/{program} is missing: {INSTALL_HINT}")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresError(
                f"running as root needs the {SYSTEM_USER!r} account that {INSTALL_HINT} creates"
            ) from None


def start_postgres(directory: str | os.PathLike[str]) -> PostgresServer:
    """Initialise and start a PostgreSQL cluster on a free loopback port (see the module's docstring)."""
    check_installed()
    if os.geteuid() == 0:
        # The server's account must reach its files: a directory of its own, outside pytest's private tree.
        path = Path(tempfile.mkdtemp(prefix="authcore-postgres-"))
        account = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, account.pw_uid, account.pw_gid)
        private = True
    else:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        private = False
    server = PostgresServer(path, free_port(), private=private)
    try:
        server.initdb()
        server.start()
    except BaseException:
        server.close()
        raise
    return server


# ---------------------------------------------------------------- a real SMTP server


@dataclass(frozen=True)
class ReceivedMail:
    """One message the :class:`SmtpSink` accepted."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str = field(repr=False)  # holds tokens


#: How the test SMTP server speaks: plain, STARTTLS (required before AUTH and MAIL) or implicit TLS.
SmtpTls = Literal["none", "starttls", "ssl"]


class SmtpSink:
    """aiosmtpd on a free 127.0.0.1 port (its own thread and event loop), keeping what it receives.

    With *username* and *password* the server offers AUTH LOGIN/PLAIN and refuses any other
    pair. *tls* ``starttls`` makes it require STARTTLS before anything but EHLO/HELO, NOOP, QUIT
    (AUTH is offered only after it); ``ssl`` speaks TLS from the first byte. Both need the PEM
    *certificate* and *key* (:func:`make_test_ca`). ``pip install 'auth-local[test]'`` brings aiosmtpd.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: SmtpTls = "none",
        certificate: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"tls is 'none', 'starttls' or 'ssl', not {tls!r}")
        if tls != "none" and (certificate is None or key is None):
            raise ValueError(f"tls={tls!r} needs a certificate and its key (make_test_ca)")
        self.port = free_port()
        self.tls = tls
        self.messages: list[ReceivedMail] = []
        self.logins: list[str] = []
        #: Every login name an AUTH command carried, accepted or not: proof that a password was sent.
        self.attempts: list[str] = []
        self._credentials = (username, password) if username is not None else None
        self._certificate: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None
        if tls != "none" and certificate is not None and key is not None:
            self._certificate = (certificate, key)
        self._lock = threading.Lock()
        self._controller: Any = None

    def __repr__(self) -> str:  # no password
        running = self._controller is not None
        return f"SmtpSink(port={self.port}, tls={self.tls!r}, messages={len(self.messages)}, running={running})"

    def _server_context(self) -> ssl.SSLContext | None:
        if self._certificate is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # no client certificates asked
        try:
            context.load_cert_chain(*self._certificate)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise SmtpError(f"the certificate or key cannot be loaded ({type(exc).__name__}: {exc})") from None
        return context

    def start(self) -> None:
        """Listen; returns once the server answers."""
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult
        except ImportError:
            raise SmtpError(f"aiosmtpd is missing: {SMTP_INSTALL_HINT}") from None
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd names the hook
                parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                body = parsed.get_body(preferencelist=("plain",)) if isinstance(parsed, EmailMessage) else None
                mail = ReceivedMail(
                    sender=envelope.mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    subject=str(parsed["Subject"] or ""),
                    text=body.get_content() if body is not None else "",
                )
                with sink._lock:
                    sink.messages.append(mail)
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            login = getattr(data, "login", b"") or b""
            password = getattr(data, "password", b"") or b""
            given = (login.decode(errors="replace"), password.decode(errors="replace"))
            ok = self._credentials is not None and given == self._credentials
            with self._lock:
                self.attempts.append(given[0])
                if ok:
                    self.logins.append(given[0])
            return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535

        context = self._server_context()
        options: dict[str, Any] = {}
        if self.tls == "starttls":
            options = {"tls_context": context, "require_starttls": True}
        elif self.tls == "ssl":
            options = {"ssl_context": context}  # the Controller wraps the listening socket
        if self._credentials is not None:
            # AUTH only after STARTTLS, as a real server would; plain: loopback only. aiosmtpd 1.4
            # cannot see implicit TLS and would refuse AUTH there (aio-libs/aiosmtpd#281), hence off.
            options |= {"authenticator": authenticate, "auth_require_tls": self.tls == "starttls"}
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (idempotent); what was received stays readable."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def received(self) -> list[ReceivedMail]:
        """A copy of the messages so far."""
        with self._lock:
            return list(self.messages)


class SmtpError(RuntimeError):
    """The test SMTP server could not start (aiosmtpd missing, the port taken, a bad certificate)."""


SMTP_INSTALL_HINT: Final = "pip install 'auth-local[test]'"


def start_smtp(
    *,
    username: str | None = None,
    password: str | None = None,
    tls: SmtpTls = "none",
    certificate: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
) -> SmtpSink:
    """A started :class:`SmtpSink` (see it for the arguments)."""
    sink = SmtpSink(username=username, password=password, tls=tls, certificate=certificate, key=key)
    sink.start()
    return sink
