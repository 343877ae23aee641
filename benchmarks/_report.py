"""What every benchmark script shares: where results go, how they are written, how a round is timed,
and how a ratio against a floor is taken.

Ratios: the floor and the measured code run in interleaved rounds (:func:`interleave`, or
:func:`ainterleave` for coroutines): each round runs every contender once, in an order that
reverses every other round (A B, B A, A B, ...), so a floor round and a measured round are
always neighbours in time. :func:`ratio_entry` divides each measured round by the floor round of
the same round and reports the *median* of those per-round ratios, with their spread (min, max,
quartiles), so a burst of load on a shared machine spoils a round or two, not the figure, and
the spread shows how steady the run was. The garbage collector is paused (after a full collection)
during every timed round (:func:`paused_gc`), so a collection triggered by one contender's garbage
is not charged to the next.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "output_path",
    "finish",
    "copies",
    "run_round",
    "CPU_CLOCK",
    "paused_gc",
    "interleave",
    "ainterleave",
    "ratio_summary",
    "ratio_entry",
    "spread_text",
    "missed_targets",
    "print_table",
]


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


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """A full collection, then no collection until the block ends."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: The clock of CPU-bound rounds: CPU seconds of this process (every thread), not wall time, so
#: the time another process holds the CPU is not counted (it would be, wall-clock, in whichever
#: contender happened to run then). Wall time (``time.perf_counter``) is for rounds that wait on
#: I/O or on another process (an LDAP server, say).
CPU_CLOCK: Callable[[], float] = time.process_time


def run_round(
    function: Callable[[str], Any], token: str, calls: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call over *calls* fresh copies of *token*, by *clock*, with the garbage collector paused."""
    inputs = copies(token, calls)
    with paused_gc():
        start = clock()
        for item in inputs:
            function(item)
        elapsed = clock() - start
    return elapsed / calls


def _order(names: list[str], index: int) -> list[str]:
    # Every other round runs backwards: each pair of contenders takes turns going first.
    return names if index % 2 == 0 else names[::-1]


def interleave(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Per-round figures of each contender: *rounds* rounds, each calling every contender's round
    function once (it returns its figure, seconds per call say), in alternating order."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for index in range(rounds):
        for name in _order(names, index):
            samples[name].append(contenders[name]())
    return samples


async def ainterleave(contenders: dict[str, Callable[[], Awaitable[float]]], rounds: int) -> dict[str, list[float]]:
    """:func:`interleave` for round functions that are coroutines."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for index in range(rounds):
        for name in _order(names, index):
            samples[name].append(await contenders[name]())
    return samples


def ratio_summary(measured: list[float], floor: list[float]) -> dict[str, float]:
    """The median of the per-round ratios ``measured[i] / floor[i]``, and their spread."""
    if not measured or len(measured) != len(floor):
        raise ValueError("one floor round per measured round")
    ratios = sorted(m / f for m, f in zip(measured, floor, strict=True))
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "ratio": round(statistics.median(ratios), 4),
        "ratio_min": round(ratios[0], 4),
        "ratio_q1": round(quartiles[0], 4),
        "ratio_q3": round(quartiles[2], 4),
        "ratio_max": round(ratios[-1], 4),
        "rounds": len(ratios),
    }


def spread_text(entry: dict[str, Any]) -> str:
    """``min 1.21, IQR 1.25-1.31, max 1.40`` for an entry from :func:`ratio_entry`."""
    return (
        f"min {entry['ratio_min']:.3g}, IQR {entry['ratio_q1']:.3g}-{entry['ratio_q3']:.3g}, "
        f"max {entry['ratio_max']:.3g}"
    )


def ratio_entry(
    name: str,
    measured: list[float],
    floor: list[float],
    *,
    unit: str,
    scale: float,
    target: float | None,
    max_measured: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A result entry: ``ratio`` is the median per-round ratio (see :func:`ratio_summary`);
    ``measured`` and ``floor`` are the medians of the rounds, times *scale*, in *unit*.
    The note ends with the spread of the ratios."""
    entry: dict[str, Any] = {
        "name": name,
        "measured": round(statistics.median(measured) * scale, 4),
        "floor": round(statistics.median(floor) * scale, 4),
        "best_measured": round(min(measured) * scale, 4),
        "best_floor": round(min(floor) * scale, 4),
        **ratio_summary(measured, floor),
        "target": target,
        "max_measured": max_measured,
        "unit": unit,
    }
    spread = spread_text(entry)
    entry["note"] = (
        f"{note}; " if note else ""
    ) + f"median of {entry['rounds']} per-round ratios (floor and measured interleaved), {spread}"
    return entry


def missed_targets(entries: list[dict[str, Any]]) -> list[str]:
    """One line per entry whose ratio is above its target or whose measure is above its ceiling."""
    failures = []
    for item in entries:
        if item["target"] is not None and item["ratio"] > item["target"]:
            failures.append(f"{item['name']}: ratio {item['ratio']:.3f} > {item['target']}")
        if item["max_measured"] is not None and item["measured"] > item["max_measured"]:
            failures.append(f"{item['name']}: {item['measured']:.3f} {item['unit']} > {item['max_measured']}")
    return failures


def print_table(entries: list[dict[str, Any]]) -> None:
    """The entries as a text table: measured, ratio, target, and the spread of the ratios."""
    width = max(len(item["name"]) for item in entries) + 1
    print(f"{'name':<{width}} {'measured':>10} {'ratio':>7} {'target':>8}  spread of the per-round ratios")
    for item in entries:
        target = "-" if item["target"] is None else f"<={item['target']}"
        print(
            f"{item['name']:<{width}} {item['measured']:>8.3f}{item['unit']:>2} {item['ratio']:>7.3f} {target:>8}  "
            + spread_text(item)
        )
