"""auth-local's password login against the argon2 verification it contains, same run, same parameters.

Measured: ``AuthManager.login("local", login=, password=)`` with the ``local`` provider on an
SQLite file (its default argon2id parameters, OWASP's: t=2, m=19 MiB, p=1) and the memory
session store: the user lookup, one argon2id verification, the identity, permissions, a
session and a signed access token. Floor: ``argon2.PasswordHasher(<the provider's
parameters>).verify(hash, password)`` on the very hash the provider stored for that user,
the bare cost a password login cannot avoid.

Each round runs ``LOGINS`` calls of one contender; the floor and the login rounds are
interleaved (:func:`_report.interleave`: A B, B A, ...) and timed in CPU seconds
(:data:`_report.CPU_CLOCK`: both are CPU-bound, argon2 with one lane and an SQLite read from
the page cache, so another process's load on a shared machine is not charged to either),
with the garbage collector paused. The figure is the median of the
per-round ratios; target <= 1.1 (issue 14).

Usage: ``python benchmarks/bench_local.py [--quick] [results.json]``. Needs auth-local
installed. JSON goes to the path given, else ``$AUTHCORE_BENCH_RESULTS/bench_local.json``
(``benchmarks/run.py``), else ``benchmarks/results/local.json``. Exits 1 when the target is missed.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import argon2
from _report import CPU_CLOCK, finish, interleave, missed_targets, output_path, paused_gc, print_table, ratio_entry

from auth_local.config import LocalConfig
from auth_local.fields import login_key
from authcore import AuthManager, NewUser

QUICK = "--quick" in sys.argv[1:]
ROUNDS = 11 if QUICK else 41
LOGINS = 3 if QUICK else 5
TARGET = 1.1
LOGIN, PASSWORD = "bench.user", "a bench password, long enough"


def config(database: Path) -> dict[str, Any]:
    """One ``local`` provider on *database* with its default argon2 parameters; memory sessions."""
    return {
        "tokens": {"secret": secrets.token_urlsafe(48)},
        "sessions": {"store": "memory://"},
        "providers": [{"name": "local", "type": "local", "config": {"database_url": f"sqlite:///{database}"}}],
        "permissions": {"groups": {"staff": ["own_proposals"]}},
    }


def timed(call: Any, count: int) -> float:
    """CPU seconds per call of *call* over *count* calls, the garbage collector paused."""
    with paused_gc():
        start = CPU_CLOCK()
        for _ in range(count):
            call()
        elapsed = CPU_CLOCK() - start
    return elapsed / count


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code."""
    output = output_path(argv, "local")
    defaults = LocalConfig()
    floor_hasher = argon2.PasswordHasher(
        time_cost=defaults.argon2_time_cost,
        memory_cost=defaults.argon2_memory_cost,
        parallelism=defaults.argon2_parallelism,
        type=argon2.Type.ID,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-local-") as tmp,
        AuthManager.from_config(config(Path(tmp) / "users.db")) as manager,
    ):
        provider: Any = manager.provider("local")
        provider.create_user(NewUser.model_validate({"login": LOGIN, "password": PASSWORD, "roles": ["staff"]}))
        row = provider.store.find(login_key(LOGIN))
        assert row is not None and row.password_hash is not None
        encoded: str = row.password_hash
        # The floor verifies what the login verifies, with what the login's hasher uses.
        assert not floor_hasher.check_needs_rehash(encoded), "floor and provider parameters differ"
        assert floor_hasher.verify(encoded, PASSWORD)
        result = manager.login("local", login=LOGIN, password=PASSWORD)
        assert result.login == LOGIN and "own_proposals" in result.permissions

        def floor() -> float:
            return timed(lambda: floor_hasher.verify(encoded, PASSWORD), LOGINS)

        def login() -> float:
            return timed(lambda: manager.login("local", login=LOGIN, password=PASSWORD), LOGINS)

        floor(), login()  # warm-up: SQLite page cache, argon2's memory, the token signer
        samples = interleave({"floor": floor, "login": login}, ROUNDS)
    entries = [
        ratio_entry(
            "auth-local password login (AuthManager.login vs argon2 verify)",
            samples["login"],
            samples["floor"],
            unit="ms",
            scale=1e3,
            target=TARGET,
            note=f"{ROUNDS} rounds x {LOGINS} logins, CPU time, SQLite file, memory sessions, argon2id "
            f"t={defaults.argon2_time_cost} m={defaults.argon2_memory_cost} KiB p={defaults.argon2_parallelism}; "
            "floor: argon2.PasswordHasher.verify on the stored hash",
        )
    ]
    print_table(entries)
    return finish(output, "local", entries, missed_targets(entries), rounds=ROUNDS, logins_per_round=LOGINS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
