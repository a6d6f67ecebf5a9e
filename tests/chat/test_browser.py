"""The chat as a user sees it, in Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.chat.factories import handbook

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread while it runs, which
    # Django's async-safety check takes for async code calling the ORM; it is not.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_user_asks_sees_the_answer_stream_in_and_follows_a_citation(live_server, page: Page):
    handbook()
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()

    page.get_by_label("Question").fill("How hot should the water be for green tea?")
    page.get_by_role("button", name="Ask").click()

    answer = page.locator("article.message.assistant").last
    expect(answer).to_contain_text("Green tea should be brewed with water at eighty degrees", timeout=30_000)
    expect(answer.locator(".badge.total")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    expect(page.get_by_label("Question")).to_have_value("")
    expect(page.locator("#conversation-list")).to_contain_text("How hot should the water be")

    answer.locator("a.cite").first.click()
    expect(page.locator("mark#passage")).to_contain_text("Green tea should be brewed")
    expect(page.get_by_role("heading", name="tea")).to_be_visible()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_chat_fits_a_phone_screen_and_shows_errors_in_place(live_server, browser: Browser):
    handbook()
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_label("Question").fill("x" * 10)
        page.evaluate("document.querySelector('textarea').value = ' '")  # only spaces
        page.get_by_role("button", name="Ask").click()
        expect(page.locator("#ask-error")).to_contain_text("Type a question first.")
    finally:
        context.close()
