"""The chat as a user sees it, in Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

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


# Where the last answer ends (its citations and badges), the question box starts and the window ends.
LAST_ANSWER_END = """() => ({
    end: [...document.querySelectorAll("article.message.assistant")].pop().getBoundingClientRect().bottom,
    boxTop: document.getElementById("ask").getBoundingClientRect().top,
    height: window.innerHeight,
})"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "device",
    [{"viewport": {"width": 1280, "height": 720}}, {"viewport": {"width": 390, "height": 844}, "is_mobile": True}],
    ids=["desktop", "phone"],
)
def test_each_new_answer_ends_in_view_above_the_question_box_and_nothing_errs(live_server, browser: Browser, device):
    handbook()
    context = browser.new_context(**device)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{live_server.url}/")
        for asked, question in enumerate(["How do I fix a flat tyre?", "How hot is water for green tea?"], start=1):
            page.get_by_label("Question").fill(question)
            page.get_by_role("button", name="Ask").click()
            expect(page.locator("article.message.assistant .badges")).to_have_count(asked, timeout=30_000)
            # The scroll follows the swap by a moment: wait for it, then say where the end is.
            with contextlib.suppress(PlaywrightTimeoutError):
                page.wait_for_function(f"(w => w.end <= w.boxTop)(({LAST_ANSWER_END})())", timeout=3_000)
            where = page.evaluate(LAST_ANSWER_END)
            assert 0 < where["end"] <= where["boxTop"] <= where["height"], where
        expect(page.locator("article.message.user")).to_have_count(2)
        page.wait_for_load_state("networkidle")
        assert errors == []
    finally:
        context.close()
