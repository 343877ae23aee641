"""The closing summary of `.ci/run`: totals, failing tests and failed nox sessions; exit with the suite's status.

    python3 .ci/summary.py --nox-status N [--elapsed SECONDS] [ARTIFACTS]

ARTIFACTS (default ``test-artifacts``) holds the ``junit-<python>.xml`` files that
``nox -s tests`` writes and ``nox-report.json`` (``nox --report``). The summary is printed in
every case, also when a session failed before pytest ran (say lint, or a tests session whose
install failed), and always ends with the line ``tests: N passed, N failed, N skipped``.

Exit status: nox's own status when it is not 0, else 1 when a test failed, a result file is
missing or unreadable, else 0. Standard library only: it runs on the system ``python3``.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

#: Failing tests listed by name; past this many the rest are counted, so a broken machine
#: (every LDAP test failing without slapd) does not bury the totals.
MAX_LISTED = 50


@dataclass
class Results:
    """What the junit files and the nox report say."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    #: Interpreters whose junit file was read.
    interpreters: list[str] = field(default_factory=list)
    #: Failing test id -> interpreters it failed on, in file order.
    failing: dict[str, list[str]] = field(default_factory=dict)
    #: Problems that make the run a failure although no test reported one.
    problems: list[str] = field(default_factory=list)
    #: (session signature, result, reason) from nox's report; empty without a report.
    sessions: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Failures plus errors (a fixture that broke is a failed test too)."""
        return self.failures + self.errors

    @property
    def passed(self) -> int:
        """Tests that neither failed nor were skipped."""
        return self.tests - self.failed - self.skipped


def _test_id(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "?")
    return f"{classname}::{name}" if classname else name


def read_junit(path: Path, results: Results) -> None:
    """Add one junit file (a ``testsuite`` root or ``testsuites`` of them) to *results*."""
    interpreter = path.stem.removeprefix("junit-")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        # pytest killed while writing, or the disk filled up: not a pass.
        results.problems.append(f"{path} is unreadable ({exc})")
        return
    results.interpreters.append(interpreter)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for key in ("tests", "failures", "errors", "skipped"):
            setattr(results, key, getattr(results, key) + int(suite.get(key, 0)))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                results.failing.setdefault(_test_id(case), []).append(interpreter)


def read_nox_report(path: Path, results: Results) -> None:
    """Add the sessions of ``nox --report`` to *results*; a missing report is said by :func:`render`."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        sessions = report["sessions"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for session in sessions:
        signatures = session.get("signatures") or [session.get("name", "?")]
        results.sessions.append((str(signatures[0]), str(session.get("result", "?")), str(session.get("reason") or "")))


def collect(artifacts: Path) -> Results:
    """Read every junit file and the nox report under *artifacts*."""
    results = Results()
    for path in sorted(artifacts.glob("junit-*.xml")):
        read_junit(path, results)
    read_nox_report(artifacts / "nox-report.json", results)
    return results


def render(results: Results, *, nox_status: int, elapsed: int | None, artifacts: Path) -> tuple[list[str], int]:
    """The summary's lines and the exit status."""
    lines: list[str] = []
    if results.sessions:
        shown = [
            f"{name} {result}" + (f" ({reason})" if reason and result != "success" else "")
            for name, result, reason in results.sessions
        ]
        lines.append("ci: nox sessions: " + ", ".join(shown))
    elif nox_status:
        lines.append(f"ci: nox exited {nox_status} without a session report: it stopped early, see its output above")
    failed_sessions = [name for name, result, _ in results.sessions if result in {"failed", "aborted"}]
    if failed_sessions:
        lines.append(f"ci: FAILED sessions: {', '.join(failed_sessions)}")
    if results.failing:
        lines.append(f"ci: failing tests ({len(results.failing)}):")
        for test_id, interpreters in list(results.failing.items())[:MAX_LISTED]:
            lines.append(f"  {test_id} (python {', '.join(interpreters)})")
        if len(results.failing) > MAX_LISTED:
            lines.append(f"  ... and {len(results.failing) - MAX_LISTED} more (see {artifacts}/junit-*.xml)")
    lines.extend(f"ci: {problem}" for problem in results.problems)
    if not results.interpreters:
        lines.append(
            f"ci: no test results: no readable {artifacts}/junit-*.xml, so pytest never ran "
            "(a session failed before it, or the tests session did not start)"
        )
    else:
        took = f"; finished in {elapsed} s" if elapsed is not None else ""
        lines.append(
            f"ci: pytest ran on {len(results.interpreters)} interpreters ({', '.join(results.interpreters)}){took}"
        )
    # The closing line keeps this exact shape: people and scripts read it.
    lines.append(f"tests: {results.passed} passed, {results.failed} failed, {results.skipped} skipped")
    if nox_status:
        status = nox_status
    elif results.failed or results.problems or not results.interpreters or failed_sessions:
        status = 1
    else:
        status = 0
    return lines, status


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the artifacts directory and return the suite's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="?", default="test-artifacts", type=Path)
    parser.add_argument("--nox-status", type=int, required=True, help="nox's exit status")
    parser.add_argument("--elapsed", type=int, default=None, help="seconds the whole run took")
    options = parser.parse_args(argv)
    results = collect(options.artifacts)
    lines, status = render(results, nox_status=options.nox_status, elapsed=options.elapsed, artifacts=options.artifacts)
    print("\n".join(lines), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
