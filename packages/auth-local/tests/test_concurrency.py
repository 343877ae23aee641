"""Eight threads registering and logging in at once, on SQLite and PostgreSQL: no errors, no duplicates.

The threads use two managers on one database (two engines and pools, as two service
instances would), and all of them also race for one login spelt in ways that are one
account after NFKC + casefold: exactly one wins, the rest get UserExists.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from auth_local import LocalProvider
from auth_local.schema import users as users_table
from authcore import AuthManager, Registration, UserExists
from authcore.testing.race import outcomes, race

THREADS = 8
ROUNDS = 3
PW = "Correct-Horse-Battery-9"
SHARED_SPELLINGS = ["shared", "SHARED", "Shared", "ｓｈａｒｅｄ", "sHaReD", "SHAREd", "ｓhared", "sharED"]


def test_eight_threads_register_and_log_in(make_manager: Callable[..., AuthManager]) -> None:
    """Every thread registers its own users and logs in with them; one shared login has exactly one owner."""
    managers = [make_manager(registration="open"), make_manager(registration="open")]
    shared_wins: list[str] = []
    mixups: list[str] = []

    def worker(n: int) -> None:
        manager = managers[n % 2]
        users = manager.users("users")
        try:
            users.self_register(Registration(login=SHARED_SPELLINGS[n], password=PW))
            shared_wins.append(SHARED_SPELLINGS[n])
        except UserExists:
            pass
        for r in range(ROUNDS):
            login = f"user-{n}-{r}"
            users.self_register(Registration(login=login, password=f"{PW}-{n}-{r}"))
            result = manager.login("users", login=login.upper(), password=f"{PW}-{n}-{r}")
            if result.login != login or manager.verify(result.access_token).login != login:
                mixups.append(login)

    results = race(worker, THREADS)
    assert outcomes(results) == {"ok": THREADS}, results
    assert mixups == []
    assert len(shared_wins) == 1
    provider = managers[0].provider("users")
    assert isinstance(provider, LocalProvider)
    with provider.store.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(users_table)).scalar_one()
        keys = connection.execute(select(func.count(func.distinct(users_table.c.login_key)))).scalar_one()
    assert count == keys == THREADS * ROUNDS + 1
    winner = managers[1].login("users", login="SHARED", password=PW)
    assert winner.login == shared_wins[0]
