"""Development sessions for the authcore monorepo.

    nox                          # lint, typecheck, tests (the default sessions)
    nox -s tests                 # every package's tests + tests/ against built wheels, on 3.11-3.13
    nox -s tests-3.12 -- -x -k cli   # one interpreter; arguments after -- go to pytest
    nox -s build                 # wheels + sdists of every package into dist/, metadata checked
    nox -s lint typecheck        # ruff check + ruff format --check; mypy (strict for authcore)
    nox -s bench                 # benchmarks/run.py against the built wheels; fails on a missed target
    nox -s bench -- --write-docs # the same, and rewrite the tracked docs/benchmarks.md from the results
    nox -s demo                  # authcore login / token verify / logout with the dummy provider
    nox -s demo -- --keep-running [--port N]   # leave the service up (port 8000 unless --port)

``nox -s bench`` keeps its results out of git: JSON in benchmarks/results/ and the table it
would write in test-artifacts/benchmarks.md; only ``--write-docs`` touches docs/benchmarks.md.

Everything that installs our packages installs the *wheels built from this checkout, by
path*: the package index holds an unrelated, older distribution called ``authcore``
(0.1.x) that must never be picked up.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PACKAGES = ROOT / "packages"
DIST = ROOT / "dist"
ARTIFACTS = ROOT / "test-artifacts"
PYTHONS = ["3.11", "3.12", "3.13"]
#: The interpreter whose `tests` session runs tests/test_load.py (a minute of locust).
LOAD_TEST_PYTHON = PYTHONS[-1]
CORE = "authcore"
#: Test processes per interpreter (pytest-xdist) unless AUTHCORE_TEST_WORKERS says (1 to 8).
#: Most tests wait on a server or a child process, so even a two-core machine keeps two busy.
MAX_TEST_WORKERS = 4
#: Pinned so that `nox -s lint typecheck` gives the same answer everywhere.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in {"", "0", "false", "no", "off"}


IN_CI = _truthy(os.environ.get("CI"))

nox.options.sessions = ["lint", "typecheck", "tests"]
# A missing interpreter is a skip on a developer's machine and a failure in CI.
nox.options.error_on_missing_interpreters = IN_CI
# Never try to download an interpreter: only package registries are reachable.
nox.options.download_python = "never"


def _add_pyenv_interpreters() -> None:
    """Make pyenv-installed interpreters findable even when pyenv's global version excludes them.

    pyenv puts a ``python3.12`` shim on PATH that fails unless 3.12 is an active pyenv
    version. We *append* each ``$PYENV_ROOT/versions/3.X.*/bin`` to PATH: an interpreter
    that already works keeps precedence, and nox's discovery skips the failing shim.
    """
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    extra: list[str] = []
    for version in PYTHONS:
        for candidate in sorted(root.glob(f"versions/{version}.*/bin"), reverse=True):
            if (candidate / f"python{version}").exists():
                extra.append(str(candidate))
                break
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(path + [d for d in extra if d not in path])


_add_pyenv_interpreters()


# --------------------------------------------------------------------------- packages


def _package_dirs() -> list[Path]:
    """Every distribution under packages/ (core first), then the example provider packages under examples/."""
    dirs = [p.parent for p in PACKAGES.glob("*/pyproject.toml")]
    dirs += [p.parent for p in (ROOT / "examples").glob("*/pyproject.toml")]
    return sorted(dirs, key=lambda d: (d.name != CORE, d.name))


def _project(package_dir: Path) -> dict[str, object]:
    with open(package_dir / "pyproject.toml", "rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def _normalize(name: str) -> str:
    """Distribution name as it appears in a wheel file name (PEP 427/503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _import_name(package_dir: Path) -> str:
    return _normalize(str(_project(package_dir)["name"]))


def _wheel_for(wheelhouse: Path, package_dir: Path) -> Path:
    project = _project(package_dir)
    pattern = f"{_normalize(str(project['name']))}-{project['version']}-*.whl"
    found = sorted(wheelhouse.glob(pattern))
    if len(found) != 1:
        raise RuntimeError(f"expected one wheel matching {pattern} in {wheelhouse}, found {found}")
    return found[0]


def _src_dirs() -> list[str]:
    return [str(d / "src" / _import_name(d)) for d in _package_dirs() if (d / "src" / _import_name(d)).is_dir()]


# Set when `build` ran in this nox invocation, so later sessions reuse its dist/.
_BUILT_THIS_RUN: Path | None = None
# Wheels built (once per nox invocation) for sessions that need them when `build` did not run.
_WHEELHOUSE: Path | None = None


def _build(session: nox.Session, outdir: Path, *, sdist: bool, dirs: list[Path] | None = None) -> None:
    """Build packages (default: all) into *outdir* with ``python -m build`` (isolated build environments)."""
    session.install("build")
    for package_dir in _package_dirs() if dirs is None else dirs:
        kinds = ["--sdist", "--wheel"] if sdist else ["--wheel"]
        session.run("python", "-m", "build", *kinds, "--outdir", str(outdir), str(package_dir))


# Packages whose wheel is in _WHEELHOUSE, built during this nox invocation.
_BUILT_WHEELS: set[str] = set()


def _wheelhouse(session: nox.Session, dirs: list[Path]) -> Path:
    """A directory holding a wheel, built during this nox run, of each package in *dirs*.

    That is dist/ if the `build` session ran earlier in this invocation; otherwise
    .nox/_wheelhouse, emptied at its first use in the invocation and filled on demand.
    """
    global _WHEELHOUSE
    if _BUILT_THIS_RUN is not None:
        return _BUILT_THIS_RUN
    if _WHEELHOUSE is None:
        _WHEELHOUSE = ROOT / ".nox" / "_wheelhouse"
        shutil.rmtree(_WHEELHOUSE, ignore_errors=True)
        _WHEELHOUSE.mkdir(parents=True)
    missing = [d for d in dirs if d.name not in _BUILT_WHEELS]
    if missing:
        _build(session, _WHEELHOUSE, sdist=False, dirs=missing)
        _BUILT_WHEELS.update(d.name for d in missing)
    return _WHEELHOUSE


def _install_wheels(
    session: nox.Session, *extra: str, only: list[str] | None = None, test_extras: bool = False
) -> Path:
    """Install our wheels BY PATH (never by name from the index) plus *extra* requirements.

    With *test_extras*, each package's ``[test]`` extra (if it declares one) comes along.
    Returns the wheelhouse. A reused virtualenv gets our wheels force-reinstalled, so it
    never keeps stale code of the same version.
    """
    dirs = [d for d in _package_dirs() if only is None or d.name in only]
    wheelhouse = _wheelhouse(session, dirs)
    wheels = [str(_wheel_for(wheelhouse, d)) for d in dirs]
    requirements = [
        f"{wheel}[test]" if test_extras and "test" in _project(d).get("optional-dependencies", {}) else wheel  # type: ignore[operator]
        for wheel, d in zip(wheels, dirs, strict=True)
    ]
    session.install("--find-links", str(wheelhouse), *requirements, *extra)
    session.install("--force-reinstall", "--no-deps", *wheels)
    # Prove it: what is importable is the installed wheel, not a src/ tree.
    names = [_import_name(d) for d in dirs]
    session.run(
        "python",
        "-c",
        textwrap.dedent(
            f"""
            import importlib.util, sysconfig
            site = sysconfig.get_paths()["purelib"]
            for name in {names!r}:
                spec = importlib.util.find_spec(name)
                where = spec.origin if spec else None
                assert where and where.startswith(site), f"{{name}} imported from {{where}}, not {{site}}"
                print(f"{{name}}: {{where}}")
            """
        ),
        env={"PYTHONPATH": None},
    )
    return wheelhouse


# --------------------------------------------------------------------------- sessions


@nox.session
def build(session: nox.Session) -> None:
    """Wheels and sdists of every package into dist/, with their metadata checked."""
    global _BUILT_THIS_RUN
    shutil.rmtree(DIST, ignore_errors=True)
    DIST.mkdir()
    _build(session, DIST, sdist=True)
    session.install("twine")
    session.run("twine", "check", "--strict", *sorted(glob.glob(str(DIST / "*"))))
    _check_dists(session, DIST)
    _BUILT_THIS_RUN = DIST


def _check_dists(session: nox.Session, dist: Path) -> None:
    """Light content checks twine does not do: py.typed shipped, entry points declared, no stray files."""
    problems: list[str] = []
    for package_dir in _package_dirs():
        project = _project(package_dir)
        name, version, module = str(project["name"]), str(project["version"]), _import_name(package_dir)
        wheel = _wheel_for(dist, package_dir)
        with zipfile.ZipFile(wheel) as archive:
            files = archive.namelist()
            info = f"{_normalize(name)}-{version}.dist-info"
            if f"{module}/py.typed" not in files:
                problems.append(f"{wheel.name}: {module}/py.typed missing")
            if f"{module}/__init__.py" not in files:
                problems.append(f"{wheel.name}: {module}/__init__.py missing")
            stray = [f for f in files if not (f.startswith((f"{module}/", f"{info}/")))]
            if stray:
                problems.append(f"{wheel.name}: unexpected files {stray}")
            groups = project.get("entry-points", {})
            if groups:
                entry_points = archive.read(f"{info}/entry_points.txt").decode()
                for group in groups:  # type: ignore[union-attr]
                    if f"[{group}]" not in entry_points:
                        problems.append(f"{wheel.name}: entry-point group {group} missing")
        sdists = sorted(dist.glob(f"{_normalize(name)}-{version}.tar.gz"))
        if len(sdists) != 1:
            problems.append(f"no sdist for {name} {version}")
    if problems:
        session.error("distribution check failed:\n  " + "\n  ".join(problems))
    session.log(f"checked {len(_package_dirs())} wheels and sdists in {dist}")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Every package's tests and the integration tests in tests/, against the installed wheels."""
    wheelhouse = _install_wheels(session, "pytest>=8", "pytest-xdist>=3.5", test_extras=True)
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / f"junit-{session.python}.xml"
    # The minute of load through HAProxy runs on one interpreter: it loads the deployment, not
    # the interpreter (tests/test_deploy.py, on every one, covers that), and CI's time is counted.
    only_once = [] if session.python == LOAD_TEST_PYTHON else ["--ignore=tests/test_load.py"]
    session.run(
        "pytest",
        f"--junitxml={junit}",
        *_test_workers(session),
        *only_once,
        *session.posargs,
        env={
            "PYTHONPATH": None,  # nothing from src/ on sys.path: the wheels are what is tested
            "AUTHCORE_WHEELHOUSE": str(wheelhouse),  # tests/test_install.py reuses these wheels
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
    )


def _test_workers(session: nox.Session) -> list[str]:
    """pytest-xdist's options: a module's tests stay in one worker (``loadfile``), so the servers its
    module-scoped fixtures start are started once; ports come from each worker's own block
    (authcore.testing.ports)."""
    wanted = os.environ.get("AUTHCORE_TEST_WORKERS", "")
    if wanted:
        if not (wanted.isascii() and wanted.isdecimal() and 1 <= int(wanted) <= 8):
            session.error(f"AUTHCORE_TEST_WORKERS must be a number from 1 to 8, not {wanted[:20]!r}")
        workers = int(wanted)
    else:
        # The CPUs this process may run on (a container's share), not the host's count.
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(MAX_TEST_WORKERS, usable)
    return ["--numprocesses", str(workers), "--dist", "loadfile"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over every Python file of the repository."""
    session.install(RUFF)
    targets = [t for t in ("packages", "tests", "benchmarks", "examples", "noxfile.py") if (ROOT / t).exists()]
    failed = False
    try:
        session.run("ruff", "check", "--output-format", "concise", *targets, *session.posargs)
    except nox.command.CommandFailed:
        failed = True
    try:
        session.run("ruff", "format", "--check", "--output-format", "concise", *targets)
    except nox.command.CommandFailed:
        failed = True
    if failed:
        session.error("lint failed (see above); `ruff check --fix` and `ruff format` fix most of it")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's src/ (config in the root pyproject.toml)."""
    dependencies: set[str] = set()
    for package_dir in _package_dirs():
        project = _project(package_dir)
        for requirement in project.get("dependencies", []):  # type: ignore[attr-defined]
            # Our own distributions come from mypy_path (src/), not from the index.
            if _normalize(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]) not in {
                _normalize(str(_project(d)["name"])) for d in _package_dirs()
            }:
                dependencies.add(requirement)
        for extra in project.get("optional-dependencies", {}).values():  # type: ignore[attr-defined]
            dependencies.update(extra)
    session.install(MYPY, "types-PyYAML", "types-greenlet", *sorted(dependencies))
    session.run("mypy", *_src_dirs(), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run benchmarks/run.py against the installed wheels; fails when a target is missed.

    Results go to benchmarks/results/*.json and test-artifacts/benchmarks.md (both untracked);
    ``nox -s bench -- --write-docs`` also rewrites the tracked docs/benchmarks.md. Other
    arguments after ``--`` go to benchmarks/run.py (``--quick``, script names).
    """
    wheelhouse = _install_wheels(session, "httpx", "PyJWT")  # bench_web's ASGI client; bench_verify's reference
    # [redis]: bench_deploy runs `authcore serve` on the Redis store (and HAProxy in front).
    session.install("--find-links", str(wheelhouse), f"{_wheel_for(wheelhouse, PACKAGES / CORE)}[server,flask,redis]")
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs, env={"PYTHONPATH": None})


@nox.session
def demo(session: nox.Session) -> None:
    """The service with the development default (a login and a token check over HTTP), then the CLI.

    ``nox -s demo -- --keep-running`` leaves the service up on http://127.0.0.1:8000/ so a
    person can open the login page (test / Admin) in a browser; Ctrl-C stops it.
    ``--port N`` picks the port (default: 8000 with ``--keep-running``, else any free port).
    """
    keep_running, port = _demo_options(session)
    wheelhouse = _install_wheels(session, only=[CORE, "auth-dummy"])
    session.install("--find-links", str(wheelhouse), f"{_wheel_for(wheelhouse, PACKAGES / CORE)}[server]")
    workdir = Path(session.create_tmp()).resolve() / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    config = workdir / "authcore.yml"
    config.write_text(
        textwrap.dedent(
            """\
            # A development configuration: the dummy provider grants the permissions the password names.
            providers:
              - name: dummy
                type: dummy
            """
        )
    )
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(session.bin), os.environ.get("PATH", "")]),
        "VIRTUAL_ENV": str(session.virtualenv.location),
        "AUTHCORE_STATE_DIR": str(workdir / "state"),  # development secret + SQLite sessions
    }
    env.pop("PYTHONPATH", None)
    authcore = str(Path(session.bin) / "authcore")

    shown_token: dict[str, str] = {}

    def step(title: str, args: list[str], *, stdin: str | None = None, expect: int = 0) -> str:
        shown = " ".join(["authcore", *args])
        for value, name in shown_token.items():
            shown = shown.replace(value, name)
        if stdin is not None:
            shown = f"echo {stdin} | {shown}"
        print(f"\n=== {title}\n$ {shown}", flush=True)
        proc = subprocess.run(
            [authcore, *args], input=stdin, env=env, capture_output=True, text=True, cwd=workdir, timeout=120
        )
        sys.stdout.write(proc.stdout)
        sys.stdout.write("".join(f"  (stderr) {line}\n" for line in proc.stderr.splitlines()))
        print(f"-> exit code {proc.returncode} (expected {expect})", flush=True)
        if proc.returncode != expect:
            session.error(f"{title}: exit code {proc.returncode}, expected {expect}")
        return proc.stdout

    _demo_service(session, authcore, env, keep_running=keep_running, port=port)

    print(f"\nconfiguration {config}:\n{config.read_text()}", flush=True)
    step("installed providers", ["providers"])
    step("configuration check", ["check", "--config", str(config)])
    login = json.loads(
        step(
            "log in as 'test' with password 'Admin' (the dummy grants the permissions the password names)",
            ["login", "--config", str(config), "--provider", "dummy", "--login", "test", "--password-stdin", "--json"],
            stdin="Admin",
        )
    )
    token = login["token"]
    shown_token[token] = '"$TOKEN"'
    print(f"\nTOKEN={token[:24]}... (the access token above, {len(token)} characters)", flush=True)
    step("verify the access token in a separate process", ["token", "verify", "--config", str(config), "--json", token])
    step("log out: the session is revoked", ["logout", "--config", str(config), token])
    step("verify again: refused", ["token", "verify", "--config", str(config), "--json", token], expect=1)
    print(f"\ndemo finished: login -> verify -> logout -> verify refused (state in {workdir})", flush=True)


def _demo_options(session: nox.Session) -> tuple[bool, int | None]:
    """``--keep-running`` and ``--port N`` (or ``--port=N``) from the arguments after ``--``."""
    parser = argparse.ArgumentParser(prog="nox -s demo --", add_help=False, exit_on_error=False)
    parser.add_argument("--keep-running", action="store_true")
    parser.add_argument("--port", type=int, default=None)
    try:
        options, unknown = parser.parse_known_args(session.posargs)
    except argparse.ArgumentError as exc:
        session.error(f"nox -s demo: {exc}")
    if unknown:
        session.error(f"nox -s demo: unknown arguments {unknown}; it takes --keep-running and --port N")
    if options.port is not None and not 1 <= options.port <= 65535:
        session.error(f"nox -s demo: --port {options.port} is not a TCP port (1-65535)")
    return options.keep_running, options.port


def _demo_service(
    session: nox.Session, authcore: str, env: dict[str, str], *, keep_running: bool, port: int | None
) -> None:
    """Start `authcore serve` with no configuration, log in over HTTP and check the token.

    The port is *port*; without one, 8000 when the service is kept running (a stable address
    for a person), else any free port, so the demo never clashes with a running service.
    """
    import socket
    import time
    import urllib.error
    import urllib.request

    if port is None and keep_running:
        port = 8000
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    print(f"\n=== the service with the development default\n$ authcore serve --port {port}", flush=True)
    server = subprocess.Popen([authcore, "serve", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                session.error("authcore serve did not start")
            time.sleep(0.2)

        def call(method: str, path: str, body: object = None, token: str | None = None) -> object:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{base}{path}", data=data, method=method)
            request.add_header("Content-Type", "application/json")
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.loads(reply.read())

        body = {"plugin": "dummy", "login": "test", "password": "Admin", "token": "Admin"}
        print(f"\n=== log in (py-ispyb's request)\n$ curl -X POST {base}/auth/login -d '{json.dumps(body)}'")
        login = call("POST", "/auth/login", body)
        assert isinstance(login, dict)
        shown = {**login, "token": login["token"][:24] + "...", "refresh_token": "..."}
        print(json.dumps(shown, indent=2), flush=True)
        print(f'\n=== check the token\n$ curl {base}/auth/me -H "Authorization: Bearer $TOKEN"')
        print(json.dumps(call("GET", "/auth/me", token=login["token"]), indent=2), flush=True)
        if keep_running:
            print(f"\nthe login page is at {base}/ (log in as test / Admin); Ctrl-C stops the service", flush=True)
            server.wait()
    finally:
        server.terminate()
        server.wait(timeout=10)
