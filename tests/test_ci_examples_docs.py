"""What a first-time user copies from the READMEs works: installs, ports, curl lines, store URLs.

* Each host-application example has a README that says what to install (the extra its
  framework needs), the port its code listens on, and a curl line that logs in; that curl
  line is replayed against the example served over real HTTP.
* No README or doc installs our distributions in a way that resolves, on the package index,
  to the unrelated ``authcore`` 0.1.x (``pip install authcore``, ``'authcore[server]'``) or to
  nothing (a provider package by name, without our ``dist/``).
* The README's SQLite session store is an absolute path, as the code reads it.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import itertools
import json
import re
import shlex
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from authcore import AuthManager
from authcore.testing import servers

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/app.py"))
#: Our distributions; the provider packages are not on the package index at all.
#: Our distributions besides the core: none is on the package index (derived from the checkout, so
#: a new package is covered the day it is added).
PROVIDER_DISTRIBUTIONS = {
    tomllib.loads(path.read_text())["project"]["name"]
    for path in (*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml"))
} - {"authcore"}
#: Markdown files not checked for install commands, and why.
NOT_INSTRUCTIONS = {
    "docs/design.md": "the decision log: it records what was decided then, it gives no instructions",
}


def commands(text: str, program: str) -> list[str]:
    """Shell commands starting with *program* in *text*: backslash continuations joined, comments cut."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip().strip("`")
        if line.startswith(program + " "):
            found.append(shlex.join(shlex.split(line, comments=True)))  # the trailing comment cut
    return found


def example_port(example: Path) -> int:
    """The port the example's ``__main__`` block listens on (``....run(..., port=N)``)."""
    tree = ast.parse((example / "app.py").read_text())
    ports = [
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "port" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, int)
    ]
    assert len(ports) == 1, f"{example.name}/app.py: expected one run(..., port=N), found {ports}"
    return int(ports[0])


def uses_flask(example: Path) -> bool:
    return bool(re.search(r"^from flask import|^import flask", (example / "app.py").read_text(), re.MULTILINE))


# --------------------------------------------------------------------------- the examples' READMEs


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_readme_names_install_port_and_a_curl_login(example: Path) -> None:
    readme = (example / "README.md").read_text()
    port = example_port(example)
    assert f"http://127.0.0.1:{port}" in readme, f"{example.name}: README does not give the port {port} of app.py"
    installs = commands(readme, "pip install")
    assert installs, f"{example.name}: README does not say what to install"
    extra = "flask" if uses_flask(example) else "server"
    # authcore[server] or authcore[server,ispyb]: the extras of every authcore requirement named.
    named = {
        e.strip() for line in installs for group in re.findall(r"authcore\[([^\]]*)\]", line) for e in group.split(",")
    }
    assert extra in named, f"{example.name}: README must install authcore[{extra}]"
    config = "\n".join(p.read_text() for p in example.glob("*.yml"))
    if "dummy" in config:
        assert any("auth-dummy" in line for line in installs), f"{example.name}: README must install auth-dummy"
    logins = [c for c in commands(readme, "curl") if "/auth/login" in c and f"127.0.0.1:{port}" in c]
    assert logins, f"{example.name}: README has no curl line that logs in on port {port}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_readme_curl_login_logs_in(example: Path) -> None:
    """The README's curl login, replayed over HTTP against the example (on a free port)."""
    readme = (example / "README.md").read_text()
    port = example_port(example)
    login = next(c for c in commands(readme, "curl") if "/auth/login" in c)
    words = shlex.split(login)
    url = next(w for w in words if w.startswith("http://"))
    headers = dict(h.split(": ", 1) for flag, h in itertools.pairwise(words) if flag == "-H")
    body = next(d for flag, d in itertools.pairwise(words) if flag == "-d")
    module = _load(example)
    with _serve(module.create_app(), flask=uses_flask(example)) as base:
        request = urllib.request.Request(
            url.replace(f"http://127.0.0.1:{port}", base), data=body.encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200
            answer = json.loads(reply.read())
    assert answer["token"] and answer["login"]


# --------------------------------------------------------------------------- install hints everywhere


def install_problems(text: str) -> list[str]:
    """Requirements of ``pip install`` commands in *text* that do not install our distributions."""
    problems = []
    for command in re.findall(r"\bpip install\s[^`\n]*", text):
        line = command.split("#", 1)[0]
        try:
            words = shlex.split(line)[2:]
        except ValueError:  # prose with an apostrophe, not a command line
            words = line.split()[2:]
        find_links = any(w in {"-f", "--find-links"} or w.startswith("--find-links=") for w in words)
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
                continue
            if word.startswith("-"):
                skip_next = word in {"-f", "--find-links", "-r", "--requirement", "-c", "--constraint", "-i"}
                continue
            if "/" in word or word.endswith((".whl", ".tar.gz")):
                continue  # a path: our wheel, sdist or source tree
            match = re.match(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?(.*)", word)
            if match is None:
                continue
            name, spec = match.group(1).lower().replace("_", "-"), match.group(3)
            if name == "authcore" and not re.search(r"(>=|==|~=)\s*(0\.([2-9]|\d\d)|[1-9])", spec):
                problems.append(f"{command!r}: {word!r} takes the unrelated authcore 0.1.x; pin 'authcore>=0.2'")
            elif name in PROVIDER_DISTRIBUTIONS and not find_links:
                problems.append(f"{command!r}: {word!r} is not on the index; install it from dist/ (--find-links)")
    return problems


def documents() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.md")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".nox", "dist", "build", "test-artifacts", "node_modules", ".git"}:
            continue
        if relative.as_posix() not in NOT_INSTRUCTIONS:
            yield path


def test_no_document_installs_the_unrelated_authcore() -> None:
    found = {str(p.relative_to(ROOT)): install_problems(p.read_text()) for p in documents()}
    assert "README.md" in found and any(p.startswith("examples/") for p in found)
    assert {path: problems for path, problems in found.items() if problems} == {}


def test_the_install_check_catches_unpinned_installs() -> None:
    bad = [
        "pip install authcore",
        "pip install 'authcore[server]'",
        "pip install authcore auth-noauth",
        "pip install authcore>=0.1",
        "`pip install auth-ldap`",
    ]
    for text in bad:
        assert install_problems(text), text
    good = [
        "pip install 'authcore[server]>=0.2'",
        "pip install --find-links dist/ 'authcore[flask]>=0.2' auth-dummy",
        "pip install dist/authcore-0.2.0-py3-none-any.whl dist/auth_dummy-0.1.0-py3-none-any.whl",
        "pip install ./packages/authcore[server] ./packages/auth-dummy",
        "python3 -m pip install nox",
    ]
    for text in good:
        assert install_problems(text) == [], text


# --------------------------------------------------------------------------- the README


def test_readme_session_store_is_an_absolute_path_as_the_code_reads_it(tmp_path: Path, monkeypatch: Any) -> None:
    """The README's ``sqlite:`` URL names an absolute path; four slashes mean one to the code too."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    store = yaml.safe_load(block.group(1))["sessions"]["store"]
    assert store.startswith("sqlite:////"), f"README: {store!r} is relative to the working directory"
    assert "the directory must exist" in readme
    # What the code makes of it: the same shape of URL, pointing into tmp_path, from another cwd.
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = tmp_path / "state" / "sessions.db"
    target.parent.mkdir()
    url = "sqlite:///" + str(target)  # "sqlite:///" + "/abs/path" = four slashes
    assert url.startswith("sqlite:////")
    with AuthManager.from_config({"sessions": {"store": url}, "providers": [{"name": "dummy"}]}) as manager:
        manager.login("dummy", login="test", password="Admin")
    assert target.is_file() and list(elsewhere.iterdir()) == []


def test_no_document_gives_a_system_directory_as_a_relative_sqlite_path() -> None:
    """``sqlite:///var/lib/...`` is ``var/lib/...`` under the working directory: never what was meant."""
    meant_absolute = re.compile(r"sqlite:///(?:var|etc|srv|opt|home|usr|tmp|run)/")
    found = [f"{p.relative_to(ROOT)}: {m[0]}" for p in documents() for m in meant_absolute.finditer(p.read_text())]
    assert found == []


def test_readme_documents_the_demo_port_and_bench_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "nox -s demo -- --keep-running --port" in readme
    assert "nox -s bench -- --write-docs" in readme
    assert ".ci/system-packages.txt" in readme


# --------------------------------------------------------------------------- helpers


def _load(example: Path) -> ModuleType:
    name = f"authcore_docs_example_{example.name}"
    spec = importlib.util.spec_from_file_location(name, example / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _serve(app: Any, *, flask: bool) -> Iterator[str]:
    """Serve *app* over real HTTP on a free loopback port, in a thread; yield its base URL."""
    with servers.run_wsgi(app) if flask else servers.run_asgi(app, lifespan="auto") as url:
        yield url
