"""Every program the suite runs comes from a Debian package in `.ci/system-packages.txt`.

`bash .ci/run` on a fresh machine installs that list and nothing else outside Python, so a
test, fixture, testing module, benchmark or nox session that calls a program the list does
not provide passes only on machines where someone installed it by hand (how the browser
test's chromium went unnoticed). The scan reads the source, not the running machine: it
finds absolute program paths (``"/usr/sbin/slapd"``), ``shutil.which("x")`` and process
calls (``subprocess``, ``os.exec*``, ``asyncio.create_subprocess_*``, nox's ``session.run``)
whose program is a string literal, or a name assigned one.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_LIST = Path(".ci") / "system-packages.txt"
THIS = Path(__file__).resolve()

#: Program -> the Debian package (``dpkg -S``) that the list must name to get it, read from
#: `.ci/program-packages.txt` (beside the list, so both stay in one place).
PROGRAM_TABLE = Path(".ci") / "program-packages.txt"


def _program_packages() -> dict[str, str]:
    table = {}
    for line in (ROOT / PROGRAM_TABLE).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            assert len(words) == 2, f"{PROGRAM_TABLE}: `program package`, not {line!r}"
            table[words[0]] = words[1]
    return table


PACKAGE_OF = _program_packages()
#: System paths that are not programs but data a fixture reads (slapd's modules and schemas).
PATH_PACKAGE_OF = {"/usr/lib/ldap": "slapd", "/etc/ldap/schema": "slapd", "/usr/lib/postgresql": "postgresql"}
#: Programs that need no Debian package from the list, and why.
ALLOWED = {
    "python": "the interpreter running the suite (nox puts its virtualenv's python first on PATH)",
    "python3": "the system Python that .ci/run itself runs on",
    "pip": "comes with every Python virtualenv",
    "git": "CI works on a clone: git is there before .ci/run starts",
    "bash": "Essential in Debian (it cannot be removed); .ci/run itself runs on it",
    "authcore": "the project's own console script, installed from our wheel",
    "pytest": "pip-installed by nox into the session's virtualenv",
    "ruff": "pip-installed by nox into the lint session's virtualenv (pinned in noxfile.py)",
    "mypy": "pip-installed by nox into the typecheck session's virtualenv (pinned in noxfile.py)",
    "twine": "pip-installed by nox into the build session's virtualenv",
}
_PYTHON_VERSIONED = re.compile(r"python3\.\d+")

#: Where programs get called from: tests, fixtures, testing modules, benchmarks, nox.
SCANNED = (
    "packages/*/tests/**/*.py",
    "packages/*/src/*/testing.py",
    "packages/*/src/*/testing/**/*.py",
    "examples/*/tests/**/*.py",
    "tests/**/*.py",
    "benchmarks/**/*.py",
    "noxfile.py",
)
#: A string holding an absolute path to a program (bin/sbin, also under /usr/lib/<x>/.../bin).
_PROGRAM_PATH = re.compile(r"(?<![\w./-])/(?:usr/(?:local/)?|usr/lib/[\w.+-]+/(?:[\w.+-]+/)*)?s?bin/([\w.+-]+)")
_DATA_PATH = re.compile(r"(?<![\w./-])(/usr/(?:lib|libexec|share)/[\w.+-]+|/etc/ldap/schema)")
#: Calls whose first argument is a program (or, for the shell forms, a command line).
_RUNNERS = {
    "subprocess": {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"},
    "os": {"system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe"}
    | {"spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "posix_spawn"}
    | {"posix_spawnp"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "session": {"run", "run_always", "run_install"},  # nox
    "shutil": {"which"},
}
#: os.spawn*/posix_spawn take a mode or pid first: the program is the second argument.
_PROGRAM_SECOND = {"spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe"}


@dataclass(frozen=True)
class Call:
    """A program (or system path) the source uses, and where."""

    path: str
    line: int
    program: str


def listed_packages(root: Path = ROOT) -> list[str]:
    """The packages of `.ci/system-packages.txt`: one a line, ``#`` starts a comment."""
    packages = []
    for line in (root / PACKAGE_LIST).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        assert len(words) <= 1, f"{PACKAGE_LIST}: one package per line, not {line!r}"
        packages += words
    return packages


def scanned_files(root: Path) -> Iterator[Path]:
    """Every source file the scan covers, once."""
    seen: set[Path] = set()
    for pattern in SCANNED:
        for path in sorted(root.glob(pattern)):
            # This file is skipped: its planted examples name programs on purpose.
            if path.is_file() and path not in seen and path != THIS and "__pycache__" not in path.parts:
                seen.add(path)
                yield path


def _strings(node: ast.AST | None, names: dict[str, list[ast.AST]], depth: int = 0) -> list[str]:
    """The string literals *node* can be: a constant, or a name assigned one (in the same file)."""
    if node is None or depth > 3:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [s for value in names.get(node.id, []) for s in _strings(value, names, depth + 1)]
    return []


def _first_program(node: ast.AST | None, names: dict[str, list[ast.AST]], depth: int = 0) -> list[str]:
    """Programs named by a call's first argument: ``"x"``, ``["x", ...]``, or a name bound to either."""
    if node is None or depth > 3:
        return []
    if isinstance(node, ast.List | ast.Tuple):
        return _strings(node.elts[0], names) if node.elts and not isinstance(node.elts[0], ast.Starred) else []
    if isinstance(node, ast.Name):
        return [p for value in names.get(node.id, []) for p in _first_program(value, names, depth + 1)]
    return _strings(node, names)


def _runner(call: ast.Call, imported: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(module, function) when *call* starts a program or looks one up, else None."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        module, name = func.value.id, func.attr
    elif isinstance(func, ast.Name) and func.id in imported:
        module, name = imported[func.id]
    else:
        return None
    return (module, name) if name in _RUNNERS.get(module, set()) else None


def scan_source(text: str, path: str) -> list[Call]:
    """Every program and system path *text* (Python source) uses."""
    tree = ast.parse(text, filename=path)
    names: dict[str, list[ast.AST]] = {}
    imported: dict[str, tuple[str, str]] = {}  # `from subprocess import run as r` -> r: (subprocess, run)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.ImportFrom) and node.module in _RUNNERS:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    found: list[Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [Call(path, node.lineno, m.group(1)) for m in _PROGRAM_PATH.finditer(node.value)]
            found += [Call(path, node.lineno, m.group(1)) for m in _DATA_PATH.finditer(node.value)]
        elif isinstance(node, ast.Call) and (runner := _runner(node, imported)):
            args = node.args[1:] if runner[1] in _PROGRAM_SECOND else node.args
            first = args[0] if args else next((k.value for k in node.keywords if k.arg in {"args", "cmd"}), None)
            for program in _first_program(first, names):
                words = program.split()
                if words:  # a shell command line names its program first
                    found.append(Call(path, node.lineno, words[0].rsplit("/", 1)[-1] or words[0]))
    return found


def scan(root: Path) -> list[Call]:
    """Every program and system path the scanned files of *root* use."""
    return [call for path in scanned_files(root) for call in scan_source(path.read_text(), str(path.relative_to(root)))]


def problems(calls: list[Call], packages: list[str]) -> list[str]:
    """One message per call whose program the list does not provide."""
    messages = []
    for call in calls:
        program = call.program
        if program in ALLOWED or _PYTHON_VERSIONED.fullmatch(program):
            continue
        package = PATH_PACKAGE_OF.get(program) if program.startswith("/") else PACKAGE_OF.get(program)
        where = f"{call.path}:{call.line}"
        if package is None:
            messages.append(
                f"{where}: calls {program!r}, which no known Debian package provides here: "
                f"add its package to {PACKAGE_LIST} and the program to {PROGRAM_TABLE}, "
                "or to the allow-list (ALLOWED) with the reason it needs no package"
            )
        elif package not in packages:
            messages.append(f"{where}: calls {program!r} from Debian package {package!r}: add it to {PACKAGE_LIST}")
    return messages


# --------------------------------------------------------------------------- the checks


def test_every_called_program_is_in_the_system_package_list() -> None:
    calls = scan(ROOT)
    assert calls, "the scan found no program at all: it is broken"
    assert problems(calls, listed_packages()) == []


def test_the_scan_sees_the_programs_the_suite_is_known_to_call() -> None:
    """The scan is only as good as what it finds: the known calls of today must be among them."""
    found = {call.program for call in scan(ROOT)}
    assert {"slapd", "ldapadd", "ldapmodify", "ldapwhoami", "openssl", "chromium", "/usr/lib/ldap"} <= found


def test_every_listed_package_is_needed() -> None:
    """A package nobody calls is dead weight on every CI machine (and hides which one is needed)."""
    needed = {PACKAGE_OF.get(c.program) or PATH_PACKAGE_OF.get(c.program) for c in scan(ROOT)}
    assert [p for p in listed_packages() if p not in needed] == []


def test_each_list_line_says_who_needs_the_package() -> None:
    for line in (ROOT / PACKAGE_LIST).read_text().splitlines():
        package, _, reason = line.partition("#")
        if package.strip():
            assert len(package.split()) == 1 and reason.strip(), f"{PACKAGE_LIST}: `package  # who needs it`: {line!r}"


def _unlisted(package: str) -> str:
    """A program of *package* from the table (the planted sources name programs through it)."""
    return next(program for program, owner in PACKAGE_OF.items() if owner == package)


def test_scan_reports_a_planted_call_of_an_unlisted_program(tmp_path: Path) -> None:
    """A fixture that starts a database server, and others that find or run programs, are all reported."""
    server, proxy, database, node, npm, client = (
        _unlisted(p) for p in ("redis-server", "haproxy", "mariadb-server", "nodejs", "postgresql", "postgresql-client")
    )
    planted = {
        "packages/demo/tests/conftest.py": f"""
            import subprocess
            def server(port):
                return subprocess.Popen(
                    [{server!r}, "--port", str(port)],
                )
            """,
        "packages/demo/src/demo/testing/__init__.py": f"""
            import shutil
            from subprocess import run as go
            PROXY = shutil.which({proxy!r})
            COMMAND = [{database!r}, "--datadir", "x"]
            def start():
                go(COMMAND)
            """,
        "benchmarks/bench_demo.py": f"""
            import asyncio, os
            NODE = "/usr/bin/{node}"
            async def main():
                await asyncio.create_subprocess_exec({npm!r}, "install")
                os.system("frobnicate --now")
            """,
        "noxfile.py": f"""
            def session_x(session):
                session.run({client!r}, "-c", "select 1")
            """,
        "tests/test_demo.py": """
            import subprocess
            def test_x():
                subprocess.run(["slapd", "-V"])   # listed: no message
                subprocess.run(["git", "status"])  # allowed: no message
            """,
    }
    for name, source in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(source))
    reported = "\n".join(problems(scan(tmp_path), ["slapd"]))
    for program in (server, proxy, database, node, npm, client):
        package = PACKAGE_OF[program]
        assert f"calls {program!r} from Debian package {package!r}: add it to .ci/system-packages.txt" in reported
    assert "calls 'frobnicate', which no known Debian package provides" in reported
    assert "the allow-list" in reported
    assert "packages/demo/tests/conftest.py:4:" in reported  # the line of the call
    assert "slapd" not in reported and "git" not in reported


def test_the_program_table_names_the_services_later_issues_add() -> None:
    assert {"redis-server", "haproxy", "mariadb-server", "postgresql", "nodejs"} <= set(PACKAGE_OF.values())


def test_ci_run_installs_from_the_list_file() -> None:
    """`.ci/run` installs exactly the list (python3-venv only where PEP 668 needs it), no second list."""
    shown = _list_with(ROOT / ".ci" / "run")
    extra = set(shown) - set(listed_packages())
    assert set(listed_packages()) <= set(shown) and extra <= {"python3-venv"}


def test_ci_run_follows_an_edited_list(tmp_path: Path) -> None:
    """Change the file, and `.ci/run` installs the new list: it reads the file, it does not repeat it."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / PACKAGE_LIST).write_text("# planted\npkg-one   # a fixture\n\npkg-two  # another\n")
    assert [p for p in _list_with(tmp_path / ".ci" / "run") if p != "python3-venv"] == ["pkg-one", "pkg-two"]
    (tmp_path / PACKAGE_LIST).write_text("pkg-one pkg-two\n")
    refused = subprocess.run(["bash", str(tmp_path / ".ci" / "run"), "--list-system-packages"], capture_output=True)
    assert refused.returncode == 2 and b"one package per line" in refused.stderr


def _list_with(script: Path) -> list[str]:
    """What `.ci/run --list-system-packages` would install (it stops before installing anything)."""
    # A .ci/run without the option would ignore it and run the whole suite: check first.
    assert "--list-system-packages)" in script.read_text(), f"{script} has no --list-system-packages"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run(
        ["bash", str(script), "--list-system-packages"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()
