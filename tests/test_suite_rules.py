"""Rules every test module of the suite follows, checked by reading the modules.

* **No clock read in a decorator.** ``@pytest.mark.parametrize(..., [time.time() - 5])`` is
  evaluated when pytest collects the module; under pytest-xdist a test may run minutes later,
  and a token "expired 5 s ago, within the 10 s leeway" has expired for good by then (it failed
  CI once, on all three interpreters). A time a test needs is read when the test runs: pass an
  offset and add it to the clock inside the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCKS = {
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.perf_counter",
    "datetime.now",
    "datetime.utcnow",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "date.today",
    "datetime.date.today",
}


def suite_modules() -> list[Path]:
    """Every test module of the repository (the packages', the examples' and the cross-package ones)."""
    patterns = ["packages/*/tests/**/test_*.py", "examples/*/tests/**/test_*.py", "tests/**/test_*.py"]
    return sorted(path for pattern in patterns for path in ROOT.glob(pattern))


def clock_reads_in_decorators(source: str) -> list[tuple[int, str]]:
    """(line, call) for every clock read inside a decorator of *source*."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                for call in ast.walk(decorator):
                    if isinstance(call, ast.Call) and ast.unparse(call.func) in CLOCKS:
                        found.append((call.lineno, ast.unparse(call)))
    return found


def test_the_rule_sees_a_clock_read_in_parametrize() -> None:
    source = "import time, pytest\n\n@pytest.mark.parametrize('exp', [int(time.time()) - 5])\ndef test_x(exp): ...\n"
    assert clock_reads_in_decorators(source) == [(3, "time.time()")]
    assert clock_reads_in_decorators("import time\n\ndef test_x():\n    now = time.time()\n") == []


def test_no_test_module_reads_the_clock_in_a_decorator() -> None:
    modules = suite_modules()
    assert len(modules) > 100  # the globs found the suite
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {call}"
        for path in modules
        for line, call in clock_reads_in_decorators(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "a clock read when pytest collects, not when the test runs:\n" + "\n".join(offenders)
