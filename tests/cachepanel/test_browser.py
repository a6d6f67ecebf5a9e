"""The cache panel as an admin uses it, in Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.cachepanel.factories import PASSWORD
from tests.chat.factories import handbook

TEA = "How hot should the water be for green tea?"


def ask_in_chat(page: Page, base: str, question: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("article.message.assistant").last.locator(".badge.total")).to_be_visible(timeout=30_000)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_watches_a_hit_finds_the_answer_opens_it_and_deletes_it(live_server, page: Page):
    handbook()
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_label("Question")).to_be_visible()

    ask_in_chat(page, base, TEA)
    panel = page.context.new_page()
    panel.goto(f"{base}/admin/")
    panel.get_by_role("link", name="Cache panel").click()
    expect(panel).to_have_url(f"{base}/admin/cache/")
    hits = panel.locator("#layer-ans [data-metric=hit]")
    expect(hits).to_have_text("0")
    expect(panel.locator("#layer-ans [data-metric=miss]")).to_have_text("1")

    ask_in_chat(page, base, TEA)  # in the other tab: answered from the cache
    expect(page.locator("article.message.assistant").last).to_contain_text("answer from cache")
    expect(hits).to_have_text("1", timeout=12_000)  # the overview refreshed itself
    expect(panel.locator("#layer-ans [data-metric=ratio-5m]")).to_have_text("50.0%")

    panel.get_by_role("link", name="Keys", exact=True).click()
    panel.get_by_label("Kind").select_option("ans")
    panel.get_by_label("Key or question").fill(TEA)
    rows = panel.locator("a.cp-key-link")
    expect(rows).to_have_count(1)
    expect(panel).to_have_url(re.compile(r"/admin/cache/keys/\?kind=ans&text=How"))
    rows.first.click()
    detail = panel.locator("#key-detail")
    expect(detail.locator(".cp-question")).to_have_text(TEA)
    expect(detail.locator(".cp-citations a").first).to_have_text("tea")
    expect(detail.locator("[data-ttl-ms]")).to_have_text(re.compile(r"^[67] d \d+ h$"))  # 7 days, +-10%

    detail.get_by_role("button", name="Delete this key").click()
    expect(panel.locator("#panel-messages")).to_contain_text("Deleted rc:ans:")
    expect(detail).to_contain_text("The key is gone.")
    expect(rows).to_have_count(0)  # the list refreshed itself

    ask_in_chat(page, base, TEA)
    last = page.locator("article.message.assistant").last
    expect(last.locator(".badge.cache-miss", has_text="ans")).to_be_visible()
    expect(last).not_to_contain_text("answer from cache")
