"""ISPyB's Person and permission tables through SQLAlchemy (``pip install 'authcore[ispyb]>=0.2'``).

:class:`IspybDatabase` is a plugin that does at login what py-ispyb's login route does: it
finds the ``Person`` row of the login (and, when ``create_person_on_missing`` is set, creates
one from the names the provider returned, as py-ispyb's ``create_person_on_missing`` option
does), refuses a login without one, and grants the permissions of the person's
``UserGroup``\\ s (``UserGroup_has_Person``) and of the groups and roles the provider named,
through ``UserGroup_has_Permission``. Tokens then carry ``personId``, which py-ispyb reads
(``tokens.profile: pyispyb`` adds ``login``). The tables are ISPyB's own, from ``ispyb-models``;
any SQLAlchemy URL works (``mysql+pymysql://`` for MariaDB/MySQL, ``sqlite:///``).

Register it in code: ``manager.plugins.register(IspybDatabase(url))``. Importing this module
imports SQLAlchemy and ``ispyb.models``; nothing else in authcore imports it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy
from sqlalchemy.orm import Session, configure_mappers

with warnings.catch_warnings():
    # ispyb-models 1.1 predates SQLAlchemy 2.1, whose mappers warn about its relationships (on
    # tables this module never touches): noise for every host, nothing a host could act on.
    warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)
    warnings.simplefilter("ignore", sqlalchemy.exc.SADeprecationWarning)
    from ispyb import models  # type: ignore[import-untyped, import-not-found, unused-ignore]

    configure_mappers()

from ..errors import ConfigError, InvalidCredentials, ProviderUnavailable
from ..hookspecs import hookimpl
from ..models import Identity

__all__ = ["IspybDatabase", "TABLES"]

log = logging.getLogger("authcore")

#: The ISPyB tables this module reads and writes (``Person`` references ``Laboratory``).
TABLES = ("Laboratory", "Person", "UserGroup", "Permission", "UserGroup_has_Permission", "UserGroup_has_Person")


class IspybDatabase:
    """Person lookup and auto-create, and permissions from ISPyB's group tables (a plugin).

    One engine (a connection pool) per instance; every hook opens a short session, so the
    plugin is safe to share between threads.
    """

    #: Queries do I/O: asynchronous hosts run logins that use it in a worker thread.
    blocking: bool = True

    def __init__(self, url: str, *, create_person_on_missing: bool = False, **engine_options: Any) -> None:
        try:
            self.engine = sqlalchemy.create_engine(url, pool_pre_ping=True, **engine_options)
        except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
            # The message names the URL's dialect or a missing driver, never the URL (it may hold a password).
            raise ConfigError(f"ISPyB database: {type(exc).__name__}: cannot use this URL") from None
        self.create_person_on_missing = create_person_on_missing

    def __repr__(self) -> str:  # the URL may carry a password: the backend name only
        return f"<IspybDatabase {self.engine.dialect.name} create_person_on_missing={self.create_person_on_missing}>"

    def close(self) -> None:
        """Close the pool's connections."""
        self.engine.dispose()

    # ----------------------------------------------------------------- setup (tests, migrations)

    def create_schema(self) -> None:
        """Create ISPyB's tables of :data:`TABLES` where missing (an existing ISPyB has them)."""
        metadata = sqlalchemy.MetaData()
        tables = [models.Base.metadata.tables[name].to_metadata(metadata) for name in TABLES]
        if self.engine.dialect.name == "sqlite":
            # ISPyB's DDL is MariaDB's: SQLite has no current_timestamp() function, only the keyword.
            for column in (column for table in tables for column in table.columns):
                default = getattr(column.server_default, "arg", None)
                if str(default).lower() == "current_timestamp()":
                    column.server_default = sqlalchemy.DefaultClause(sqlalchemy.text("CURRENT_TIMESTAMP"))
        metadata.create_all(self.engine)

    def grant(self, group: str, permissions: Iterable[str]) -> None:
        """Give *group* the *permissions* (``UserGroup_has_Permission``), creating rows as needed."""
        with Session(self.engine) as session, session.begin():
            user_group = _group(session, group)
            for name in permissions:
                permission = session.scalars(sqlalchemy.select(models.Permission).filter_by(type=name)).first()
                if permission is None:
                    permission = models.Permission(type=name)
                if permission not in user_group.Permission:
                    user_group.Permission.append(permission)

    def add_person(self, login: str, groups: Iterable[str] = (), **names: str) -> int:
        """Create a ``Person`` in *groups* (``UserGroup_has_Person``); return its ``personId``."""
        with Session(self.engine) as session, session.begin():
            person = models.Person(login=login, **names)
            person.UserGroup.extend(_group(session, name) for name in groups)
            session.add(person)
            session.flush()
            return int(person.personId)

    # ----------------------------------------------------------------- the hooks

    @hookimpl
    def authcore_identity_updates(self, identity: Identity) -> Mapping[str, Any] | None:
        """The ``Person`` of the login: its ``personId`` and the names the provider left empty.

        No ``Person`` and no auto-create: the login is refused, as py-ispyb refuses it.
        """
        try:
            with Session(self.engine) as session, session.begin():
                person = self._person(session, identity.login)
                if person is None and self.create_person_on_missing:
                    person = models.Person(
                        login=identity.login,
                        givenName=identity.given_name,
                        familyName=identity.family_name,
                        emailAddress=identity.email,
                    )
                    session.add(person)
                    session.flush()
                    log.info("created Person %s for login %r", person.personId, identity.login)
                if person is None:
                    raise InvalidCredentials()
                return {
                    "attributes": {**identity.attributes, "personId": int(person.personId)},
                    "given_name": identity.given_name or person.givenName,
                    "family_name": identity.family_name or person.familyName,
                    "email": identity.email or person.emailAddress,
                }
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise _unavailable(exc) from None

    @hookimpl
    def authcore_permissions(self, identity: Identity) -> list[str]:
        """Permissions of the person's groups and of the identity's groups and roles."""
        named = {*identity.groups, *identity.roles}
        try:
            with Session(self.engine) as session:
                person_groups = (
                    sqlalchemy.select(models.UserGroup.userGroupId)
                    .join(models.UserGroup.Person)
                    .where(models.Person.login == identity.login)
                )
                query = (
                    sqlalchemy.select(models.Permission.type)
                    .join(models.Permission.UserGroup)
                    .where(
                        sqlalchemy.or_(
                            models.UserGroup.userGroupId.in_(person_groups), models.UserGroup.name.in_(sorted(named))
                        )
                    )
                    .distinct()
                )
                return sorted(session.scalars(query))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise _unavailable(exc) from None

    @hookimpl
    def authcore_token_claims(self, identity: Identity) -> Mapping[str, Any] | None:
        """``personId``, which py-ispyb reads from a token (``set_token_data``) beside ``login``."""
        return {"personId": identity.attributes.get("personId")}

    @staticmethod
    def _person(session: Session, login: str) -> Any:
        # py-ispyb's get_current_person: the first Person with this login.
        return session.scalars(
            sqlalchemy.select(models.Person).where(models.Person.login == login).order_by(models.Person.personId)
        ).first()


def _group(session: Session, name: str) -> Any:
    group = session.scalars(sqlalchemy.select(models.UserGroup).filter_by(name=name)).first()
    if group is None:
        group = models.UserGroup(name=name)
        session.add(group)
    return group


def _unavailable(exc: Exception) -> ProviderUnavailable:
    # The type only: driver messages can quote statements and parameters (the login typed).
    log.error("ISPyB database failed: %s", type(exc).__name__)
    return ProviderUnavailable("the ISPyB database is unavailable")
