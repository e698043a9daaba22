"""Small things the browser tests share: the console check, full-page screenshots, waiting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], what: str, seconds: float = 10) -> T:
    """Poll the page until `condition` is truthy; the failure names what was awaited.

    An element gone stale (the page reloaded between finding it and reading it) is tried again.
    """
    wait = WebDriverWait(
        driver, seconds, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(condition, f"waited for {what}")


def classes(driver: WebDriver, selector: str) -> list[str]:
    return str(driver.find_element("css selector", selector).get_attribute("class") or "").split()


def assert_no_console_errors(driver: WebDriver) -> None:
    """No script error and no CSP violation was reported by the page."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[attr-defined]  # Chrome's own
    severe = [
        e["message"] for e in entries if e.get("level") == "SEVERE" and "favicon.ico" not in e["message"]
    ]
    assert not severe, severe


def full_page_screenshot(driver: WebDriver, path: Path, width: int = 1100) -> Path:
    """The whole page in one image: the window is made as tall as the document first."""
    driver.set_window_size(width, 800)  # the width first: the height depends on it
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(int(height) + 140, 600), 5000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1100, 1400)
    print(f"screenshot: {path}")
    return path
