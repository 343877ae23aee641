"""py-ispyb's permission tables in SQL: UserGroup, Permission, UserGroup_has_Permission.

:class:`SQLPermissionStore` is a plugin: its ``authcore_permissions`` hook grants an
identity the permissions of every ``UserGroup`` it belongs to. Membership comes from
the identity's groups and roles (an LDAP group, a Keycloak role) and, where the
database has them, py-ispyb's ``Person`` / ``UserGroup_has_Person`` tables (groups
managed in the database, as py-ispyb's KeycloakDBGroups plugin does).

Enable it with ``permissions: {store: "sqlite:////absolute/path/to/permissions.db"}`` (four
slashes: an absolute path; three are relative to the working directory).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .hookspecs import hookimpl
from .models import Identity

if TYPE_CHECKING:
    import pluggy

    from .config.schema import AuthcoreConfig

__all__ = ["SQLPermissionStore", "SCHEMA", "register_permission_stores"]

#: The three tables of py-ispyb (column names as in the ISPyB schema), and its Person link.
SCHEMA = """
CREATE TABLE IF NOT EXISTS UserGroup (
    userGroupId INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(31) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS Permission (
    permissionId INTEGER PRIMARY KEY AUTOINCREMENT,
    type VARCHAR(15) NOT NULL UNIQUE,
    description VARCHAR(100)
);
CREATE TABLE IF NOT EXISTS UserGroup_has_Permission (
    userGroupId INTEGER NOT NULL REFERENCES UserGroup(userGroupId) ON DELETE CASCADE,
    permissionId INTEGER NOT NULL REFERENCES Permission(permissionId) ON DELETE CASCADE,
    PRIMARY KEY (userGroupId, permissionId)
);
"""


class SQLPermissionStore:
    """Permissions from py-ispyb's tables in an SQLite database (standard library ``sqlite3``).

    A file gets one connection per thread; ``":memory:"`` is one database per connection,
    so it gets exactly one, shared by every thread under a lock.
    """

    #: Queries do I/O: :meth:`AuthManager.alogin <authcore.AuthManager.alogin>` then uses a thread.
    blocking: bool = True

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        # (schema version, whether Person tables exist): re-read when the schema changes, so
        # tables created (or dropped) after the first login are seen without a restart.
        self._person_tables: tuple[int, bool] = (-1, False)
        self._memory_lock = threading.RLock()
        self._memory: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLPermissionStore:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite://:memory:``."""
        if not url.startswith("sqlite://"):
            raise ConfigError(f"permissions.store: only sqlite:// URLs are supported, not {url.split(':')[0]!r}")
        path = url[len("sqlite://") :]
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise ConfigError("permissions.store: the sqlite URL names no file")
        return cls(path)

    def _open(self) -> sqlite3.Connection:
        try:
            # check_same_thread=False only matters for the shared ":memory:" connection,
            # which is used under _memory_lock; file connections never leave their thread.
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"permissions.store: cannot open {self.path!r}: {exc}") from None
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection to a file; the one shared connection of ``":memory:"``."""
        if self.path == ":memory:":
            # A connection per thread would give each thread its own, empty, database.
            with self._memory_lock:
                if self._memory is None:
                    self._memory = self._open()
                return self._memory
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation; the shared ``":memory:"`` one is held under a lock."""
        conn = self._connection()
        if conn is self._memory:
            with self._memory_lock:
                yield conn
        else:
            yield conn

    def create_schema(self) -> None:
        """Create the three tables if they do not exist."""
        with self._using() as conn, conn:
            conn.executescript(SCHEMA)

    def grant(self, group: str, permissions: Iterable[str]) -> None:
        """Give *group* the *permissions*, creating the rows as needed (for setup and tests)."""
        with self._using() as conn, conn:
            conn.execute("INSERT OR IGNORE INTO UserGroup (name) VALUES (?)", (group,))
            for permission in permissions:
                conn.execute("INSERT OR IGNORE INTO Permission (type) VALUES (?)", (permission,))
                conn.execute(
                    "INSERT OR IGNORE INTO UserGroup_has_Permission (userGroupId, permissionId) "
                    "SELECT g.userGroupId, p.permissionId FROM UserGroup g, Permission p "
                    "WHERE g.name = ? AND p.type = ?",
                    (group, permission),
                )

    def permissions_for_groups(self, groups: Iterable[str]) -> set[str]:
        """Permissions of the named groups."""
        names = sorted(set(groups))
        if not names:
            return set()
        marks = ",".join("?" * len(names))
        with self._using() as conn:
            rows = conn.execute(
                "SELECT DISTINCT p.type FROM Permission p "
                "JOIN UserGroup_has_Permission gp ON gp.permissionId = p.permissionId "
                f"JOIN UserGroup g ON g.userGroupId = gp.userGroupId WHERE g.name IN ({marks})",
                names,
            ).fetchall()
        return {row[0] for row in rows}

    def groups_of_person(self, login: str) -> set[str]:
        """Groups linked to the ``Person`` with this login, if the database has py-ispyb's Person tables."""
        with self._using() as conn:
            if not self._has_person_tables(conn):
                return set()
            rows = conn.execute(
                "SELECT g.name FROM UserGroup g JOIN UserGroup_has_Person gp ON gp.userGroupId = g.userGroupId "
                "JOIN Person p ON p.personId = gp.personId WHERE p.login = ?",
                (login,),
            ).fetchall()
        return {row[0] for row in rows}

    def _has_person_tables(self, conn: sqlite3.Connection) -> bool:
        # PRAGMA schema_version is a counter in the database header that every schema change
        # bumps: one cheap read per call instead of scanning sqlite_master.
        version = int(conn.execute("PRAGMA schema_version").fetchone()[0])
        known_version, present = self._person_tables
        if version != known_version:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            present = {"Person", "UserGroup_has_Person"} <= tables
            self._person_tables = (version, present)
        return present

    @hookimpl
    def authcore_permissions(self, identity: Identity) -> list[str]:
        """Permissions of the identity's groups, roles and database-managed groups."""
        groups = {*identity.groups, *identity.roles, *self.groups_of_person(identity.login)}
        return sorted(self.permissions_for_groups(groups))


def register_permission_stores(plugins: pluggy.PluginManager, config: AuthcoreConfig) -> None:
    """Register the permission plugins ``permissions:`` names: ``store`` (:class:`SQLPermissionStore`)
    and ``ispyb`` (:class:`~authcore.compat.ispyb_db.IspybDatabase`, imported only then: SQLAlchemy).

    A :class:`ConfigError` names the file, line and key at fault.
    """
    from .config.checks import located

    permissions = config.permissions
    if permissions.store:
        try:
            plugins.register(SQLPermissionStore.from_url(permissions.store), name="permission-store")
        except ConfigError as exc:
            raise located(config.source, ("permissions", "store"), exc) from None
    if permissions.ispyb is None:
        return
    try:
        from .compat.ispyb_db import IspybDatabase

        database = IspybDatabase(
            permissions.ispyb.url.get_secret_value(),
            create_person_on_missing=permissions.ispyb.create_person_on_missing,
        )
    except ImportError:
        missing = ConfigError("permissions.ispyb needs the ispyb extra: pip install 'authcore[ispyb]>=0.2'")
        raise located(config.source, ("permissions", "ispyb"), missing) from None
    except ConfigError as exc:
        raise located(config.source, ("permissions", "ispyb"), exc) from None
    plugins.register(database, name="ispyb-database")
