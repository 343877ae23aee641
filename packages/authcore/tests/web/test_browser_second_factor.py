"""The login page's second step in a real headless Chromium: a user the policy requires to
enrol is shown the key and recovery codes and signs in with the app's code; next time the page
asks for a code, says so when it is wrong, and takes a recovery code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import authcore_webtest_support as support
import pytest

from authcore import AuthManager
from authcore.testing.contract_provider import contract_config
from authcore.testing.contract_second_factor import totp_code
from authcore.testing.servers import launch_chromium
from authcore.web.service import create_app


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    manager = AuthManager.from_config(contract_config())
    with support.run_uvicorn(create_app(manager)) as url:
        yield url
    manager.close()


def test_enrol_then_sign_in_with_a_code_in_headless_chromium(page_url: str, artifacts: Path) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    def sign_in(page: Page) -> None:
        page.goto(page_url + "/")
        page.get_by_label("Login").fill("tess")
        page.get_by_label("Password").fill("tesspw")
        page.get_by_role("button", name="Sign in").click()

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            sign_in(page)
            expect(page.get_by_role("status")).to_have_text("Enter the code of your second factor.")
            secret = page.locator("#totp-secret").inner_text()
            assert page.locator("#totp-uri").get_attribute("href").startswith("otpauth://totp/")  # type: ignore[union-attr]
            recovery = page.locator("#recovery-codes li").all_inner_texts()
            assert len(recovery) == 4
            page.screenshot(path=str(artifacts / "second-factor-enrol.png"), full_page=True)
            page.get_by_label("Code", exact=True).fill(totp_code(secret))
            page.get_by_role("button", name="Verify").click()
            expect(page.locator("#login-name")).to_have_text("tess")
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_have_text("You have signed out.")

            # Enrolled now: the page asks for a code; a wrong one is said so, a recovery code works.
            sign_in(page)
            page.get_by_label("Code", exact=True).fill("000000")
            page.get_by_role("button", name="Verify").click()
            expect(page.get_by_role("alert")).to_have_text("Invalid code.")
            page.get_by_label("Code from").select_option("recovery")
            page.get_by_label("Code", exact=True).fill(recovery[0])
            page.get_by_role("button", name="Verify").click()
            expect(page.locator("#login-name")).to_have_text("tess")
            page.screenshot(path=str(artifacts / "second-factor-signed-in.png"), full_page=True)
        finally:
            browser.close()
