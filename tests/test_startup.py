"""What a fresh interpreter imports: only configured providers, never a web framework or LDAP/Keycloak client.

Each check runs in a new interpreter (nothing imported by pytest or other tests can
hide or cause an import) and reports ``sys.modules`` as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

#: Never imported by `import authcore`, building a manager with the dummy provider, or the CLI's help.
HEAVY = ("ldap3", "keycloak", "fastapi", "flask", "starlette", "uvicorn", "werkzeug", "httpx", "httpx2", "requests")
#: Provider modules: imported only when a configuration enables their type.
PROVIDER_MODULES = ("auth_dummy", "auth_noauth", "auth_ldap", "auth_keycloak")


def top_level(modules: list[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules}


@pytest.fixture
def modules_after(tmp_path: Path, child_env: Callable[..., dict[str, str]]) -> Callable[[str], set[str]]:
    """Run *code* in a fresh interpreter; return the top-level names in its sys.modules at the end."""

    def run(code: str) -> set[str]:
        out = tmp_path / "modules.json"
        script = textwrap.dedent(code) + textwrap.dedent(
            f"""
            import json as _json, sys as _sys
            with open({str(out)!r}, "w") as _handle:
                _json.dump(sorted(_sys.modules), _handle)
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return top_level(json.loads(out.read_text()))

    return run


def test_import_authcore_imports_no_provider_and_no_web_framework(modules_after):
    loaded = modules_after("import authcore\n")
    assert "authcore" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded.isdisjoint(PROVIDER_MODULES), sorted(loaded & set(PROVIDER_MODULES))


def test_manager_with_dummy_imports_only_the_dummy(modules_after):
    loaded = modules_after(
        """
        import authcore
        manager = authcore.AuthManager.from_config({"providers": [{"name": "dummy"}]})
        assert manager.login("dummy", login="test", password="Admin").permissions == ("Admin",)
        """
    )
    assert "auth_dummy" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    unconfigured = set(PROVIDER_MODULES) - {"auth_dummy"}
    assert loaded.isdisjoint(unconfigured), sorted(loaded & unconfigured)


def test_manager_with_noauth_imports_only_the_noauth(modules_after):
    loaded = modules_after(
        """
        import authcore
        authcore.AuthManager.from_config({"providers": [{"name": "open", "type": "noauth"}]})
        """
    )
    assert "auth_noauth" in loaded
    assert "auth_dummy" not in loaded


def test_listing_providers_imports_no_provider(modules_after):
    loaded = modules_after(
        """
        from authcore.plugins import installed_providers
        names = [entry.name for entry in installed_providers()]
        assert "dummy" in names, names
        """
    )
    assert loaded.isdisjoint(PROVIDER_MODULES), sorted(loaded & set(PROVIDER_MODULES))


@pytest.mark.parametrize("argv", [["--help"], ["providers", "--json"], ["login", "--help"]])
def test_cli_imports_no_provider_and_no_web_framework(modules_after, argv: list[str]):
    loaded = modules_after(
        f"""
        import sys
        sys.argv = ["authcore", *{argv!r}]
        from authcore.cli import run
        try:
            run()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    )
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded.isdisjoint(PROVIDER_MODULES), sorted(loaded & set(PROVIDER_MODULES))


def test_console_script_help(authcore_cmd: list[str], child_env: Callable[..., dict[str, str]], tmp_path: Path):
    proc = subprocess.run(
        [*authcore_cmd, "--help"], capture_output=True, text=True, env=child_env(), cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "authcore" in proc.stdout
