"""Startup benchmarks: cold import + manager, and provider discovery among 1,000 installed distributions.

Every figure is a ratio against a floor measured in the same run, with the same
interpreter, alternating measured and floor runs so that machine noise hits both alike;
the reported values are medians.

1. ``cold_import_manager``: a fresh ``python -c`` that imports authcore and builds an
   AuthManager with the dummy provider, against a fresh ``python -c`` that imports the
   dependencies alone (pluggy, pydantic with its ``BaseModel``, yaml, jwt). Python's own
   start-up is in both numbers, on purpose. Target: at most 1.3x.
2. ``discovery_1000_dists``: with 1,000 synthetic ``*.dist-info`` directories first on
   sys.path, ``installed_providers()`` + ``AuthManager.from_config`` (dummy), timed inside
   a fresh process (imports done before the clock starts), against a bare
   ``importlib.metadata.entry_points(group="authcore.providers")`` scan in the same setup.
   Target: at most 1.2x.

Writes ``benchmarks/results/bench_startup.json`` (or ``$AUTHCORE_BENCH_RESULTS/...``) and
exits 1 when a target is missed. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("AUTHCORE_BENCH_RESULTS", HERE / "results"))
QUICK = "--quick" in sys.argv[1:]

DUMMY_CONFIG = '{"providers": [{"name": "dummy"}]}'

COLD_MEASURED = f"import authcore\nauthcore.AuthManager.from_config({DUMMY_CONFIG}).close()\n"
# `import pydantic` alone is lazy (pydantic 2 defers BaseModel until first use); every
# user of pydantic touches BaseModel, so the floor does too.
COLD_FLOOR = "import pluggy, yaml, jwt, pydantic\npydantic.BaseModel\n"
# The literal reading of "import the dependencies", reported for information only.
COLD_FLOOR_LAZY = "import pluggy, yaml, jwt, pydantic\n"
# Informational too: the first BaseModel subclass makes pydantic import its schema machinery
# (about 20 ms here), a one-time cost every pydantic user pays.
COLD_FLOOR_MODEL = "import pluggy, yaml, jwt, pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0\n"

# Both sides get the same setup (authcore imported, clock not started): only the timed
# operation differs.
DISCOVERY_SETUP = """\
import sys
sys.path.insert(0, {path!r})
import time
import importlib.metadata
import authcore, authcore.plugins
# authcore loads its names on first use: import the manager here, before the clock starts.
authcore.AuthManager
"""
DISCOVERY_MEASURED = (
    DISCOVERY_SETUP
    + """\
t0 = time.perf_counter()
entries = authcore.plugins.installed_providers()
manager = authcore.AuthManager.from_config({config})
t1 = time.perf_counter()
assert "dummy" in [e.name for e in entries] and "dummy" in manager.providers
print(t1 - t0)
"""
)
DISCOVERY_FLOOR = (
    DISCOVERY_SETUP
    + """\
t0 = time.perf_counter()
eps = importlib.metadata.entry_points(group="authcore.providers")
t1 = time.perf_counter()
assert "dummy" in eps.names
print(t1 - t0)
"""
)


def child_env() -> dict[str, str]:
    # Keep .pyc files (a cold *process*, not a cold disk): PYTHONDONTWRITEBYTECODE is dropped.
    drop = {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return env


def check(proc: subprocess.CompletedProcess[str], code: str) -> None:
    if proc.returncode != 0:
        sys.stderr.write(f"benchmark child failed (exit {proc.returncode}):\n{code}\n{proc.stderr}")
        raise SystemExit(2)


def run_wall(code: str, cwd: str) -> float:
    """Wall time of a whole ``python -c code`` process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=child_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    check(proc, code)
    return elapsed


def run_inner(code: str, cwd: str) -> float:
    """The time a child process reports for its timed section."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=child_env(), capture_output=True, text=True)
    check(proc, code)
    return float(proc.stdout.strip().splitlines()[-1])


def alternate(measure, codes: dict[str, str], repeat: int, warmup: int, cwd: str) -> dict[str, list[float]]:
    for _ in range(warmup):
        for code in codes.values():
            measure(code, cwd)
    samples: dict[str, list[float]] = {name: [] for name in codes}
    for i in range(repeat):
        order = list(codes.items()) if i % 2 == 0 else list(reversed(codes.items()))
        for name, code in order:
            samples[name].append(measure(code, cwd))
    return samples


def make_distributions(root: Path, count: int = 1000) -> None:
    """*count* synthetic installed distributions; most declare entry points in groups that are not ours."""
    groups = [
        "[console_scripts]\ntool{i} = pkg{i}.cli:main\n",
        "[gui_scripts]\nviewer{i} = pkg{i}.gui:main\n",
        "[myapp.plugins]\nplugin{i} = pkg{i}.plugin\n",
        "[flake8.extension]\nX{i} = pkg{i}.checker:Checker\n",
        "[console_scripts]\nrun{i} = pkg{i}:run\n\n[myapp.hooks]\nhook{i} = pkg{i}.hooks\n",
        None,  # no entry_points.txt at all
    ]
    for i in range(count):
        info = root / f"synthetic_pkg{i:04d}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: synthetic-pkg{i:04d}\nVersion: 1.0\nSummary: synthetic distribution\n"
        )
        (info / "RECORD").write_text("")
        template = groups[i % len(groups)]
        if template is not None:
            (info / "entry_points.txt").write_text(template.format(i=i))


def entry(name: str, measured: float, floor: float, target: float | None, unit: str, **extra: object) -> dict:
    ratio = measured / floor if floor else float("inf")
    ok = None if target is None else ratio <= target
    return {
        "name": name,
        "measured": measured,
        "floor": floor,
        "ratio": ratio,
        "target": target,
        "unit": unit,
        "ok": ok,
        **extra,
    }


def main() -> int:
    repeat_cold = 10 if QUICK else 30
    repeat_discovery = 8 if QUICK else 25
    results = []
    with tempfile.TemporaryDirectory(prefix="authcore-bench-") as tmp:
        # 1. cold import + manager
        samples = alternate(
            run_wall,
            {
                "measured": COLD_MEASURED,
                "floor": COLD_FLOOR,
                "floor_lazy": COLD_FLOOR_LAZY,
                "floor_model": COLD_FLOOR_MODEL,
            },
            repeat=repeat_cold,
            warmup=3,
            cwd=tmp,
        )
        measured, floor = statistics.median(samples["measured"]), statistics.median(samples["floor"])
        lazy = statistics.median(samples["floor_lazy"])
        with_model = statistics.median(samples["floor_model"])
        results.append(
            entry(
                "cold_import_manager",
                measured * 1e3,
                floor * 1e3,
                1.3,
                "ms",
                runs=repeat_cold,
                floor_code=COLD_FLOOR.strip(),
                measured_code=COLD_MEASURED.strip(),
                note=f"median of {repeat_cold} alternating fresh `python -c` processes (wall time, interpreter start-up"
                " included); floor: `import pluggy, yaml, jwt, pydantic` + `pydantic.BaseModel`",
            )
        )
        results.append(
            entry(
                "cold_import_manager_vs_lazy_pydantic_import",
                measured * 1e3,
                lazy * 1e3,
                None,
                "ms",
                runs=repeat_cold,
                floor_code=COLD_FLOOR_LAZY.strip(),
                note="informational: `import pydantic` alone defers BaseModel, so this floor leaves out most of it",
            )
        )

        results.append(
            entry(
                "cold_import_manager_vs_deps_plus_one_model",
                measured * 1e3,
                with_model * 1e3,
                None,
                "ms",
                runs=repeat_cold,
                floor_code=COLD_FLOOR_MODEL.strip(),
                note="informational: the floor also defines one pydantic model, paying pydantic's one-time schema"
                " machinery import",
            )
        )

        # 2. discovery with 1,000 installed distributions
        site = Path(tmp) / "site"
        site.mkdir()
        make_distributions(site)
        codes = {
            "measured": DISCOVERY_MEASURED.format(path=str(site), config=DUMMY_CONFIG),
            "floor": DISCOVERY_FLOOR.format(path=str(site)),
        }
        samples = alternate(run_inner, codes, repeat=repeat_discovery, warmup=2, cwd=tmp)
        results.append(
            entry(
                "discovery_1000_dists",
                statistics.median(samples["measured"]) * 1e3,
                statistics.median(samples["floor"]) * 1e3,
                1.2,
                "ms",
                runs=repeat_discovery,
                distributions=1000,
                note=f"median of {repeat_discovery} alternating fresh processes, timing the operation only"
                " (in-process); floor: `importlib.metadata.entry_points(group='authcore.providers')`",
            )
        )

    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "script": Path(__file__).name,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    (RESULTS / "bench_startup.json").write_text(json.dumps(document, indent=2) + "\n")
    for r in results:
        verdict = "n/a" if r["ok"] is None else ("ok" if r["ok"] else "MISSED")
        target = "-" if r["target"] is None else f"<= {r['target']}x"
        print(
            f"{r['name']:<46} {r['measured']:9.2f} {r['unit']}  floor {r['floor']:9.2f} {r['unit']}"
            f"  ratio {r['ratio']:5.2f}  target {target:<8} {verdict}"
        )
    return 1 if any(r["ok"] is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
