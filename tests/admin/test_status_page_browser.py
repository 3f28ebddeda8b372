"""The status page in a real headless Chromium, served by a real admin server on a real store.

CI installs Debian's `chromium` (`.ci/run`) and playwright (the dev extra); there a missing
browser fails the run, so the page's script can never go untested by accident. Playwright
drives the system browser; it never downloads one of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sftriggerd.store.base import Store
from tests.admin.test_status_page import (
    LAG_NAMED,
    TOKEN,
    deliver_through_receiver,
    page_state,
    seed_failures,
)
from tests.support.receiver import Receiver

try:
    from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect
except ImportError:  # pragma: no cover - only where the dev extra is not installed
    async_playwright = None  # type: ignore[assignment]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
REFRESH_MS = 5000


def _missing() -> str | None:
    if async_playwright is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def watch_for_errors(page: Page) -> list[str]:
    """JS exceptions and console errors (a CSP refusal shows up as one).

    Chromium also logs every non-2xx answer as a console error; the 401 and 409 the tests
    provoke on purpose are checked through what the page says instead."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", on_console)
    return errors


async def open_page(browser: Browser, url: str, **context: Any) -> tuple[Page, list[str]]:
    page = await (await browser.new_context(**context)).new_page()
    errors = watch_for_errors(page)
    # A fake clock: the page refreshes when the test says so, not when a timer happens to fire.
    await page.clock.install()
    await page.goto(url + "/")
    return page, errors


async def test_shows_the_state_and_redrives_with_the_token(
    browser: Browser, serve: Any, store: Store
) -> None:
    seeded = await seed_failures(store, dead=2)
    first_dead = seeded.dead - 1
    page, errors = await open_page(browser, await serve(page_state(store, token=TOKEN)))

    trigger = page.locator('tr[data-trigger="accounts"]')
    await expect(trigger.locator('td[data-label="Mode"]')).to_contain_text("streaming")
    await expect(trigger.locator('td[data-label="Connected"]')).to_have_text("yes")
    await expect(trigger.locator('td[data-label="State"]')).to_have_text("running")
    hook = page.locator('tr[data-endpoint="hook"]')
    await expect(hook.locator('td[data-label="Pending"]')).to_have_text("1")
    await expect(hook.locator('td[data-label="Dead"]')).to_have_text("2")
    await expect(hook.locator('td[data-label="Last failure"]')).to_contain_text("HTTP 410 Gone")

    # Without the token the API says 401, and the page says what to do.
    dead_row = page.locator(f'tr[data-delivery="{seeded.dead}"]')
    await dead_row.get_by_role("button", name="Redrive").click()
    await expect(page.locator("#message")).to_contain_text("needs the admin token")
    assert (await store.get_delivery(seeded.dead)).status == "dead"  # type: ignore[union-attr]

    await page.locator("#token").fill(TOKEN)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#token-state")).to_have_text("Token set for this tab.")
    assert TOKEN not in await page.content()

    await dead_row.get_by_role("button", name="Redrive").click()
    await expect(page.locator("#message")).to_contain_text(f"Delivery {seeded.dead} redriven")
    row = await store.get_delivery(seeded.dead)
    assert row is not None and row.status == "pending"
    # The page refreshed itself after the redrive: the row is no longer dead, nor redrivable.
    await expect(dead_row.locator('td[data-label="Status"]')).to_have_text("redriven")
    await expect(dead_row.get_by_role("button", name="Redrive")).to_have_count(0)
    await expect(hook.locator('td[data-label="Dead"]')).to_have_text("1")

    # Someone else redrives the other one first; the stale button then gets a clear 409.
    await store.redrive(first_dead)
    await page.locator(f'tr[data-delivery="{first_dead}"]').get_by_role("button").click()
    await expect(page.locator("#message")).to_contain_text("was not redriven")
    await expect(page.locator("#message")).to_contain_text("is pending")
    assert errors == []


async def test_refreshes_in_place_on_a_timer(browser: Browser, serve: Any, store: Store) -> None:
    page, errors = await open_page(browser, await serve(page_state(store)))
    await expect(page.locator("#failures")).to_contain_text("No delivery is failing.")
    seeded = await seed_failures(store)
    await page.clock.run_for(REFRESH_MS)
    await expect(page.locator(f'tr[data-delivery="{seeded.dead}"]')).to_contain_text("dead")
    await expect(page.locator("#refresh-note")).to_contain_text("Updated")
    assert errors == []


async def test_is_readable_on_a_phone(
    browser: Browser, serve: Any, store: Store, tmp_path: Path
) -> None:
    await seed_failures(store, error="HTTP 410 Gone: " + "the endpoint said no " * 12)
    phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}
    page, errors = await open_page(
        browser, await serve(page_state(store, token=TOKEN)), is_mobile=True, **phone
    )
    await expect(page.locator('tr[data-endpoint="hook"]')).to_be_visible()
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"scrolls sideways: {widths}"
    # Each table row is a card whose cells carry their column's name.
    label = await page.evaluate(
        "getComputedStyle(document.querySelector('td[data-label=Lag]'), '::before').content"
    )
    assert label == '"Lag"'
    await page.screenshot(path=str(tmp_path / "status-phone.png"), full_page=True)
    assert errors == []


LAG_BOXES = """[...document.querySelectorAll('figure[data-lag-chart] svg')].map((svg) => {
  const box = svg.getBoundingClientRect();
  const bar = svg.querySelector('.bar-lag');
  return [box.width, box.height, box.right, getComputedStyle(bar).fill];
})"""

CHART_BOXES = """[...document.querySelectorAll('figure[data-chart] svg')].map((svg) => {
  const box = svg.getBoundingClientRect();
  const failed = svg.querySelector('.bar-failed');
  return [box.width, box.height, box.right, getComputedStyle(failed).fill];
})"""


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_last_hour_draws_and_the_feed_fills_in_on_refresh(
    browser: Browser, serve: Any, store: Store, receiver: Receiver, width: int
) -> None:
    viewport = {"viewport": {"width": width, "height": 844}, "is_mobile": width < 500}
    page, errors = await open_page(browser, await serve(page_state(store)), **viewport)
    await expect(page.locator("#latest")).to_contain_text("No delivery finished")
    ids = await deliver_through_receiver(store, receiver)
    await page.clock.run_for(REFRESH_MS)

    gone = page.locator(f'tr[data-latest="{ids["evt_gone"]}"]')
    await expect(gone.locator('td[data-label="Answer"]')).to_contain_text("dead")
    await expect(page.locator("tr[data-latest]")).to_have_count(3)
    chart = page.get_by_role("img", name="hook: 2 delivered, 1 failed in the last 60 minutes")
    await expect(chart).to_be_visible()
    boxes = await page.evaluate(CHART_BOXES)
    assert len(boxes) == 2  # hook and quiet
    for box_width, box_height, right, fill in boxes:
        assert box_width > 0 and box_height > 0 and right <= width
        # The colour comes from the page's stylesheet: it applied under the CSP.
        assert fill == "rgb(207, 34, 46)"
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"scrolls sideways: {widths}"

    # Each trigger's lag over the last hour, in the triggers section.
    lag = page.locator("#triggers").get_by_role("img", name=LAG_NAMED)
    await expect(lag).to_be_visible()
    await expect(page.locator('#triggers figure[data-lag-chart="accounts"]')).to_contain_text(
        "lag at most 45 s, latest 3.0 s"
    )
    [(lag_width, lag_height, lag_right, lag_fill)] = await page.evaluate(LAG_BOXES)
    assert lag_width > 0 and lag_height > 0 and lag_right <= width
    assert lag_fill == "rgb(154, 103, 0)"  # the stylesheet's warning colour, under the CSP
    assert errors == []  # a CSP refusal would be a console error
