"""Debian's Chromium driven by Playwright for Python, for the page's tests and benchmark. Playwright's own browser
download cannot work here, so it starts /usr/bin/chromium (apt: chromium, chromium-driver), headless, with a
fresh user-data dir each time."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


@contextlib.contextmanager
def chromium():
    """A fresh headless Chromium: yields a function that opens a new context (a clean profile) at a viewport."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no {CHROMIUM}: apt-get install chromium chromium-driver (make test does)")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="yolodrop-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=DESKTOP)
        try:
            yield context
        finally:
            context.close()


def sign_in(page: Page, api_url: str, email: str, password: str) -> None:
    """Open the page and sign in through its form, as a person does."""
    page.goto(f"{api_url}/#/signin")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="Datasets").wait_for()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


__all__ = ["DESKTOP", "PHONE", "Browser", "BrowserContext", "Page", "chromium", "screenshot", "sign_in"]
