"""A bounded load run: locust (headless, from the index) through HAProxy at three ``authcore serve`` on one Redis.

The deployment is the one of tests/test_deploy.py (:func:`authcore.testing.haproxy.start_deployment`).
The users are in ``tests/load_locustfile.py``: a mix of logins, verifies, refreshes and logouts,
each user under a login of its own. The run must end with 0 failures in locust's CSV statistics,
which covers 0 identity mix-ups (a verify or refresh answering another login is a failure) and
every revoked token refused (checked after each logout, within the issue's 1 s).

locust pulls gevent and a web UI we do not use: it gets a virtualenv of its own, built once per
locust version and interpreter under ``~/.cache/authcore/locust/`` (``$AUTHCORE_LOCUST_VENV``
overrides the directory), under a file lock, so the package virtualenvs stay small. The run lasts
``$AUTHCORE_LOAD_RUN_TIME`` seconds (default 60, what CI uses; shorten it locally).
``nox -s tests`` runs this module on one interpreter only (see noxfile.py).
"""

from __future__ import annotations

import csv
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authcore.testing.haproxy import Deployment, start_deployment

#: The load generator, pinned: the venv is named after it.
LOCUST = "locust==2.47.0"
LOCUSTFILE = Path(__file__).with_name("load_locustfile.py")
#: Concurrent users and how many start per second; sized for a two-core machine that also runs
#: the three instances, Redis and HAProxy (an overloaded machine would measure itself).
USERS = 10
SPAWN_RATE = 10
#: The rows the mix must have produced (the locustfile's request names).
ROWS = ("login", "verify", "refresh", "logout", "verify revoked")


def run_time() -> int:
    """Seconds of load: ``$AUTHCORE_LOAD_RUN_TIME``, default 60."""
    value = os.environ.get("AUTHCORE_LOAD_RUN_TIME", "60")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"AUTHCORE_LOAD_RUN_TIME is a whole number of seconds, not {value!r}")
    return int(value)


def _venv_root() -> Path:
    override = os.environ.get("AUTHCORE_LOCUST_VENV")
    base = Path(override).expanduser() if override else Path.home() / ".cache" / "authcore" / "locust"
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return base / f"{LOCUST.replace('==', '-')}-{version}"


@pytest.fixture(scope="module")
def locust(venv_at: Callable[[Path], Any]) -> Path:
    """The ``locust`` program of the dedicated virtualenv, built on first use."""
    root = _venv_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    marker = root / ".authcore-installed"  # written last: its presence means the install is complete
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                shutil.rmtree(root, ignore_errors=True)
                venv_at(root).install(LOCUST)
                marker.write_text(f"{LOCUST}\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root / "bin" / "locust"


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, child_env: Callable[..., dict[str, str]]
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("load")
    env = child_env({"AUTHCORE_STATE_DIR": str(directory / "state")})
    started = start_deployment(directory, instances=3, env=env)
    try:
        yield started
    finally:
        started.stop()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_minute_of_logins_verifies_refreshes_and_logouts_through_haproxy(
    locust: Path, deployment: Deployment, tmp_path: Path, child_env: Callable[..., dict[str, str]]
) -> None:
    seconds = run_time()
    prefix = tmp_path / "load"
    command = [
        str(locust), "-f", str(LOCUSTFILE), "--headless", "--host", deployment.proxy.url,
        "--users", str(USERS), "--spawn-rate", str(SPAWN_RATE), "--run-time", f"{seconds}s",
        "--stop-timeout", "15", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=seconds + 180)
    output = (done.stdout + done.stderr)[-4000:]
    stats = {row["Name"]: row for row in _rows(prefix.with_name("load_stats.csv"))}
    failures = _rows(prefix.with_name("load_failures.csv"))
    exceptions = _rows(prefix.with_name("load_exceptions.csv"))

    assert exceptions == [], f"the locustfile raised:\n{exceptions}"
    mix_ups = [row for row in failures if "identity mix-up" in row["Error"]]
    assert mix_ups == [], f"identity mix-ups: {mix_ups}"
    still_accepted = [row for row in failures if "still accepted" in row["Error"]]
    assert still_accepted == [], f"revoked tokens accepted past the bound: {still_accepted}"
    assert failures == [], f"failed requests: {failures}\n{output}"
    assert int(stats["Aggregated"]["Failure Count"]) == 0, output
    for name in ROWS:
        assert int(stats[name]["Request Count"]) > 0, f"no {name!r} in the run: {sorted(stats)}"
    # Every logout was followed by a check of the revoked token (a user stopped at the end of the
    # run between the two is the only exception).
    logouts, checked = int(stats["logout"]["Request Count"]), int(stats["verify revoked"]["Request Count"])
    assert logouts - USERS <= checked <= logouts, (logouts, checked)
    assert done.returncode == 0, output
