"""Shared fixtures of the cross-package integration tests: real processes, real virtualenvs.

These tests run against whatever ``authcore`` the running interpreter has installed
(``nox -s tests`` installs the built wheels, non-editable); the ``authcore`` command is
the console script next to that interpreter.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = REPO / "packages"

#: Python that runs the CLI and the fresh interpreters: the one running the tests.
PYTHON = sys.executable

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for name in ("authcore", "auth_dummy", "auth_noauth"):
        spec = importlib.util.find_spec(name)
        lines.append(f"{name}: {spec.origin if spec else 'not installed'}")
    return lines


def authcore_command() -> list[str]:
    """The ``authcore`` console script of this interpreter's environment (or ``python -m authcore.cli``)."""
    script = Path(PYTHON).parent / ("authcore.exe" if os.name == "nt" else "authcore")
    if script.exists():
        return [str(script)]
    return [PYTHON, "-m", "authcore.cli"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: no PYTHONPATH (nothing from src/), no colour, no pip chatter."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if extra:
        env.update(extra)
    return env


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The CLI's state directory (development secret, SQLite sessions) for one test."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def run_cli(state_dir: Path, tmp_path: Path) -> RunCli:
    """Run ``authcore ARGS...`` in a child process; returns the CompletedProcess (text).

    ``input`` is fed to standard input (otherwise stdin is empty, never a terminal);
    ``AUTHCORE_STATE_DIR`` points at the test's own state directory.
    """

    def run(
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*(command or authcore_command()), *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=clean_env({"AUTHCORE_STATE_DIR": str(state_dir), **(env or {})}),
            timeout=timeout,
        )

    return run


@pytest.fixture
def cli_process(state_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment of ``run_cli``, for tests that start the process themselves."""
    return authcore_command(), clean_env({"AUTHCORE_STATE_DIR": str(state_dir)})


# --------------------------------------------------------------------------- wheels


def package_dirs() -> list[Path]:
    """Every distribution under packages/, core first."""
    dirs = [p.parent for p in PACKAGES.glob("*/pyproject.toml")]
    return sorted(dirs, key=lambda d: (d.name != "authcore", d.name))


def project(package_dir: Path) -> dict[str, object]:
    with open(package_dir / "pyproject.toml", "rb") as handle:
        data: dict[str, object] = tomllib.load(handle)["project"]
    return data


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One wheel per distribution, by distribution name: ``{"authcore": Path(...whl), ...}``.

    Reuses ``$AUTHCORE_WHEELHOUSE`` (set by ``nox -s tests``) when it holds the current
    version of every package; otherwise builds them once per test session.
    """
    wanted = {str(project(d)["name"]): (d, str(project(d)["version"])) for d in package_dirs()}
    sources = []
    if os.environ.get("AUTHCORE_WHEELHOUSE"):
        sources.append(Path(os.environ["AUTHCORE_WHEELHOUSE"]))
    for wheelhouse in sources:
        found = {
            name: sorted(wheelhouse.glob(f"{normalize(name)}-{version}-*.whl")) for name, (_, version) in wanted.items()
        }
        if all(len(paths) == 1 for paths in found.values()):
            return {name: paths[0] for name, paths in found.items()}
    outdir = tmp_path_factory.mktemp("wheels")
    for package_dir, _version in wanted.values():
        subprocess.run(
            [PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(outdir), str(package_dir)],
            check=True,
            env=clean_env(),
            timeout=600,
        )
    return {name: next(outdir.glob(f"{normalize(name)}-{version}-*.whl")) for name, (_, version) in wanted.items()}


@pytest.fixture(scope="session")
def child_env() -> Callable[..., dict[str, str]]:
    """:func:`clean_env` as a fixture (helpers in conftest are not importable under importlib mode)."""
    return clean_env


# --------------------------------------------------------------------------- fresh virtualenvs


class FreshVenv:
    """A new virtualenv (``python -m venv`` of the running interpreter), as a user would make one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.python = self.bin / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """A child's environment with this virtualenv activated (:func:`clean_env`, plus *extra*)."""
        activated = {"VIRTUAL_ENV": str(self.root), "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        return clean_env({**activated, **extra})

    def pip(self, *args: str) -> None:
        """``pip ARGS...`` in this virtualenv, quiet; a failure fails the test."""
        command = [str(self.python), "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", *args]
        subprocess.run(command, check=True, env=self.env(), timeout=1200)

    def install(self, *args: str | Path, find_links: Path | None = None) -> None:
        """``pip install ARGS...``: requirements (our wheels by path, the rest from the index) and
        options; with *find_links*, a wheelhouse pip may take ours from should anything ask for
        them by name.

        ``--no-compile``: the programs run here import a fraction of what is installed, and run
        with ``PYTHONDONTWRITEBYTECODE`` anyway; compiling everything up front took the Jupyverse
        virtualenv 20 s instead of 11.
        """
        links = ["--find-links", str(find_links)] if find_links is not None else []
        self.pip("install", "--no-compile", *links, *map(str, args))

    def has(self, dist: str) -> bool:
        """Whether distribution *dist* is installed here."""
        probe = f"import importlib.metadata as m\ntry:\n m.version({dist!r})\nexcept m.PackageNotFoundError:\n exit(1)"
        return subprocess.run([str(self.python), "-c", probe], env=self.env(), check=False).returncode == 0


def make_venv(root: Path) -> FreshVenv:
    """``python -m venv`` at *root*."""
    subprocess.run([PYTHON, "-m", "venv", str(root)], check=True, timeout=300, env=clean_env())
    return FreshVenv(root)


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., FreshVenv]:
    """Make a fresh virtualenv under a new temporary directory named after *name*, with
    ``install(*requirements, find_links=...)`` done: ``fresh_venv("ldap", wheel, ...)``."""

    def make(name: str, *requirements: str | Path, find_links: Path | None = None) -> FreshVenv:
        venv = make_venv(tmp_path_factory.mktemp(name) / "venv")
        if requirements:
            venv.install(*requirements, find_links=find_links)
        return venv

    return make


@pytest.fixture(scope="session")
def venv_at() -> Callable[[Path], FreshVenv]:
    """:func:`make_venv` as a fixture, for a virtualenv kept where the test says (the load test's)."""
    return make_venv


@pytest.fixture(scope="session")
def authcore_cmd() -> list[str]:
    """The ``authcore`` command of the environment under test."""
    return authcore_command()
