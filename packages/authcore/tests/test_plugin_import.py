"""The pytest plugin stays import-light, and the lazy public API still gives every name.

pytest imports ``authcore.testing.plugin`` (entry point ``pytest11``) in every run where
authcore is installed, whether or not the tests use authcore. Importing it runs
``authcore/__init__.py`` and ``authcore/testing/__init__.py`` first, so those must not
import the core or the conformance suites. Each check runs in a fresh interpreter:
nothing this test process imported can hide an import.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

import authcore
import authcore.testing

#: Prefixes of the distributions a full import of the core would load.
WATCHED = ("authcore", "pydantic", "pluggy", "yaml", "jwt", "cryptography")


def modules_after(code: str) -> set[str]:
    """The watched modules in ``sys.modules`` after running *code* in a fresh interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in {WATCHED!r})))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_the_pytest_plugin_imports_only_itself():
    # Before: 102 modules (the whole core, pydantic, yaml, jwt, cryptography), 89 of them beyond pytest's own.
    added = modules_after("import authcore.testing.plugin") - modules_after("import pytest")
    assert added == {"authcore", "authcore.testing", "authcore.testing.plugin"}


def test_import_authcore_imports_nothing_until_a_name_is_used():
    assert modules_after("import authcore") == {"authcore"}
    assert modules_after("from authcore import InvalidCredentials") == {"authcore", "authcore.errors"}


def test_a_name_imports_its_module_and_what_that_needs():
    loaded = modules_after("from authcore import Provider")
    assert "authcore.providers" in loaded
    assert "authcore.manager" not in loaded and "authcore.testing" not in loaded


@pytest.mark.parametrize("package", [authcore, authcore.testing], ids=lambda p: p.__name__)
def test_every_public_name_resolves_to_its_module(package):
    # The table of where each name lives, the names a type checker sees and __all__ agree.
    assert sorted(package._MODULE_OF) == sorted(n for n in package.__all__ if n != "__version__")
    for name, module in package._MODULE_OF.items():
        assert getattr(package, name) is getattr(importlib.import_module(f"{package.__name__}.{module}"), name)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="NoSuchName"):
        authcore.NoSuchName  # noqa: B018
    with pytest.raises(ImportError):
        exec("from authcore.testing import NoSuchSuite")
    assert set(authcore.__all__) <= set(dir(authcore))
