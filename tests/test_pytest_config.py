"""The suite's pytest configuration, as it acts on a test: checks made in threads can fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

THREADED = """
import threading


def test_a_check_in_a_thread():
    def check():
        assert 1 + 1 == 3, "checked in a worker thread"

    thread = threading.Thread(target=check)
    thread.start()
    thread.join()
"""


def test_an_exception_that_ends_a_test_thread_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "test_threaded.py").write_text(THREADED)
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)]
    plugins = ["-p", "no:cacheprovider", "-p", "no:xdist"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *config, *plugins, "-q", str(tmp_path / "test_threaded.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "checked in a worker thread" in run.stdout, run.stdout
