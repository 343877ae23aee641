"""Node.js for the test server: find ``node``/``npm`` and install oidc-provider once per lock file.

The ``node/`` directory shipped in this package holds ``package.json``, ``package-lock.json``
and ``server.mjs``, never ``node_modules``. The installed package directory may be
read-only, so the files are copied into a cache directory named after the SHA-256 of the
lock file (``~/.cache/authcore/oidc-provider/<hash>/``, or ``$AUTHCORE_NODE_CACHE/<hash>/``)
and ``npm ci`` installs there, under an ``fcntl`` lock so that parallel test processes
(pytest-xdist, two checkouts) install once and never see a half-written ``node_modules``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["NODE_SOURCE", "NodeMissing", "cache_root", "ensure_installed", "find_node"]

#: The files copied into the cache directory (the package's ``node/`` directory).
NODE_SOURCE = Path(__file__).with_name("node")
_FILES = ("package.json", "package-lock.json", "server.mjs")
# Written last by a successful install: its presence means node_modules is complete.
_MARKER = ".authcore-installed"
_NPM_CI = ("ci", "--no-audit", "--no-fund", "--ignore-scripts")
_INSTALL_TIMEOUT = 600.0


class NodeMissing(RuntimeError):
    """``node`` or ``npm`` is not on ``PATH``: the tests need them and never skip."""


def find_node() -> tuple[str, str]:
    """The paths of ``node`` and ``npm``, or :class:`NodeMissing` naming the Debian package ``nodejs``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        raise NodeMissing(
            f"`{missing}` was not found on PATH: the OpenID Connect test server runs panva's oidc-provider "
            "on Node.js. Install the Debian package `nodejs` (apt-get install nodejs; on Debian's own "
            "build also `npm`, which NodeSource's nodejs bundles)."
        )
    return node, npm


def cache_root() -> Path:
    """Where installs live: ``$AUTHCORE_NODE_CACHE`` or ``~/.cache/authcore/oidc-provider``."""
    override = os.environ.get("AUTHCORE_NODE_CACHE")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "authcore" / "oidc-provider"


def _lock_digest() -> str:
    return hashlib.sha256((NODE_SOURCE / "package-lock.json").read_bytes()).hexdigest()[:32]


def _copy_if_changed(source: Path, target: Path) -> None:
    data = source.read_bytes()
    if target.exists() and target.read_bytes() == data:
        return
    # Replace atomically: another process may be starting node from this directory.
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)


def _npm_ci(npm: str, workdir: Path) -> None:
    try:
        done = subprocess.run(
            [npm, *_NPM_CI],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"`npm ci` in {workdir} did not finish in {_INSTALL_TIMEOUT:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise RuntimeError(f"`npm ci` in {workdir} failed (exit {done.returncode}):\n{tail}")


def ensure_installed() -> Path:
    """The directory to run ``node server.mjs`` in, installing oidc-provider there if needed."""
    _, npm = find_node()
    workdir = cache_root() / _lock_digest()
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for name in _FILES:
                _copy_if_changed(NODE_SOURCE / name, workdir / name)
            marker = workdir / "node_modules" / _MARKER
            if not marker.exists():
                _npm_ci(npm, workdir)
                marker.write_text("npm ci done\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return workdir
