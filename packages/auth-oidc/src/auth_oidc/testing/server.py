""":class:`OidcProviderServer`: panva's oidc-provider on a free loopback port, run by ``node``.

One JSON file describes the server (issuer, clients, users, private signing keys, token
format, TTLs); ``server.mjs`` reads it and listens on ``127.0.0.1``. The process is started
with :mod:`subprocess` and stopped by its pid; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from authcore.errors import ConfigError
from authcore.testing.ports import free_port
from authcore.testing.processes import stop_process

from .keys import JWKS, generate_jwks, public_jwks
from .node_env import ensure_installed, find_node

__all__ = ["OidcProviderServer", "ServerSettings", "DEFAULT_RESOURCE"]

#: The resource indicator (and default ``aud``) of JWT access tokens.
DEFAULT_RESOURCE = "urn:authcore:test-api"
_HOST = "127.0.0.1"
_STARTUP_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """What the server is started with; :meth:`OidcProviderServer.restart` replaces some of it.

    ``clients`` are oidc-provider client metadata (passed through). ``users`` map a login to
    ``{"password": ..., "claims": {"sub": ..., "groups": [...], ...}}``. ``jwks`` is a
    private JWKS (the first key whose ``alg`` matches signs). ``extra`` is deep-merged into
    oidc-provider's configuration (JSON values only).
    """

    clients: Sequence[Mapping[str, Any]]
    users: Mapping[str, Mapping[str, Any]]
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    password_grant: bool = False
    jwks: JWKS = dataclasses.field(default_factory=generate_jwks)
    ttl: Mapping[str, int] | None = None
    id_token_alg: str | None = None
    access_token_alg: str | None = None
    resource: str = DEFAULT_RESOURCE
    resource_scope: str | None = None
    resource_audience: str | None = None
    access_token_claims: Sequence[str] | None = None
    extra: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.access_token_format not in ("opaque", "jwt"):
            raise ConfigError(f"access_token_format must be 'opaque' or 'jwt', not {self.access_token_format!r}")
        keys = self.jwks.get("keys") if isinstance(self.jwks, Mapping) else None
        if not keys or not all(isinstance(k, Mapping) and k.get("kid") and k.get("alg") for k in keys):
            raise ConfigError("jwks must be a JWKS whose keys all have a kid and an alg (see generate_jwks)")
        if any("d" not in k for k in keys):
            raise ConfigError("jwks must hold private keys: the server signs with them")

    def __repr__(self) -> str:
        # Secrets (client secrets, passwords, private keys) stay out of reprs and logs.
        return (
            f"ServerSettings(access_token_format={self.access_token_format!r}, "
            f"password_grant={self.password_grant!r}, clients={[c.get('client_id') for c in self.clients]!r}, "
            f"users={sorted(self.users)!r}, kids={[k['kid'] for k in self.jwks['keys']]!r})"
        )

    def document(self, issuer: str, port: int) -> dict[str, Any]:
        """The JSON configuration ``server.mjs`` reads."""
        doc: dict[str, Any] = {
            "issuer": issuer,
            "port": port,
            "clients": [dict(c) for c in self.clients],
            "users": {login: dict(user) for login, user in self.users.items()},
            "jwks": self.jwks,
            "access_token_format": self.access_token_format,
            "password_grant": self.password_grant,
            "resource": self.resource,
            "ttl": dict(self.ttl or {}),
            "provider": dict(self.extra or {}),
        }
        optional = {
            "id_token_alg": self.id_token_alg,
            "access_token_alg": self.access_token_alg,
            "resource_scope": self.resource_scope,
            "resource_audience": self.resource_audience,
            "access_token_claims": list(self.access_token_claims) if self.access_token_claims is not None else None,
        }
        doc.update({key: value for key, value in optional.items() if value is not None})
        return doc


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class OidcProviderServer:
    """panva's oidc-provider (npm, OpenID Certified) on ``127.0.0.1``, for tests.

    ::

        with OidcProviderServer(clients=[...], users={...}, access_token_format="jwt") as server:
            httpx.get(f"{server.issuer}/.well-known/openid-configuration")

    Keyword arguments are the fields of :class:`ServerSettings` (``jwks`` defaults to one new
    RS256 key), plus ``port`` (default: a free one, kept by :meth:`restart`).
    """

    def __init__(
        self,
        *,
        clients: Sequence[Mapping[str, Any]],
        users: Mapping[str, Mapping[str, Any]],
        access_token_format: Literal["opaque", "jwt"] = "opaque",
        password_grant: bool = False,
        jwks: JWKS | None = None,
        ttl: Mapping[str, int] | None = None,
        port: int | None = None,
        extra: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> None:
        self.options = ServerSettings(
            clients=clients,
            users=users,
            access_token_format=access_token_format,
            password_grant=password_grant,
            jwks=jwks if jwks is not None else generate_jwks(),
            ttl=ttl,
            extra=extra,
            **more,
        )
        self._fixed_port = port is not None
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._rundir: Path | None = None

    def __repr__(self) -> str:
        state = f"pid={self._process.pid}" if self._process else "stopped"
        return f"OidcProviderServer(port={self._port!r}, {state}, {self.options!r})"

    # ------------------------------------------------------------ addresses and keys

    @property
    def port(self) -> int:
        """The TCP port (known once started, or when given)."""
        if self._port is None:
            raise RuntimeError("the server has no port yet: call start()")
        return self._port

    @property
    def issuer(self) -> str:
        """``iss`` of every token, ``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        return f"{self.issuer}/"

    @property
    def discovery_url(self) -> str:
        """``{issuer}/.well-known/openid-configuration``."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks(self) -> JWKS:
        """The PRIVATE JWKS the server signs with (for forging tokens in tests)."""
        return self.options.jwks

    @property
    def public_jwks(self) -> JWKS:
        """What the server publishes at its ``jwks_uri``."""
        return public_jwks(self.options.jwks)

    @property
    def pid(self) -> int | None:
        """The node process id while it runs, else None."""
        return self._process.pid if self._process is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the node process is alive (paused counts as running)."""
        return self._process is not None and self._process.poll() is None

    # ------------------------------------------------------------ life cycle

    def start(self) -> OidcProviderServer:
        """Install oidc-provider if needed, start node and wait until discovery answers 200."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        node, _ = find_node()
        workdir = ensure_installed()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if self._port is None:
                self._port = free_port()
            try:
                self._launch(node, workdir)
                return self
            except _PortTaken:
                # Someone took the port between our probe (or the last run) and node's listen.
                if self._fixed_port or attempt == _PORT_ATTEMPTS:
                    raise RuntimeError(f"oidc-provider could not listen on port {self._port}: in use") from None
                self._port = None
        return self

    def stop(self) -> None:
        """SIGTERM the node process, SIGKILL it after a bound, and wait for it to be gone."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, bound=_STOP_TIMEOUT)
        if self._rundir is not None:
            shutil.rmtree(self._rundir, ignore_errors=True)
            self._rundir = None

    def restart(self, **changes: Any) -> OidcProviderServer:
        """Stop, apply *changes* to the settings (e.g. ``jwks=`` for a key rotation), start on the same port."""
        settings = dataclasses.replace(self.options, **changes)
        self.stop()
        self.options = settings
        fixed, self._fixed_port = self._fixed_port, True
        try:
            return self.start()
        finally:
            self._fixed_port = fixed

    def __enter__(self) -> OidcProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ internals

    def _launch(self, node: str, workdir: Path) -> None:
        port = self.port
        rundir = Path(tempfile.mkdtemp(prefix="authcore-oidc-"))
        config = rundir / "config.json"
        # The file holds client secrets and private keys: owner-only.
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.options.document(self.issuer, port), handle)
        stdout, stderr = rundir / "stdout.log", rundir / "stderr.log"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [node, "server.mjs", str(config)],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "NODE_ENV": "test"},
            )
        self._process, self._rundir = process, rundir
        try:
            self._wait_ready(process, stdout, stderr)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> None:
        """Wait for node's "ready" line (so the port is ours, not another server's), then for discovery."""
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = process.poll()
                if code is not None:
                    tail = _tail(stderr)
                    if "EADDRINUSE" in tail:
                        raise _PortTaken
                    raise RuntimeError(f"oidc-provider exited with code {code} before answering:\n{tail}")
                if stdout.read_text(errors="replace").startswith("ready "):
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(self.discovery_url).status_code == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"oidc-provider did not answer {self.discovery_url} within {_STARTUP_TIMEOUT:.0f}s:\n"
                        f"{_tail(stderr)}"
                    )
                time.sleep(0.05)


class _PortTaken(Exception):
    """node could not listen: EADDRINUSE."""
