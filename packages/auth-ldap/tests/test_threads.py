"""8 threads, 5,000 logins of different users: zero errors, zero identities handed to the wrong user."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from auth_ldap import LdapConfig, LdapProvider
from auth_ldap.testing import LOAD_USERS, SlapdServer
from authcore import AuthManager, PasswordCredentials
from authcore.testing.race import outcomes, race

THREADS = 8
TOTAL = 5_000


def test_5000_logins_8_threads_no_mixups(slapd: SlapdServer, configs: Any) -> None:
    search_config, manager_config = configs
    config = manager_config(search_config(slapd, pool_size=8))
    config["permissions"]["groups"]["loadtest"] = ["load"]
    errors: list[str] = []
    mixups: list[str] = []
    counts = [0] * THREADS
    with AuthManager.from_config(config) as manager:

        def worker(n: int) -> None:
            for i in range(n, TOTAL, THREADS):
                login = f"u{i % LOAD_USERS:03d}"
                try:
                    identity = manager.login("ldap", login=login, password=f"{login}-pw").identity
                except Exception as exc:
                    errors.append(f"{login}: {type(exc).__name__}")
                    continue
                counts[n] += 1
                if (
                    identity.login != login
                    or identity.email != f"{login}@example.org"
                    or identity.family_name != f"Number{i % LOAD_USERS}"
                    or identity.attributes["dn"] != f"uid={login},ou=people,dc=example,dc=org"
                    or identity.groups != ("loadtest",)
                    or "load" not in identity.permissions
                ):
                    mixups.append(f"{login} got {identity.login}")

        results = race(worker, THREADS)
    assert outcomes(results) == {"ok": THREADS}, results
    assert errors == []
    assert mixups == []
    assert sum(counts) == TOTAL


def test_wrong_passwords_interleaved_never_succeed(slapd: SlapdServer, configs: Any) -> None:
    """Pooled bind connections are rebound per login: a failed bind never inherits the previous user's."""
    p = LdapProvider("ldap", LdapConfig.model_validate(configs[0](slapd, pool_size=2)))
    answers: list[str] = []

    def worker(n: int) -> None:
        for i in range(100):
            login = f"u{(n * 100 + i) % LOAD_USERS:03d}"
            good = i % 2 == 0
            password = f"{login}-pw" if good else "wrong-pw"
            try:
                identity = p.authenticate(PasswordCredentials(login=login, password=SecretStr(password)))
                answers.append("ok" if good and identity.login == login else f"BAD {login}")
            except Exception as exc:
                answers.append("ok" if not good and type(exc).__name__ == "InvalidCredentials" else f"BAD {exc!r}")

    results = race(worker, 4)
    p.close()
    assert outcomes(results) == {"ok": 4}, results
    assert answers.count("ok") == 400, [o for o in answers if o != "ok"][:5]
