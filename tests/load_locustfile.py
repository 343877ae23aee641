"""Locust users for tests/test_load.py: logins, verifies, refreshes and logouts through the balancer.

Run by the ``locust`` command of a dedicated virtualenv (``locust -f tests/load_locustfile.py
--headless --host <haproxy url> ...``), never imported by pytest (the name does not start with
``test_``). Each user logs in under a login of its own, so every answer can be checked against it:

* a verify (``GET /auth/me``) or a refresh that answers another login is an *identity mix-up*,
  reported as a failure named so;
* after each logout, the revoked token is checked through the balancer until it is refused
  (401), within the issue's bound of 1 s; a token still accepted then is a failure. The first
  check is the row ``verify revoked``; the checks after an acceptance inside the bound are
  ``verify revoked (retry)``, so the statistics show how often the bound was needed at all.

Every failure lands in locust's CSV statistics, which the test reads. Messages name logins and
statuses, never a token.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from locust import HttpUser, between, task

#: The issue's bound on revocation reaching every instance.
REVOCATION_BOUND = 1.0
#: Each request's own bound: a hung request is a failure, never a hung run.
REQUEST_TIMEOUT = 10.0


class AuthUser(HttpUser):
    """One client: logs in, then verifies (most often), refreshes, and now and then logs out and back in."""

    wait_time = between(0.01, 0.1)

    def on_start(self) -> None:
        self.login = ""
        self.tokens: dict[str, Any] | None = None
        self.sign_in()

    def _bearer(self) -> dict[str, str]:
        assert self.tokens is not None
        return {"Authorization": f"Bearer {self.tokens['token']}"}

    def sign_in(self) -> None:
        self.login = f"load-{uuid.uuid4().hex[:16]}"
        self.tokens = None
        body = {"plugin": "dummy", "login": self.login, "password": "read"}
        with self.client.post(
            "/auth/login", json=body, name="login", catch_response=True, timeout=REQUEST_TIMEOUT
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"login answered {answer.status_code}")
            elif answer.json().get("login") != self.login:
                answer.failure("identity mix-up: login answered another login")
            else:
                self.tokens = answer.json()

    @task(6)
    def verify(self) -> None:
        if self.tokens is None:
            return self.sign_in()
        with self.client.get(
            "/auth/me", headers=self._bearer(), name="verify", catch_response=True, timeout=REQUEST_TIMEOUT
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"verify answered {answer.status_code}")
            elif answer.json().get("login") != self.login:
                answer.failure("identity mix-up: verify answered another login")

    @task(2)
    def refresh(self) -> None:
        if self.tokens is None:
            return self.sign_in()
        body = {"refresh_token": self.tokens["refresh_token"]}
        with self.client.post(
            "/auth/refresh", json=body, name="refresh", catch_response=True, timeout=REQUEST_TIMEOUT
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"refresh answered {answer.status_code}")
                self.tokens = None
            elif answer.json().get("login") != self.login:
                answer.failure("identity mix-up: refresh answered another login")
                self.tokens = None
            else:
                self.tokens = answer.json()

    @task(1)
    def logout_and_back(self) -> None:
        if self.tokens is None:
            return self.sign_in()
        headers = self._bearer()
        with self.client.post(
            "/auth/logout", headers=headers, name="logout", catch_response=True, timeout=REQUEST_TIMEOUT
        ) as answer:
            if answer.status_code != 204:
                answer.failure(f"logout answered {answer.status_code}")
                return self.sign_in()
        self._check_revoked(headers)
        self.sign_in()

    def _check_revoked(self, headers: dict[str, str]) -> None:
        """Verify the revoked token through the balancer until it is refused, up to REVOCATION_BOUND."""
        deadline = time.monotonic() + REVOCATION_BOUND
        name = "verify revoked"
        while True:
            with self.client.get(
                "/auth/me", headers=headers, name=name, catch_response=True, timeout=REQUEST_TIMEOUT
            ) as answer:
                if answer.status_code == 401:
                    answer.success()
                    return
                if answer.status_code != 200:
                    answer.failure(f"verify of a revoked token answered {answer.status_code}")
                    return
                if time.monotonic() > deadline:
                    answer.failure(f"revoked token still accepted {REVOCATION_BOUND} s after the logout")
                    return
                # Accepted inside the bound: the revocation is still on its way to that instance.
                answer.success()
            # The retries get a row of their own in the statistics: how often the bound was needed.
            name = "verify revoked (retry)"
            time.sleep(0.02)
