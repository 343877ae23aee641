"""The provider conformance suite: base test classes a provider's tests subclass.

Like dbt's adapter tests: the subclass hands in a configuration and credentials, and
inherits tests of everything the core promises about providers. Nothing here is
mocked: the provider runs as configured, against whatever server the subclass's
fixtures started.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from authcore import (
    AuthError,
    AuthManager,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    NewUser,
    NotSupported,
    Provider,
    Registration,
    SelfUpdate,
    UpstreamSessions,
    UserManagement,
    UserUpdate,
)
from authcore.testing.race import outcomes, race

__all__ = ["Login", "ProviderConformance", "BAD_INPUTS"]


@dataclass(frozen=True)
class Login:
    """One set of credentials for the suite, and what a successful login must yield."""

    login: str | None = None
    password: str | None = None
    token: str | None = None
    #: The identity's login after logging in (defaults to ``login``).
    expect_login: str | None = None
    #: Permissions the identity must hold (it may hold more).
    expect_permissions: tuple[str, ...] = ()
    #: Groups the identity must be in (it may be in more).
    expect_groups: tuple[str, ...] = ()
    #: Other identity fields and their expected values (``{"email": "a@example.org"}``).
    expect: Mapping[str, Any] = field(default_factory=dict)
    #: Whether the password/token is a secret that must never show in logs or output.
    #: The dummy provider's password names permissions, so its tests set this to False.
    secret: bool = True

    def kwargs(self) -> dict[str, str]:
        """The keyword arguments for :meth:`AuthManager.login`."""
        values = {"login": self.login, "password": self.password, "token": self.token}
        return {k: v for k, v in values.items() if v is not None}

    @property
    def expected_login(self) -> str | None:
        """The login the identity must have."""
        return self.expect_login if self.expect_login is not None else self.login

    def __repr__(self) -> str:  # pytest prints parameters: keep the password out
        return f"Login(login={self.login!r})"


#: Input every provider must see refused before it runs: (id, keyword arguments).
BAD_INPUTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("empty-login", {"login": "", "password": "x"}),
    ("empty-password", {"login": "someone", "password": ""}),
    ("missing-password", {"login": "someone"}),
    ("missing-login", {"password": "x"}),
    ("nul-in-login", {"login": "some\x00one", "password": "x"}),
    ("nul-in-password", {"login": "someone", "password": "pass\x00word"}),
    ("control-in-login", {"login": "some\x1b[2Jone", "password": "x"}),
    ("newline-login", {"login": "someone\n", "password": "x"}),
    ("huge-login", {"login": "a" * 100_000, "password": "x"}),
    ("huge-password", {"login": "someone", "password": "p" * 1_000_000}),
    ("empty-token", {"token": ""}),
    ("nul-in-token", {"token": "abc\x00def"}),
    ("huge-token", {"token": "t" * 1_000_000}),
    ("unicode-token", {"token": "tökèn"}),
    ("space-token", {"token": "Bearer abc"}),
)

# An audit hook cannot be removed, so one hook serves every test and records only
# while a test has switched recording on.
_network_events: list[str] = []
_recording = threading.Event()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording.is_set() and event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
        _network_events.append(event)


@dataclass
class _CallCounter:
    calls: int = 0


class ProviderConformance:
    """Base class of a provider's conformance tests.

    Subclasses set :attr:`provider_name` and define three fixtures:
    ``conformance_config`` (a configuration dict enabling the provider under that
    name), ``valid_logins`` and ``invalid_logins`` (lists of :class:`Login`). They may
    define ``secret_values`` (strings such as a bind password that must never appear
    in output, reprs or logs).
    """

    #: The provider instance name in ``conformance_config``.
    provider_name: ClassVar[str] = ""
    #: Threads and logins per thread of the thread-safety test.
    thread_count: ClassVar[int] = 8
    logins_per_thread: ClassVar[int] = 25

    # ------------------------------------------------------------ fixtures

    @pytest.fixture
    def conformance_config(self) -> Mapping[str, Any]:
        """The configuration to test with; subclasses must override."""
        raise NotImplementedError("define a conformance_config fixture")

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        """Credentials that must log in; subclasses must override."""
        raise NotImplementedError("define a valid_logins fixture")

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        """Credentials that must be refused (wrong password, unknown login); may be empty for noauth."""
        raise NotImplementedError("define an invalid_logins fixture")

    @pytest.fixture
    def secret_values(self) -> list[str]:
        """Strings that must never be shown (configured passwords, client secrets)."""
        return []

    @pytest.fixture
    def conformance_manager(self, conformance_config: Mapping[str, Any]) -> Iterator[AuthManager]:
        """The manager under test."""
        manager = AuthManager.from_config(conformance_config)
        try:
            yield manager
        finally:
            manager.close()

    @pytest.fixture
    def conformance_provider(self, conformance_manager: AuthManager) -> Provider:
        """The provider instance under test."""
        return conformance_manager.provider(self.provider_name)

    @pytest.fixture
    def network_guard(self, conformance_provider: Provider) -> Iterator[tuple[_CallCounter, list[str]]]:
        """Counts calls of the provider's ``authenticate`` and records socket use meanwhile."""
        global _hook_installed
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
        counter = _CallCounter()
        original = conformance_provider.authenticate

        def counting(credentials: Any) -> Any:
            counter.calls += 1
            return original(credentials)

        # Observation only: the real method still runs when called.
        conformance_provider.authenticate = counting  # type: ignore[method-assign]
        _network_events.clear()
        _recording.set()
        try:
            yield counter, _network_events
        finally:
            _recording.clear()
            del conformance_provider.authenticate

    # ------------------------------------------------------------ tests

    def test_valid_logins_succeed(self, conformance_manager: AuthManager, valid_logins: list[Login]) -> None:
        """Each valid login yields the expected identity, and its token verifies."""
        assert valid_logins, "valid_logins must not be empty"
        for case in valid_logins:
            result = conformance_manager.login(self.provider_name, **case.kwargs())
            identity = result.identity
            if case.expected_login is not None:
                assert identity.login == case.expected_login
            assert identity.provider == self.provider_name
            assert set(case.expect_permissions) <= set(identity.permissions), identity.permissions
            assert set(case.expect_groups) <= set(identity.groups), identity.groups
            for name, value in case.expect.items():
                assert getattr(identity, name) == value, name
            verified = conformance_manager.verify(result.access_token)
            assert verified.login == identity.login
            assert verified.provider == self.provider_name
            assert set(verified.permissions) == set(identity.permissions)

    def test_invalid_logins_are_refused_alike(
        self, conformance_manager: AuthManager, invalid_logins: list[Login]
    ) -> None:
        """Wrong passwords and unknown logins fail with one and the same message."""
        messages = set()
        for case in invalid_logins:
            with pytest.raises(InvalidCredentials) as caught:
                conformance_manager.login(self.provider_name, **case.kwargs())
            messages.add(str(caught.value))
        assert len(messages) <= 1, f"messages differ and may tell whether a login exists: {messages}"
        if messages:
            assert messages == {InvalidCredentials.default_message}

    @pytest.mark.parametrize("bad", [b for _, b in BAD_INPUTS], ids=[i for i, _ in BAD_INPUTS])
    def test_bad_input_refused_before_the_provider(
        self,
        conformance_manager: AuthManager,
        network_guard: tuple[_CallCounter, list[str]],
        bad: dict[str, str],
    ) -> None:
        """Empty, NUL-containing, control-character and huge input never reaches the provider or the network."""
        counter, events = network_guard
        with pytest.raises(InvalidCredentials):
            conformance_manager.login(self.provider_name, **bad)
        assert counter.calls == 0, "the provider was called with input the core must refuse"
        assert events == [], f"network traffic for refused input: {events}"

    def test_hostile_logins_do_not_log_in(
        self, conformance_manager: AuthManager, valid_logins: list[Login], invalid_logins: list[Login]
    ) -> None:
        """Filter and query metacharacters and unicode with a wrong password are plain failures."""
        if not invalid_logins:  # a provider that lets everyone in (noauth) has no wrong password
            for name in ("*", ")(uid=*", "ü"):
                assert conformance_manager.login(self.provider_name, login=name, password="x").identity
            return
        wrong = invalid_logins[0].password or "wrong-Password-1"
        for name in ("*", "*)(uid=*", ")(|(uid=*))", "admin'--", "\\2a", "cn=admin,dc=example", "üñíçødé", "日本"):
            with pytest.raises(InvalidCredentials):
                conformance_manager.login(self.provider_name, login=name, password=wrong)

    def test_identity_fields_serialise(self, conformance_manager: AuthManager, valid_logins: list[Login]) -> None:
        """Identities give JSON for py-ispyb's Person and lowball's ClientData views."""
        result = conformance_manager.login(self.provider_name, **valid_logins[0].kwargs())
        identity = result.identity
        assert isinstance(identity.login, str) and identity.login
        person = json.loads(json.dumps(identity.to_person()))
        assert person["login"] == identity.login
        client = json.loads(json.dumps(identity.to_client_data()))
        assert client["client_id"] == identity.login
        assert all(isinstance(r, str) for r in client["roles"])
        json.dumps(identity.model_dump(mode="json"))
        assert "session_state" not in identity.model_dump()

    def test_permissions_are_enforced(self, conformance_manager: AuthManager, valid_logins: list[Login]) -> None:
        """``require`` passes for held permissions and raises Forbidden otherwise."""
        for case in valid_logins:
            verified = conformance_manager.verify(
                conformance_manager.login(self.provider_name, **case.kwargs()).access_token
            )
            conformance_manager.require(verified, list(case.expect_permissions))
            if "*" in verified.permissions:
                conformance_manager.require(verified, ["anything:at-all"])
            else:
                with pytest.raises(Forbidden):
                    conformance_manager.require(verified, ["conformance-permission-nobody-has"])

    def test_public_config_is_json_without_secrets(
        self,
        conformance_manager: AuthManager,
        conformance_provider: Provider,
        secret_values: list[str],
        valid_logins: list[Login],
    ) -> None:
        """The public config is JSON and holds no secret."""
        text = json.dumps(conformance_manager.public_config())
        json.dumps(conformance_provider.public_config())
        for secret in self._secrets(secret_values, valid_logins, []):
            assert secret not in text

    def test_no_secret_in_reprs_errors_or_logs(
        self,
        conformance_manager: AuthManager,
        conformance_provider: Provider,
        secret_values: list[str],
        valid_logins: list[Login],
        invalid_logins: list[Login],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Passwords, configured secrets and issued tokens never show in a repr, an error or a log line."""
        caplog.set_level(logging.DEBUG)
        shown = [
            repr(conformance_manager),
            repr(conformance_provider),
            repr(conformance_provider.config),
            str(conformance_provider.config),
        ]
        tokens = []
        for case in valid_logins:
            result = conformance_manager.login(self.provider_name, **case.kwargs())
            tokens += [result.access_token, result.refresh_token]
            shown += [repr(result), str(result), repr(result.identity)]
        for case in invalid_logins:
            try:
                conformance_manager.login(self.provider_name, **case.kwargs())
            except AuthError as exc:
                shown += [str(exc), repr(exc)]
        shown.append(caplog.text)
        text = "\n".join(shown)
        for secret in [*self._secrets(secret_values, valid_logins, invalid_logins), *tokens]:
            assert secret not in text

    def test_thread_safety(self, conformance_manager: AuthManager, valid_logins: list[Login]) -> None:
        """Concurrent logins from several threads: no errors, no identity handed to the wrong user."""
        mixups: list[str] = []

        def worker(offset: int) -> None:
            for i in range(self.logins_per_thread):
                case = valid_logins[(offset + i) % len(valid_logins)]
                result = conformance_manager.login(self.provider_name, **case.kwargs())
                verified = conformance_manager.verify(result.access_token)
                expected = case.expected_login
                if expected is not None and (result.login != expected or verified.login != expected):
                    mixups.append(f"{expected} got {result.login}/{verified.login}")

        results = race(worker, self.thread_count)
        assert outcomes(results) == {"ok": self.thread_count}, results
        assert mixups == []

    def test_refresh_and_logout(self, conformance_manager: AuthManager, valid_logins: list[Login]) -> None:
        """A session refreshes with rotation, and logout ends it for both tokens."""
        first = conformance_manager.login(self.provider_name, **valid_logins[0].kwargs())
        second = conformance_manager.refresh(first.refresh_token)
        assert second.login == first.login
        assert second.refresh_token != first.refresh_token
        conformance_manager.verify(second.access_token)
        conformance_manager.logout(second.access_token)
        with pytest.raises(InvalidToken):
            conformance_manager.verify(second.access_token)
        with pytest.raises(InvalidToken):
            conformance_manager.verify(first.access_token)
        with pytest.raises(InvalidToken):
            conformance_manager.refresh(second.refresh_token)

    def test_unsupported_operations_raise_not_supported(
        self, conformance_manager: AuthManager, conformance_provider: Provider
    ) -> None:
        """Every capability the provider lacks raises NotSupported naming provider and operation."""
        if not isinstance(conformance_provider, UserManagement):
            with pytest.raises(NotSupported) as caught:
                conformance_manager.users(self.provider_name)
            assert self.provider_name in str(caught.value)
        else:
            users = conformance_manager.users(self.provider_name)
            supported = set(users.supported_user_operations())
            for operation in set(UserManagement.USER_OPERATIONS) - supported:
                with pytest.raises(NotSupported) as caught:
                    _call_with_dummy_arguments(users, operation)
                assert caught.value.operation == operation
                assert self.provider_name in str(caught.value)
        if isinstance(conformance_provider, UpstreamSessions):
            overridden = {
                op
                for op in ("refresh_upstream", "logout_upstream")
                if getattr(type(conformance_provider), op) is not getattr(UpstreamSessions, op)
            }
            assert overridden == {"refresh_upstream", "logout_upstream"}, "implement both upstream operations"

    def test_health_reports(self, conformance_manager: AuthManager) -> None:
        """``health()`` answers for the provider."""
        health = conformance_manager.health()[self.provider_name]
        assert health.ok, health.detail

    @staticmethod
    def _secrets(secret_values: list[str], valid: list[Login], invalid: list[Login]) -> list[str]:
        found = [s for s in secret_values if s]
        for case in [*valid, *invalid]:
            if case.secret:
                found += [v for v in (case.password, case.token) if v and len(v) >= 4]
        return found


def _call_with_dummy_arguments(users: Any, operation: str) -> None:
    login = "conformance-user"
    calls = {
        "list_users": lambda: users.list_users(),
        "get_user": lambda: users.get_user(login),
        "create_user": lambda: users.create_user(NewUser(login=login)),
        "update_user": lambda: users.update_user(login, UserUpdate()),
        "enable_user": lambda: users.enable_user(login),
        "disable_user": lambda: users.disable_user(login),
        "delete_user": lambda: users.delete_user(login),
        "set_password": lambda: users.set_password(login, "conformance-Password-1"),
        "add_roles": lambda: users.add_roles(login, ["conformance"]),
        "remove_roles": lambda: users.remove_roles(login, ["conformance"]),
        "self_register": lambda: users.self_register(Registration(login=login, password="conformance-Password-1")),
        "self_update": lambda: users.self_update(login, SelfUpdate()),
    }
    calls[operation]()
