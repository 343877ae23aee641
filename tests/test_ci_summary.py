"""`.ci/run`'s closing summary: printed in every case, with the suite's exit status.

`.ci/suite` (what `.ci/run` ends with) runs nox and then `.ci/summary.py`. These tests run
both as real processes: the summary on junit files written here, and the suite script with
a stand-in for nox (a small script that writes what `nox -s tests` and `nox --report` write,
then exits with the status a failed lint, a failed test or a green run gives).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / ".ci" / "summary.py"


def junit(path: Path, cases: dict[str, str]) -> None:
    """A pytest-style junit file: test id (``module::name``) -> ``passed``/``failed``/``error``/``skipped``."""
    counts = {kind: sum(1 for v in cases.values() if v == kind) for kind in ("failed", "error", "skipped")}
    body = []
    for test_id, outcome in cases.items():
        classname, name = test_id.split("::")
        inner = {
            "passed": "",
            "failed": '<failure message="assert 1 == 2">trace</failure>',
            "error": '<error message="fixture broke">trace</error>',
            "skipped": '<skipped message="no"/>',
        }[outcome]
        body.append(f'<testcase classname="{classname}" name="{name}" time="0.1">{inner}</testcase>')
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        f'errors="{counts["error"]}" failures="{counts["failed"]}" skipped="{counts["skipped"]}" '
        f'tests="{len(cases)}" time="1.0">{"".join(body)}</testsuite></testsuites>'
    )


def nox_report(path: Path, sessions: dict[str, str]) -> None:
    """What ``nox --report`` writes: session signature -> ``success``/``failed``/``skipped``."""
    entries = [
        {"name": name.split("-")[0], "signatures": [name], "result": result, "result_code": 0, "reason": None}
        for name, result in sessions.items()
    ]
    path.write_text(json.dumps({"result": int(all(r == "success" for r in sessions.values())), "sessions": entries}))


def summary(artifacts: Path, nox_status: int) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, str(SUMMARY), "--nox-status", str(nox_status), "--elapsed", "7", str(artifacts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr == ""
    return proc.returncode, proc.stdout.splitlines()


def test_green_run_exits_0_with_the_closing_line(tmp_path: Path) -> None:
    junit(tmp_path / "junit-3.11.xml", {"a::t1": "passed", "a::t2": "skipped"})
    junit(tmp_path / "junit-3.12.xml", {"a::t1": "passed", "a::t2": "passed"})
    nox_report(tmp_path / "nox-report.json", {"lint": "success", "tests-3.11": "success", "tests-3.12": "success"})
    status, lines = summary(tmp_path, 0)
    assert status == 0
    assert lines[-1] == "tests: 3 passed, 0 failed, 1 skipped"
    assert "ci: pytest ran on 2 interpreters (3.11, 3.12); finished in 7 s" in lines
    assert not any("FAILED" in line or "failing" in line for line in lines)


def test_failing_tests_are_named_with_their_interpreters(tmp_path: Path) -> None:
    junit(tmp_path / "junit-3.11.xml", {"pkg.test_a::test_ok": "passed", "pkg.test_a::test_bad[x]": "failed"})
    junit(tmp_path / "junit-3.12.xml", {"pkg.test_a::test_ok": "error", "pkg.test_a::test_bad[x]": "failed"})
    status, lines = summary(tmp_path, 1)
    assert status == 1
    assert "  pkg.test_a::test_bad[x] (python 3.11, 3.12)" in lines
    assert "  pkg.test_a::test_ok (python 3.12)" in lines
    assert "ci: failing tests (2):" in lines
    assert lines[-1] == "tests: 1 passed, 3 failed, 0 skipped"


def test_lint_failed_and_no_tests_ran(tmp_path: Path) -> None:
    """The case `.ci/run` used to end without a summary: a session failed, pytest never wrote a file."""
    nox_report(tmp_path / "nox-report.json", {"lint": "failed", "typecheck": "success", "tests-3.11": "failed"})
    status, lines = summary(tmp_path, 1)
    assert status == 1
    assert "ci: FAILED sessions: lint, tests-3.11" in lines
    assert any(line.startswith("ci: no test results") for line in lines)
    assert lines[-1] == "tests: 0 passed, 0 failed, 0 skipped"


def test_a_failed_session_fails_the_run_even_when_every_test_passed(tmp_path: Path) -> None:
    junit(tmp_path / "junit-3.11.xml", {"a::t": "passed"})
    nox_report(tmp_path / "nox-report.json", {"lint": "failed", "tests-3.11": "success"})
    for nox_status in (1, 0):  # also if nox's own status were lost
        status, lines = summary(tmp_path, nox_status)
        assert status == 1 and "ci: FAILED sessions: lint" in lines
        assert lines[-1] == "tests: 1 passed, 0 failed, 0 skipped"


def test_nox_failing_before_any_session_still_gets_a_summary(tmp_path: Path) -> None:
    status, lines = summary(tmp_path, 2)
    assert status == 2
    assert any("nox exited 2 without a session report" in line for line in lines)
    assert lines[-1] == "tests: 0 passed, 0 failed, 0 skipped"


@pytest.mark.parametrize("nox_status", [0, 1])
def test_no_results_is_never_a_pass(tmp_path: Path, nox_status: int) -> None:
    status, lines = summary(tmp_path, nox_status)
    assert status == (nox_status or 1)
    assert lines[-1] == "tests: 0 passed, 0 failed, 0 skipped"


def test_an_unreadable_junit_file_fails_the_run(tmp_path: Path) -> None:
    junit(tmp_path / "junit-3.11.xml", {"a::t": "passed"})
    (tmp_path / "junit-3.12.xml").write_text("<testsuites><testsuite")  # pytest killed mid-write
    status, lines = summary(tmp_path, 0)
    assert status == 1
    assert any("junit-3.12.xml is unreadable" in line for line in lines)
    assert lines[-1] == "tests: 1 passed, 0 failed, 0 skipped"


def test_a_long_list_of_failures_is_cut_but_counted(tmp_path: Path) -> None:
    junit(tmp_path / "junit-3.11.xml", {f"m::t{i:03}": "failed" for i in range(120)})
    status, lines = summary(tmp_path, 1)
    assert status == 1
    assert sum(1 for line in lines if line.startswith("  m::t")) == 50
    assert "  ... and 70 more (see " in "\n".join(lines)
    assert lines[-1] == "tests: 0 passed, 120 failed, 0 skipped"


# --------------------------------------------------------------------------- .ci/suite, end to end

FAKE_NOX = """\
#!{python}
# Stands in for nox: writes what the sessions would, then exits like nox.
import json, pathlib, sys
args = sys.argv[1:]
assert args[:4] == ["-s", "lint", "typecheck", "tests"], args
assert "--no-stop-on-first-error" in args, args
report = pathlib.Path(args[args.index("--report") + 1])
scenario = {scenario!r}
sessions = {{"lint": "failed" if scenario == "lint" else "success", "typecheck": "success"}}
if scenario != "crash":
    artifacts = pathlib.Path("test-artifacts")
    case = '<testcase classname="m" name="t_bad"><failure message="x"/></testcase>' if scenario == "test" else ""
    artifacts.joinpath("junit-3.11.xml").write_text(
        '<testsuite tests="2" failures="%d" errors="0" skipped="0">'
        '<testcase classname="m" name="t_ok"/>%s</testsuite>' % (scenario == "test", case)
    )
    sessions["tests-3.11"] = "failed" if scenario == "test" else "success"
    report.write_text(json.dumps({{"result": 0, "sessions": [
        {{"name": k, "signatures": [k], "result": v, "reason": None}} for k, v in sessions.items()]}}))
sys.exit(0 if scenario == "green" else 1)
"""


@pytest.mark.parametrize(
    ("scenario", "status", "expected"),
    [
        ("green", 0, ["tests: 2 passed, 0 failed, 0 skipped"]),
        ("lint", 1, ["ci: FAILED sessions: lint", "tests: 2 passed, 0 failed, 0 skipped"]),
        (
            "test",
            1,
            ["ci: FAILED sessions: tests-3.11", "  m::t_bad (python 3.11)", "tests: 1 passed, 1 failed, 0 skipped"],
        ),
        ("crash", 1, ["tests: 0 passed, 0 failed, 0 skipped"]),
    ],
)
def test_suite_prints_the_summary_and_exits_with_the_suite_status(
    tmp_path: Path, scenario: str, status: int, expected: list[str]
) -> None:
    (tmp_path / ".ci").mkdir()
    for name in ("suite", "summary.py"):
        shutil.copy(ROOT / ".ci" / name, tmp_path / ".ci" / name)
    (tmp_path / "test-artifacts").mkdir()
    (tmp_path / "test-artifacts" / "junit-3.13.xml").write_text("<stale/>")  # from an earlier run: removed
    fake = tmp_path / "fake-nox"
    fake.write_text(FAKE_NOX.format(python=sys.executable, scenario=scenario))
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "suite"), str(fake)], capture_output=True, text=True, env=env, timeout=120
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert lines[-1] == expected[-1]
    for line in expected:
        assert line in lines
    assert "3.13" not in proc.stdout


def test_ci_scripts_do_not_swallow_failures() -> None:
    """The exit status is captured with `if`, never hidden by `|| true` or `set +e`."""
    for name in ("run", "suite"):
        text = (ROOT / ".ci" / name).read_text()
        assert "set -euo pipefail" in text
        assert "|| true" not in text and "set +e" not in text
    assert 'exec bash .ci/suite "${nox[@]}"' in (ROOT / ".ci" / "run").read_text()


def test_summary_runs_on_a_bare_python() -> None:
    """It runs on the system python3 before anything is installed: standard library only."""
    source = SUMMARY.read_text()
    imported = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, textwrap.shorten(str(imported), 200)
