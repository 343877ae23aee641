"""What every benchmark script shares: where results go, how they are written, how a round is timed."""

from __future__ import annotations

import gc
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["output_path", "finish", "copies", "run_round"]


def output_path(argv: list[str], name: str) -> Path:
    """The first non-option argument, else ``$AUTHCORE_BENCH_RESULTS/bench_<name>.json`` (set by
    ``benchmarks/run.py``), else ``benchmarks/results/<name>.json``."""
    paths = [arg for arg in argv[1:] if not arg.startswith("-")]
    if paths:
        return Path(paths[0])
    if os.environ.get("AUTHCORE_BENCH_RESULTS"):
        return Path(os.environ["AUTHCORE_BENCH_RESULTS"]) / f"bench_{name}.json"
    return Path(__file__).resolve().parent / "results" / f"{name}.json"


def finish(output: Path, name: str, entries: list[dict[str, Any]], failures: list[str], **meta: Any) -> int:
    """Write the JSON report, say which targets were missed, and return the exit code."""
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": name,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **meta,
        "entries": entries,
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {output}")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    return 1 if failures else 0


def copies(token: str, count: int) -> list[str]:
    """*count* distinct str objects equal to *token*, so no call profits from a cached hash."""
    head, last = token[:-1], token[-1]
    return [head + last for _ in range(count)]


def run_round(function: Callable[[str], Any], token: str, calls: int) -> float:
    """Seconds per call over *calls* fresh copies of *token*, with the garbage collector paused."""
    inputs = copies(token, calls)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for item in inputs:
            function(item)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / calls
