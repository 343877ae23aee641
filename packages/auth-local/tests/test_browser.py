"""auth-local's second factor through the service's login page in a real headless Chromium
(Debian's chromium): an administrator whose group must have a second factor enrols at their first
sign-in with pyotp standing in for the phone, then signs in with a code; a used code is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from authcore import AuthManager, NewUser
from authcore.testing.servers import launch_chromium, run_asgi
from authcore.web.service import create_app

PW = "Correct-Horse-Battery-9"


@pytest.fixture
def page_url(tmp_path: Path, configs: Any) -> Iterator[str]:
    config = configs(f"sqlite:///{tmp_path / 'users.db'}", second_factor={"required_groups": ["admins"]})
    with AuthManager.from_config(config) as manager:
        manager.users("users").create_user(NewUser(login="dana", password=PW, roles=("admins",)))
        with run_asgi(create_app(manager)) as url:
            yield url


def test_enrol_and_sign_in_with_totp_in_headless_chromium(page_url: str) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    def sign_in(page: Page) -> None:
        page.goto(page_url + "/")
        page.get_by_label("Login").fill("Dana")  # logins are matched case-insensitively
        page.get_by_label("Password").fill(PW)
        page.get_by_role("button", name="Sign in").click()

    def verify(page: Page, code: str) -> None:
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_role("button", name="Verify").click()

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            sign_in(page)
            secret = page.locator("#totp-secret").inner_text()
            uri = page.locator("#totp-uri").get_attribute("href") or ""
            assert pyotp.parse_uri(uri).secret == secret
            assert len(page.locator("#recovery-codes li").all_inner_texts()) == 10
            app = pyotp.TOTP(secret)
            enrol_code = app.now()
            verify(page, enrol_code)
            expect(page.locator("#login-name")).to_have_text("dana")
            expect(page.locator("#permissions")).to_contain_text("users:admin")
            page.get_by_role("button", name="Sign out").click()

            # The code that confirmed the enrolment is spent: the same time step never works twice.
            sign_in(page)
            verify(page, enrol_code)
            expect(page.get_by_role("alert")).to_have_text("Invalid code.")
            verify(page, app.at(time.time() + 30))  # the next step's code, within the drift window
            expect(page.locator("#login-name")).to_have_text("dana")
        finally:
            browser.close()
