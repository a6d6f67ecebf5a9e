"""The chat as a user sees it, in Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.chat.factories import handbook


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
