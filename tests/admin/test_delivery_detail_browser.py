"""From a failure on the status page to its detail, in a real headless Chromium."""

from __future__ import annotations

import re
from typing import Any

from sftriggerd.store.base import Store
from tests.admin.test_delivery_detail import failing_delivery
from tests.admin.test_status_page import NASTY, page_state
from tests.admin.test_status_page_browser import browser, open_page

try:
    from playwright.async_api import Browser, expect
except ImportError:  # pragma: no cover - the `browser` fixture skips or fails first
    pass

__all__ = ["browser"]


async def test_a_failure_links_to_its_attempts_and_event(
    browser: Browser, serve: Any, store: Store
) -> None:
    delivery_id = await failing_delivery(store)
    page, errors = await open_page(browser, await serve(page_state(store)))
    failure = page.locator(f'tr[data-delivery="{delivery_id}"]')
    await failure.get_by_role("link", name=str(delivery_id)).click()

    await expect(page).to_have_url(
        re.compile(rf"^http://127\.0\.0\.1:\d+/deliveries/{delivery_id}$")
    )
    await expect(page.locator("h1")).to_have_text(f"Delivery {delivery_id}")
    attempts = page.locator("#attempts tbody tr")
    await expect(attempts).to_have_count(2)
    first = attempts.nth(0)
    await expect(first.locator('td[data-label="Status"]')).to_have_text("503")
    # What the receiver answered is shown as text; its markup never runs.
    await expect(first.locator('td[data-label="Answer"]')).to_have_text(f"busy {NASTY}")
    await expect(attempts.nth(1).locator('td[data-label="Status"]')).to_have_text("410")
    await expect(page.locator("#event")).to_contain_text('"Name": "Acme <b>"')
    # The page's style is allowed by its policy: a refused one would be a console error.
    assert errors == []

    await page.get_by_role("link", name="Back to the status page").click()
    await expect(page.locator(f'tr[data-delivery="{delivery_id}"]')).to_have_count(1)
    assert errors == []
