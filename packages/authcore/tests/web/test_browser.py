"""The login page in a real headless Chromium (Debian's `chromium`, driven by Playwright's sync API).

Never skipped: without /usr/bin/chromium the test fails and says what to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import authcore_webtest_support as support
import pytest
from conftest import manager_config

from authcore import AuthManager
from authcore.testing.servers import launch_chromium
from authcore.web.service import create_app


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    manager = AuthManager.from_config(manager_config())
    with support.run_uvicorn(create_app(manager, development=True)) as url:
        yield url
    manager.close()


def test_login_page_in_headless_chromium(page_url: str, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(page_url + "/")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            # Accessible names come from the labels.
            page.get_by_label("Sign in with").select_option("local")
            page.get_by_label("Login").fill("alice")
            page.get_by_label("Password").fill("not-her-password")
            page.get_by_role("button", name="Sign in").click()
            alert = page.get_by_role("alert")
            expect(alert).to_have_text("Invalid login or password.")
            page.screenshot(path=str(artifacts / "login-page-error.png"), full_page=True)

            # An unknown login reads exactly the same.
            page.get_by_label("Sign in with").select_option("local")
            page.get_by_label("Login").fill("nobody-here")
            page.get_by_label("Password").fill("whatever")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_have_text("Invalid login or password.")

            page.get_by_label("Sign in with").select_option("local")
            page.get_by_label("Login").fill("alice")
            page.get_by_label("Password").fill("wonderland")
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#login-name")).to_have_text("alice")
            expect(page.locator("#permissions")).to_contain_text("read")
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["authcore_access"]["httpOnly"] is True
            assert page.evaluate("document.cookie").find("authcore_access") == -1  # scripts cannot read it
            page.screenshot(path=str(artifacts / "login-page-signed-in.png"), full_page=True)

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_have_text("You have signed out.")
            expect(page.get_by_label("Password")).to_be_visible()
            page.screenshot(path=str(artifacts / "login-page-signed-out.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts / "login-page-signed-in.png").stat().st_size > 1000
