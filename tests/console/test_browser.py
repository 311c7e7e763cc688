"""The console in a real browser: Debian's chromium, headless, driven by Playwright.

Each test leaves a screenshot under ``test-artifacts/console/`` (gitignored) for a
person to look at; CI keeps them as artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console.conftest import ADMIN_TOKEN, ConsoleSite
from tests.replay.test_replay import NO_PASSWORD_RESETS

pytestmark = pytest.mark.slow  # see docs/how-to/test.md

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield found
        found.close()


@pytest.fixture
def page(browser: Browser, console_site: ConsoleSite) -> Iterator[Page]:
    context = browser.new_context(base_url=console_site.ui, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page) -> None:
    page.goto("/ui/login")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/decisions$"))


def test_signing_in_with_the_keyboard_alone_reaches_the_decisions(page: Page) -> None:
    page.goto("/ui/login")
    shot(page, "login")
    page.keyboard.type(ADMIN_TOKEN)  # the token field has focus on arrival
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/decisions$"))
    expect(page.get_by_role("heading", name="Decisions", exact=True)).to_be_visible()


def test_the_first_tab_stop_skips_to_the_content(page: Page) -> None:
    sign_in(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_browsing_policies_shows_each_with_its_rules_and_test_results(page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", name="Policies", exact=True)).to_be_visible()
    section = page.locator("section#ipost-md5-emails-lowercase")
    expect(section.get_by_role("heading", name="Rules in plain words")).to_be_visible()
    expect(section.get_by_role("cell", name="md5 emails are trimmed and lowercased")).to_be_visible()
    expect(page.get_by_role("link", name="Policies")).to_have_attribute("aria-current", "page")
    shot(page, "policies")


def test_filtering_decisions_to_denials_shows_the_message_the_model_saw(page: Page) -> None:
    sign_in(page)
    page.get_by_label("Decision", exact=True).select_option("deny")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="1 decision", exact=True)).to_be_visible()
    expect(page.get_by_text("Blocked by policy ipost-no-silent-resubscribe")).to_be_visible()
    expect(page.get_by_role("img", name="Decisions per policy over time")).to_be_visible()
    shot(page, "decisions")


def test_a_what_if_with_a_candidate_that_blocks_a_recorded_call_shows_the_diff(page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="What if").click()
    page.get_by_label("Policy file (YAML)").fill(NO_PASSWORD_RESETS)
    page.get_by_role("button", name="Check and replay").click()
    changes = page.get_by_role("table", name="Changes by policy")
    expect(changes.get_by_role("row", name="no-password-resets allow->deny 1")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("1 would be decided differently")
    shot(page, "what-if")


def test_explaining_a_call_shows_each_policys_verdict(page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="Explain").click()
    page.get_by_label("Route", exact=True).select_option("ipost")
    page.get_by_label("Tool", exact=True).fill("update_a_i_post_contact_by_id")
    arguments = '{"id": "100002", "Email": "maria.garcia@example.com"}'
    page.get_by_label("Arguments (a JSON object)").fill(arguments)
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_role("heading", name="Decision: deny")).to_be_visible()
    expect(page.get_by_role("row", name="ipost-no-silent-resubscribe violated")).to_be_visible()
    shot(page, "explain")
