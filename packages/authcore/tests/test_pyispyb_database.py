"""ISPyB's Person and permission tables through SQLAlchemy (authcore.compat.ispyb_db).

Every test runs on SQLite and on a real MariaDB (Debian's mariadb-server, started here on a
free loopback port in a temporary data directory, driven through PyMySQL), with ISPyB's own
table definitions from ispyb-models. The permission data is the seed's: groups Admin and user,
``UserGroup_has_Permission`` {Admin: all_proposals, all_sessions; user: own_proposals, own_sessions}.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy

from authcore import AuthManager
from authcore.compat.ispyb_db import IspybDatabase
from authcore.errors import ConfigError, InvalidCredentials, ProviderUnavailable
from authcore.testing.processes import stop_process
from authcore.testing.servers import free_port

SECRET = "py-ispyb-and-authcore-share-this-secret"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
#: How long MariaDB may take to accept connections before the fixture gives up (a bound, not a measurement).
STARTUP_BOUND = 120.0

# ispyb-models' mappers warn under SQLAlchemy 2.1 (overlapping relationships of tables we never use).
pytestmark = pytest.mark.filterwarnings(
    "ignore::sqlalchemy.exc.SAWarning", "ignore::sqlalchemy.exc.SADeprecationWarning"
)


@dataclass
class MariaDB:
    """A running mariadbd: its port and process."""

    port: int
    process: subprocess.Popen[bytes]
    _names: Iterator[int] = field(default_factory=itertools.count)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL (PyMySQL)."""
        name = f"ispyb_{next(self._names)}"
        engine = sqlalchemy.create_engine(f"mysql+pymysql://root@127.0.0.1:{self.port}/")
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}"


def _ready(port: int) -> bool:
    import pymysql

    try:
        pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
    except pymysql.err.OperationalError:
        return False
    return True


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """mariadbd on a free loopback port, data in a temporary directory, no grant tables; stopped by pid."""
    base = tmp_path_factory.mktemp("mariadb")
    data = base / "data"
    as_root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root without it
    install = [INSTALL_DB, "--no-defaults", f"--datadir={data}", "--skip-test-db"]
    subprocess.run([*install, "--auth-root-authentication-method=normal", *as_root], check=True, capture_output=True)
    port = free_port()
    log = base / "error.log"
    files = [f"--datadir={data}", f"--socket={base / 'mysqld.sock'}", f"--pid-file={base / 'mysqld.pid'}"]
    network = [f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve"]
    process = subprocess.Popen(
        [MARIADBD, "--no-defaults", *files, *network, "--skip-grant-tables", f"--log-error={log}", *as_root],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_BOUND
        while not _ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log.exists() else "(no log)"
                raise RuntimeError(f"mariadbd did not start:\n{tail}")
            time.sleep(0.1)
        yield MariaDB(port, process)
    finally:
        stop_process(process, bound=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IspybDatabase]:
    """ISPyB's tables with the seed's permissions, on each backend; a fresh database per test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ispyb.db'}"
    else:
        url = request.getfixturevalue("mariadb").new_database()
    db = IspybDatabase(url)
    db.create_schema()
    db.grant("Admin", ["all_proposals", "all_sessions"])
    db.grant("user", ["own_proposals", "own_sessions"])
    yield db
    db.close()


class Site:
    """A py-ispyb plugin: any password ``pw`` passes; the Person carries the names of the directory."""

    def authenticate_by_login(self, login: str, password: str) -> Any:
        from ispyb import models

        if password != "pw":
            return None
        return models.Person(login=login, givenName="Marie", familyName="Curie", emailAddress=f"{login}@example.org")


CONFIG = {
    "tokens": {"secret": SECRET, "profile": "pyispyb"},
    "providers": [
        {"name": "site", "class": f"{__name__}:Site"},
        {"name": "pyispyb", "class": "authcore.compat.pyispyb:PyIspybTokens", "config": {"secret": SECRET}},
    ],
}


def manager_with(db: IspybDatabase, *, create: bool = False) -> AuthManager:
    """A manager whose configuration names the database (``permissions.ispyb``), as a site writes it."""
    url = db.engine.url.render_as_string(hide_password=False)
    return AuthManager.from_config(
        {**CONFIG, "permissions": {"ispyb": {"url": url, "create_person_on_missing": create}}}
    )


def person_rows(db: IspybDatabase, login: str) -> list[tuple[Any, ...]]:
    with db.engine.connect() as connection:
        query = "SELECT personId, givenName, familyName, emailAddress FROM Person WHERE login = :login"
        return [tuple(row) for row in connection.execute(sqlalchemy.text(query), {"login": login})]


def test_a_login_needs_a_person_and_gets_its_groups_permissions(database: IspybDatabase) -> None:
    person_id = database.add_person("marie", groups=["user"])
    database.add_person("admin", groups=["Admin", "user"])
    with manager_with(database) as manager:
        with pytest.raises(InvalidCredentials) as refused:
            manager.login("site", login="nobody", password="pw")  # no Person row: refused, as py-ispyb does
        assert str(refused.value) == "invalid login or password"
        result = manager.login("site", login="marie", password="pw")
        assert result.permissions == ("own_proposals", "own_sessions")
        assert result.identity.attributes == {"personId": person_id}
        claims = jwt.decode(result.access_token, SECRET, algorithms=["HS256"])  # as py-ispyb decodes it
        assert (claims["login"], claims["personId"], claims["username"]) == ("marie", person_id, "marie")
        admin = manager.login("site", login="admin", password="pw")
        assert admin.permissions == ("all_proposals", "all_sessions", "own_proposals", "own_sessions")
        # Permissions are worked out again at refresh: a permission granted since shows up.
        database.grant("user", ["own_samples"])
        assert "own_samples" in manager.refresh(result.refresh_token).permissions
    assert person_rows(database, "nobody") == []


def test_auto_create_makes_one_person_from_the_plugins_names(database: IspybDatabase) -> None:
    with manager_with(database, create=True) as manager:
        first = manager.login("site", login="pierre", password="pw")
        rows = person_rows(database, "pierre")
        assert [row[1:] for row in rows] == [("Marie", "Curie", "pierre@example.org")]
        assert first.identity.attributes["personId"] == rows[0][0]
        assert first.permissions == ()  # a new Person is in no group yet, as in py-ispyb
        second = manager.login("site", login="pierre", password="pw")
        assert second.identity.attributes["personId"] == rows[0][0] and len(person_rows(database, "pierre")) == 1


def test_groups_a_token_names_map_through_user_group_has_permission(database: IspybDatabase) -> None:
    now = int(time.time())
    minted = jwt.encode(
        {"username": "ext", "groups": ["Admin"], "permissions": [], "iat": now, "exp": now + 60}, SECRET, "HS256"
    )
    with manager_with(database) as manager:
        assert manager.verify(minted).permissions == {"all_proposals", "all_sessions"}


def test_a_database_that_cannot_answer_fails_the_login_without_leaking(caplog: pytest.LogCaptureFixture) -> None:
    manager = AuthManager.from_config(CONFIG)
    down = IspybDatabase(
        f"mysql+pymysql://root:db-password@127.0.0.1:{free_port()}/ispyb", connect_args={"connect_timeout": 2}
    )
    manager.plugins.register(down)
    assert "db-password" not in repr(down)
    with manager, caplog.at_level(logging.DEBUG):
        with pytest.raises(ProviderUnavailable) as failed:
            manager.login("site", login="marie", password="pw")
        assert "db-password" not in str(failed.value) and "db-password" not in caplog.text
        assert "OperationalError" in caplog.text
    down.close()


def test_the_database_from_a_file_reads_py_ispybs_variable(
    database: IspybDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``url: ${SQLALCHEMY_DATABASE_URI}``: the variable py-ispyb itself reads; closed with the manager."""
    database.add_person("marie", groups=["user"])
    monkeypatch.setenv("SQLALCHEMY_DATABASE_URI", database.engine.url.render_as_string(hide_password=False))
    path = tmp_path / "authcore.yml"
    path.write_text(
        "tokens: {secret: " + SECRET + "}\n"
        "providers: [{name: site, class: '" + __name__ + ":Site'}]\n"
        "permissions:\n  ispyb: {url: '${SQLALCHEMY_DATABASE_URI}'}\n",
        encoding="utf-8",
    )
    manager = AuthManager.from_file(path)
    plugin = manager.plugins.get_plugin("ispyb-database")
    assert isinstance(plugin, IspybDatabase)
    assert manager.login("site", login="marie", password="pw").permissions == ("own_proposals", "own_sessions")
    manager.close()
    assert plugin.engine.pool.checkedout() == 0


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "nosuchdialect://user:db-Secret-9@host/db", "mysql+nosuchdriver://user:db-Secret-9@h/db", "\x00"],
)
def test_a_bad_database_url_is_a_located_config_error(url: str, tmp_path: Path) -> None:
    path = tmp_path / "authcore.yml"
    path.write_text(
        "providers: [{name: site, class: '"
        + __name__
        + ":Site'}]\npermissions:\n  ispyb:\n    url: "
        + repr(url)
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        AuthManager.from_file(path)
    message = str(refused.value)
    assert "permissions" in message and "ispyb" in message and "db-Secret-9" not in message
