"""`nox -s bench` leaves the tracked docs/benchmarks.md alone unless asked (`-- --write-docs`).

The runner (benchmarks/run.py) is copied into a scratch tree with one stand-in benchmark
script, so the test runs the real runner in a real process without timing anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A benchmark script that writes one result, and refuses options it does not know: the
#: runner must keep ``--write-docs`` to itself.
FAKE_BENCH = """\
import json, os, pathlib, sys
unknown = [a for a in sys.argv[1:] if a.startswith("-") and a != "--quick"]
if unknown:
    sys.exit(f"unknown options {unknown}")
out = pathlib.Path(os.environ["AUTHCORE_BENCH_RESULTS"]) / "bench_fake.json"
entry = {"name": "fake", "measured": 1.0, "floor": 1.0, "ratio": 1.0, "target": 2.0, "unit": "us"}
out.write_text(json.dumps({"results": [entry]}))
"""
TRACKED = "# Benchmarks\n\nthe committed table\n"


def scratch_tree(tmp_path: Path) -> Path:
    """A copy of benchmarks/ (the runner and its helpers, no real benchmark) plus docs/."""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    for source in (ROOT / "benchmarks").glob("*.py"):
        if not source.name.startswith("bench_"):
            shutil.copy(source, bench / source.name)
    (bench / "bench_fake.py").write_text(FAKE_BENCH)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks.md").write_text(TRACKED)
    return tmp_path


def run(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "run.py"), *args],
        capture_output=True,
        text=True,
        cwd=tree,
        timeout=120,
    )


def test_a_plain_run_does_not_touch_the_tracked_doc(tmp_path: Path) -> None:
    tree = scratch_tree(tmp_path)
    proc = run(tree, "--quick")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tree / "docs" / "benchmarks.md").read_text() == TRACKED
    preview = tree / "test-artifacts" / "benchmarks.md"
    assert "| fake |" in preview.read_text()  # the table is still there to read, untracked
    assert json.loads((tree / "benchmarks" / "results" / "bench_fake.json").read_text())["results"]
    assert "--write-docs writes docs/benchmarks.md" in proc.stdout


def test_write_docs_rewrites_it_and_is_not_passed_to_the_scripts(tmp_path: Path) -> None:
    tree = scratch_tree(tmp_path)
    proc = run(tree, "--write-docs", "--quick")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = (tree / "docs" / "benchmarks.md").read_text()
    assert written != TRACKED and "| fake |" in written
    assert "nox -s bench -- --write-docs" in written  # the doc says how it is regenerated


def test_where_plain_runs_write_is_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "test-artifacts/" in ignored and "benchmarks/results/*.json" in ignored


def test_the_flag_is_documented() -> None:
    assert "nox -s bench -- --write-docs" in (ROOT / "noxfile.py").read_text()
    assert "nox -s bench -- --write-docs" in (ROOT / "README.md").read_text()
