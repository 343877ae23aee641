"""A throwaway OpenLDAP ``slapd`` for tests: :class:`SlapdServer`.

Importable by host applications and third parties (``from auth_ldap.testing import
SlapdServer``); it needs the Debian packages ``slapd`` and ``ldap-utils``
(``apt-get install slapd ldap-utils``) and ``openssl`` for the TLS certificates.

The server writes ``slapd.conf``, a throwaway CA and server certificate, and an mdb
database into its own directory, listens on free loopback ports (``ldap://`` with
StartTLS and ``ldaps://``), loads LDIF through ``ldapadd`` as the rootdn (so the
``memberof`` overlay sees the data), also listens on a local socket (``ldapi://``), and is
stopped by its process id. ``pause()`` and
``resume()`` (SIGSTOP/SIGCONT) turn it into a black hole that accepts connections and
never answers, for timeout tests.

The default data (:data:`DEFAULT_LDIF`) has users whose names hold a comma,
parentheses, ``+``, a leading ``#`` and non-ASCII characters, a user without a
password, ``groupOfNames``/``groupOfUniqueNames``/``posixGroup`` groups, nested groups
(with a cycle and a chain deeper than the default nesting limit), a read-only service
account ``cn=reader`` (searches everything, reads no password) and a writer account
``cn=writer``. The server runs with ``allow bind_anon_dn``, so a bind with a DN and an
empty password succeeds as anonymous at the server: clients must refuse it themselves.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from authcore.testing.ports import free_port
from authcore.testing.processes import stop_process

__all__ = [
    "SlapdServer",
    "SlapdError",
    "SlapdNotFound",
    "DEFAULT_LDIF",
    "USERS",
    "LOAD_USERS",
    "ssha",
    "free_port",
    "BlackHole",
    "INSTALL_HINT",
    "mail_local",
]

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
LDAPMODIFY = "/usr/bin/ldapmodify"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
INSTALL_HINT = "apt-get install slapd ldap-utils"

SUFFIX = "dc=example,dc=org"

#: Test users: login → (DN under ou=people, password or None, extra LDIF lines).
USERS: dict[str, tuple[str, str | None]] = {
    "alice": ("uid=alice", "alice-pw"),
    "bob": ("uid=bob", "bob-pw"),
    "john.doe": ("cn=Doe\\, John (EXT)", "john-pw"),
    "jose": ("cn=José Müller", "pässwörd-ü"),
    "plus+one": ("uid=plus\\+one", "plus-pw"),
    "#hash": ("uid=\\#hash", "hash-pw"),
    "paren(thesis)": ("uid=paren(thesis)", "paren-pw"),
    "zoë": ("uid=zoë", "zoë-pw"),
    "nopw": ("uid=nopw", None),
}

#: Number of extra users ``u000`` … for load tests (password ``<login>-pw``).
LOAD_USERS = 40


class SlapdError(RuntimeError):
    """slapd could not be set up, started or fed."""


class SlapdNotFound(SlapdError):
    """The slapd/ldap-utils binaries are missing."""


def ssha(password: str) -> str:
    """An ``{SSHA}`` userPassword value for *password* (its UTF-8 bytes), as slappasswd makes."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def mail_local(login: str) -> str:
    """The local part of a test user's e-mail address (ASCII letters, digits, ``.+-`` of the login)."""
    return re.sub(r"[^A-Za-z0-9.+-]", "", login)


def _b64(name: str, value: str) -> str:
    """An LDIF line; base64 for non-ASCII values (always valid LDIF)."""
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _user(login: str, rdn: str, password: str | None, given: str, family: str, extra: Iterable[str] = ()) -> str:
    dn = f"{rdn},ou=people,{SUFFIX}"
    cn = f"{given} {family}"
    if rdn.startswith("cn="):
        cn = rdn[3:].replace("\\,", ",")
    lines = [
        _b64("dn", dn),
        "objectClass: inetOrgPerson",
        _b64("uid", login),
        _b64("cn", cn),
        _b64("givenName", given),
        _b64("sn", family),
        _b64("displayName", cn),
        _b64("mail", f"{mail_local(login)}@example.org"),
    ]
    if password is not None:
        lines.append(_b64("userPassword", password if login == "bob" else ssha(password)))  # bob: cleartext
    lines.extend(extra)
    return "\n".join(lines) + "\n"


def _group(cn: str, members: Iterable[str], object_class: str = "groupOfNames", attr: str = "member") -> str:
    lines = [
        _b64("dn", f"cn={cn},ou=groups,{SUFFIX}"),
        f"objectClass: {object_class}",
        _b64("cn", cn.replace("\\,", ",")),
    ]
    if object_class == "posixGroup":
        lines.append(f"gidNumber: {5000 + sum(map(ord, cn))}")
    lines += [_b64(attr, m) for m in members]
    return "\n".join(lines) + "\n"


def _people(login: str) -> str:
    return f"{USERS[login][0]},ou=people,{SUFFIX}"


def _grp(cn: str) -> str:
    return f"cn={cn},ou=groups,{SUFFIX}"


def _default_ldif(reader_password: str, writer_password: str) -> str:
    names = {
        "alice": ("Alice", "Smith"),
        "bob": ("Bob", "Jones"),
        "john.doe": ("John", "Doe"),
        "jose": ("José", "Müller"),
        "plus+one": ("Plus", "One"),
        "#hash": ("Hash", "Tag"),
        "paren(thesis)": ("Paren", "Thesis"),
        "zoë": ("Zoë", "Ångström"),
        "nopw": ("No", "Password"),
    }
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n",
        f"dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\n"
        "cn: default\npwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0\n",
        f"dn: cn=reader,{SUFFIX}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: reader\nuserPassword: {ssha(reader_password)}\n",
        f"dn: cn=writer,{SUFFIX}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: writer\nuserPassword: {ssha(writer_password)}\n",
    ]
    for login, (rdn, password) in USERS.items():
        parts.append(_user(login, rdn, password, *names[login]))
    for index in range(LOAD_USERS):
        login = f"u{index:03d}"
        parts.append(_user(login, f"uid={login}", f"{login}-pw", "User", f"Number{index}"))
    parts += [
        _group("admins", [_people("alice")]),
        _group("staff", [_people("alice"), _people("john.doe")]),
        _group("all-staff", [_grp("staff")]),
        _group("Sales\\, EMEA (intl)", [_people("john.doe"), _people("jose")]),
        _group("auditors", [_people("bob")], "groupOfUniqueNames", "uniqueMember"),
        _group("developers", ["alice", "bob"], "posixGroup", "memberUid"),
        _group("ops", ["bob", "#hash"], "posixGroup", "memberUid"),
        # A cycle: loop-a ∋ loop-b ∋ loop-a, and zoë in loop-a.
        _group("loop-a", [_people("zoë"), _grp("loop-b")]),
        _group("loop-b", [_grp("loop-a")]),
        # A chain: level1 ∋ plus+one, level2 ∋ level1, … level5 ∋ level4.
        _group("level1", [_people("plus+one")]),
        *(_group(f"level{n}", [_grp(f"level{n - 1}")]) for n in range(2, 6)),
        _group("loadtest", [f"uid=u{i:03d},ou=people,{SUFFIX}" for i in range(LOAD_USERS)]),
    ]
    return "\n".join(parts)


#: The default data with placeholder service passwords (see :meth:`SlapdServer.ldif`).
DEFAULT_LDIF = "(generated per server by SlapdServer.default_ldif())"

_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
pidfile  {dir}/slapd.pid
modulepath {modules}
moduleload back_mdb
moduleload memberof
moduleload ppolicy
{tls}
{allow}

database mdb
suffix   "{suffix}"
rootdn   "cn=admin,{suffix}"
rootpw   {admin_pw}
directory {dir}/db
maxsize  67108864
index objectClass eq
index uid,cn,mail,member,uniqueMember,memberUid eq

access to attrs=userPassword
    by dn.exact="cn=writer,{suffix}" write
    by self =xw
    by anonymous auth
    by * none
access to dn.subtree="ou=people,{suffix}"
    by dn.exact="cn=writer,{suffix}" write
    by dn.exact="cn=reader,{suffix}" read
    by users read
    by * none
access to dn.subtree="ou=groups,{suffix}"
    by dn.exact="cn=writer,{suffix}" write
    by dn.exact="cn=reader,{suffix}" read
    by users read
    by * none
access to *
    by dn.exact="cn=writer,{suffix}" read
    by dn.exact="cn=reader,{suffix}" read
    by users read
    by * none

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay ppolicy
ppolicy_default "cn=default,ou=policies,{suffix}"
"""


_RUNNING: weakref.WeakSet[SlapdServer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """Stop servers a crashed or interrupted test run did not close (slapd would outlive it)."""
    for server in list(_RUNNING):
        server.stop()


class SlapdServer:
    """One throwaway slapd: own directory, free loopback ports, TLS, test data.

    Use as a context manager or call :meth:`start` and :meth:`close`. The ports are
    kept across :meth:`restart`, so URIs handed out stay valid.
    """

    suffix = SUFFIX
    admin_dn = f"cn=admin,{SUFFIX}"
    reader_dn = f"cn=reader,{SUFFIX}"
    writer_dn = f"cn=writer,{SUFFIX}"
    people_dn = f"ou=people,{SUFFIX}"
    groups_dn = f"ou=groups,{SUFFIX}"

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        tls: bool = True,
        allow_bind_anon_dn: bool = True,
        load_default_data: bool = True,
        debug: str = "none",
    ) -> None:
        self._own_dir = directory is None
        self.dir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="slapd-"))
        self.tls = tls
        self.allow_bind_anon_dn = allow_bind_anon_dn
        self.load_default_data = load_default_data
        self.debug = debug
        self.admin_password = "admin-" + secrets.token_hex(8)
        self.reader_password = "reader-" + secrets.token_hex(8)
        self.writer_password = "writer-" + secrets.token_hex(8)
        self.port = 0
        self.ldaps_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = self.dir / "slapd.log"
        self._configured = False

    # ------------------------------------------------------------------ facts

    @property
    def uri(self) -> str:
        """``ldap://127.0.0.1:<port>`` (StartTLS is offered there when TLS is on)."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        """``ldaps://127.0.0.1:<port>`` (only with ``tls=True``)."""
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldapi_uri(self) -> str:
        """``ldapi://<percent-encoded socket path>``: the same server on a local socket."""
        return "ldapi://" + quote(str(self.dir / "ldapi"), safe="")

    @property
    def ca_file(self) -> Path:
        """The throwaway CA that signed the server certificate."""
        return self.dir / "tls" / "ca.crt"

    @property
    def pid(self) -> int | None:
        """slapd's process id while it runs, else None."""
        return self.process.pid if self.process is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether slapd is alive (paused counts as running)."""
        return self.process is not None and self.process.poll() is None

    def provider_config(self, *, writer: bool = False, **overrides: Any) -> dict[str, Any]:
        """The ``config`` of an ``ldap`` provider for this server: search as the reader account
        then bind as the user; with *writer*, user management as the writer account. *overrides*
        replace or add keys (``timeout=2``)."""
        config: dict[str, Any] = {
            "uri": self.uri,
            "base_dn": self.people_dn,
            "group_base_dn": self.groups_dn,
            "bind_dn": self.reader_dn,
            "bind_password": self.reader_password,
        }
        if writer:
            config.update(writer_dn=self.writer_dn, writer_password=self.writer_password)
        config.update(overrides)
        return config

    def dn(self, login: str) -> str:
        """The DN of a test user, as written in the LDIF."""
        if login in USERS:
            return _people(login)
        return f"uid={login},{self.people_dn}"

    # ------------------------------------------------------------------ setup

    @staticmethod
    def check_installed() -> None:
        """Raise :class:`SlapdNotFound` (saying what to install) unless slapd and ldap-utils are there."""
        missing = [p for p in (SLAPD, LDAPADD, LDAPMODIFY) if not os.access(p, os.X_OK)]
        if missing:
            raise SlapdNotFound(f"{', '.join(missing)} not found: install them with `{INSTALL_HINT}`")
        if shutil.which("openssl") is None:
            raise SlapdNotFound("openssl not found: install it with `apt-get install openssl`")

    def _make_tls(self) -> None:
        tls = self.dir / "tls"
        tls.mkdir(exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True, timeout=60)

        run(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Throwaway Test CA",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", "ca.key", "-out", "ca.crt",
        )  # fmt: skip
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
        (tls / "server.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
        )
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "server.ext", "-out", "server.crt")  # fmt: skip

    def make_other_ca(self) -> Path:
        """A second, unrelated CA certificate (for wrong-CA tests)."""
        other = self.dir / "other-ca"
        other.mkdir(exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Other CA",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", "ca.key", "-out", "ca.crt"],
            cwd=other, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return other / "ca.crt"

    def _configure(self) -> None:
        self.check_installed()
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.tls:
            self._make_tls()
            tls = (
                f"TLSCACertificateFile {self.dir}/tls/ca.crt\n"
                f"TLSCertificateFile {self.dir}/tls/server.crt\n"
                f"TLSCertificateKeyFile {self.dir}/tls/server.key"
            )
        (self.dir / "slapd.conf").write_text(
            _CONF.format(
                schema=SCHEMA_DIR,
                modules=MODULE_DIR,
                dir=self.dir,
                tls=tls,
                allow="allow bind_anon_dn" if self.allow_bind_anon_dn else "",
                suffix=self.suffix,
                admin_pw=self.admin_password,
            )
        )
        self._configured = True

    def default_ldif(self) -> str:
        """The default test data, with this server's service-account passwords."""
        return _default_ldif(self.reader_password, self.writer_password)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlapdServer:
        """Configure (first time), start and wait until slapd accepts connections; load the data once."""
        first = not self._configured
        if first:
            self._configure()
        fresh_ports = self.port == 0
        for _attempt in range(5):
            if fresh_ports:
                self.port = free_port()
                self.ldaps_port = free_port() if self.tls else 0
            if self._spawn():
                break
            time.sleep(0.05)
        else:
            raise SlapdError(f"slapd did not start; log {self.log_file}:\n{self.log_text()[-2000:]}")
        _RUNNING.add(self)
        if first and self.load_default_data:
            self.add_ldif(self.default_ldif())
        return self

    def _spawn(self) -> bool:
        urls = self.uri + "/ " + self.ldapi_uri + "/"
        if self.tls:
            urls += " " + self.ldaps_uri + "/"
        with open(self.log_file, "ab") as log, open(os.devnull, "rb") as devnull:
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(self.dir / "slapd.conf"), "-h", urls, "-d", self.debug],
                stdin=devnull,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.01)
        self.stop()
        return False

    def stop(self) -> None:
        """SIGTERM slapd by its pid (resuming it first if paused) and wait for it to exit."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def restart(self) -> None:
        """Stop and start again on the same ports and data."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, slapd never answers.

        Returns once every slapd thread is stopped: ``kill`` returns before the signal has
        stopped a thread that is running on another core, which could still answer a request
        sent right after it (seen on a loaded machine).
        """
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGSTOP)
        tasks = Path(f"/proc/{self.process.pid}/task")
        deadline = time.monotonic() + 10
        while not _all_stopped(tasks):
            if time.monotonic() > deadline:
                raise RuntimeError("slapd did not stop after SIGSTOP")
            time.sleep(0.001)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop slapd and remove its directory (if this object made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SlapdServer:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def log_text(self) -> str:
        """What slapd wrote to its log."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ data

    def _tool(self, tool: str, ldif: str, *extra: str) -> None:
        path = self.dir / f"input-{secrets.token_hex(4)}.ldif"
        path.write_text(ldif)
        try:
            result = subprocess.run(
                [tool, "-x", "-H", self.uri, "-D", self.admin_dn, "-w", self.admin_password, *extra, "-f", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            path.unlink(missing_ok=True)
        if result.returncode != 0:
            raise SlapdError(f"{Path(tool).name} failed ({result.returncode}): {result.stderr.strip()}")

    def add_ldif(self, ldif: str) -> None:
        """``ldapadd`` *ldif* as the rootdn."""
        self._tool(LDAPADD, ldif)

    def modify_ldif(self, ldif: str) -> None:
        """``ldapmodify`` *ldif* (changetype records) as the rootdn."""
        self._tool(LDAPMODIFY, ldif)

    def __repr__(self) -> str:
        return f"<SlapdServer {self.uri} pid={self.pid}>"


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections (kernel backlog) and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]

    @property
    def uri(self) -> str:
        """``ldap://127.0.0.1:<port>``."""
        return f"ldap://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _all_stopped(tasks: Path) -> bool:
    """Whether every thread under ``/proc/<pid>/task`` is stopped (state ``T``) or gone."""
    for stat_file in tasks.glob("*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        # The state follows the command name, which is in parentheses and may hold spaces.
        if text[text.rindex(")") + 2] not in "Tt":
            return False
    return True
