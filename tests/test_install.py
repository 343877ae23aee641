"""The install story (the issue's acceptance): providers are swapped by installing packages.

A fresh virtualenv gets our wheels *by path* (the package index holds an unrelated,
older distribution named ``authcore``, 0.1.x, that must never be picked up); only the
dependencies (pydantic, pluggy, ...) come from the index. One virtualenv serves the
whole module: each test first brings it to the set of provider packages it needs.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


class Venv:
    """A fresh virtualenv with authcore installed from its wheel, and helpers to swap providers."""

    def __init__(self, fresh: Any, wheels: dict[str, Path]) -> None:
        self.fresh = fresh  # conftest's FreshVenv
        self.root, self.bin, self.python, self.env = fresh.root, fresh.bin, fresh.python, fresh.env
        self.authcore = self.bin / "authcore"
        self.wheels = wheels
        self.installed: set[str] = set()

    def use(self, *dists: str) -> None:
        """Have exactly these provider distributions installed (install/uninstall by path, no index)."""
        wanted = set(dists)
        remove = sorted(self.installed - wanted)
        add = sorted(wanted - self.installed)
        if remove:
            self.fresh.pip("uninstall", "-y", *remove)
        if add:
            # --no-deps: authcore is already there; nothing of ours ever comes from the index.
            self.fresh.install("--no-deps", *(self.wheels[d] for d in add))
        self.installed = wanted

    def run(self, *args: str, input: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.authcore), *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=self.root,
            env=self.env(**env),
            timeout=120,
        )


@pytest.fixture(scope="module")
def venv(wheels: dict[str, Path], fresh_venv: Callable[..., Any]) -> Iterator[Venv]:
    # authcore by path; its dependencies from the index. --find-links lets pip resolve our
    # own distributions from the wheelhouse should anything ask for them by name.
    ours = wheels["authcore"], wheels["auth-dummy"]
    venv = Venv(fresh_venv("install", *ours, find_links=wheels["authcore"].parent), wheels)
    venv.installed = {"auth-dummy"}
    yield venv


def providers_json(venv: Venv) -> list[dict[str, str]]:
    proc = venv.run("providers", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, list)
    return data


def version_of(dist: str, wheels: dict[str, Path]) -> str:
    # wheel file name: {name}-{version}-{python}-{abi}-{platform}.whl
    return wheels[dist].name.split("-")[1]


def test_our_authcore_is_installed_not_the_index_one(venv: Venv, wheels: dict[str, Path]):
    proc = subprocess.run(
        [
            str(venv.python),
            "-c",
            "import authcore, importlib.metadata as m; print(m.version('authcore'), authcore.__version__)",
        ],
        capture_output=True,
        text=True,
        env=venv.env(),
        check=True,
    )
    expected = version_of("authcore", wheels)
    assert proc.stdout.split() == [expected, expected]
    assert not expected.startswith("0.1."), "that is the unrelated authcore on the package index"


def test_authcore_with_dummy_lists_exactly_dummy(venv: Venv, wheels: dict[str, Path]):
    venv.use("auth-dummy")
    assert providers_json(venv) == [
        {"name": "dummy", "distribution": "auth-dummy", "version": version_of("auth-dummy", wheels)}
    ]


def test_adding_noauth_lists_both(venv: Venv, wheels: dict[str, Path]):
    venv.use("auth-dummy", "auth-noauth")
    assert providers_json(venv) == [
        {"name": "dummy", "distribution": "auth-dummy", "version": version_of("auth-dummy", wheels)},
        {"name": "noauth", "distribution": "auth-noauth", "version": version_of("auth-noauth", wheels)},
    ]
    proc = venv.run("providers")
    assert proc.returncode == 0, proc.stderr
    assert "auth-dummy" in proc.stdout and "auth-noauth" in proc.stdout


def test_no_provider_installed(venv: Venv):
    venv.use()
    assert providers_json(venv) == []


def test_login_works_in_the_installed_venv(venv: Venv, tmp_path: Path):
    venv.use("auth-dummy")
    config = tmp_path / "authcore.yml"
    config.write_text("providers:\n  - name: dummy\n")
    state = str(tmp_path / "state")
    proc = venv.run(
        "login",
        "--config",
        str(config),
        "--provider",
        "dummy",
        "--login",
        "test",
        "--password-stdin",
        "--json",
        input="Admin\n",
        AUTHCORE_STATE_DIR=state,
    )
    assert proc.returncode == 0, proc.stderr
    token = json.loads(proc.stdout)["token"]
    proc = venv.run("token", "verify", "--config", str(config), "--json", token, AUTHCORE_STATE_DIR=state)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["permissions"] == ["Admin"]


def test_uninstalled_provider_fails_with_install_hint(venv: Venv, tmp_path: Path):
    venv.use("auth-dummy", "auth-noauth")
    config = tmp_path / "authcore.yml"
    config.write_text("providers:\n  - name: dev\n    type: dummy\n")
    assert venv.run("check", "--config", str(config)).returncode == 0

    venv.use("auth-noauth")  # pip uninstall -y auth-dummy
    proc = venv.run("check", "--config", str(config))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "pip install auth-dummy" in proc.stderr
    assert "noauth" in proc.stderr  # the installed types are named
    assert "authcore.yml" in proc.stderr

    venv.use()
    proc = venv.run("check", "--config", str(config))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "pip install auth-dummy" in proc.stderr


def test_class_path_that_is_not_a_provider_fails(venv: Venv, tmp_path: Path):
    venv.use("auth-dummy")
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "some_module.py").write_text(
        textwrap.dedent(
            """\
            class SomeClass:
                '''Not an authcore.Provider.'''

            def some_function():
                pass
            """
        )
    )
    for target in ("some_module:SomeClass", "some_module:some_function", "some_module:Missing", "no_such_module:X"):
        config = tmp_path / "authcore.yml"
        config.write_text(f'providers:\n  - name: custom\n    class: "{target}"\n')
        proc = venv.run("check", "--config", str(config), PYTHONPATH=str(modules))
        assert proc.returncode == 2, (target, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert target.split(":")[0] in proc.stderr, proc.stderr


def test_class_path_to_a_provider_loads(venv: Venv, tmp_path: Path):
    venv.use("auth-dummy")
    config = tmp_path / "authcore.yml"
    config.write_text('providers:\n  - name: custom\n    class: "auth_dummy:DummyProvider"\n')
    proc = venv.run("check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr


def test_two_distributions_claiming_one_type(venv: Venv):
    """A second distribution declaring provider type ``dummy``: both are named, exit 2."""
    venv.use("auth-dummy")
    purelib = subprocess.run(
        [str(venv.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=venv.env(),
    ).stdout.strip()
    info = Path(purelib) / "auth_dummy_fork-9.9.dist-info"
    info.mkdir()
    try:
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: auth-dummy-fork\nVersion: 9.9\n")
        (info / "entry_points.txt").write_text("[authcore.providers]\ndummy = auth_dummy_fork\n")
        (info / "RECORD").write_text("")
        proc = venv.run("providers", "--json")
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "auth-dummy" in proc.stderr and "auth-dummy-fork" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
