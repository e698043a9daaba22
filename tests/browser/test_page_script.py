"""app.js on its own, in a real headless Chromium, against hand-written pages that follow the DOM contract.

The pages (fixtures/) and a tiny aiohttp site stand in for the server, so the script's behaviour is
tested apart from the adapter: the size check, the upload with its token, drag-and-drop, polling,
the boxes, highlights, layers and the content warning. Selenium blocks, so it runs in a thread
while the site answers on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser_helpers import assert_no_console_errors, classes, full_page_screenshot, wait_for
from tests.browser.fixture_site import FixtureSite, scene


@pytest.fixture
async def site() -> AsyncIterator[tuple[FixtureSite, str]]:
    fixture = FixtureSite()
    server = TestServer(fixture.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fixture, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def photo_file(folder: Path, name: str, size: int | None = None) -> str:
    path = folder / name
    data = scene(64, 48)
    path.write_bytes(data + b"\0" * max(0, (size or 0) - len(data)))
    return str(path)


async def test_sizes_are_said_in_the_servers_megabytes(
    browser: WebDriver, site: tuple[FixtureSite, str], tmp_path: Path
) -> None:
    """1,300,000 bytes is 1.3 MB (SI, as the server and the page's own limit say), not 1.2 (MiB)."""
    fixture, origin = site
    big = photo_file(tmp_path, "big.jpg", size=1_300_000)

    def drive() -> tuple[str, str]:
        browser.get(f"{origin}/")
        browser.find_element(By.ID, "photo-input").send_keys(big)
        wait_for(browser, lambda d: d.find_element(By.ID, "upload-error").is_displayed(), "a size warning")
        return browser.find_element(By.ID, "upload-error").text, browser.find_element(By.ID, "chosen").text

    warning, chosen = await asyncio.to_thread(drive)
    assert "big.jpg is 1.3 MB; the limit is 0.2 MB per photo" in warning
    assert "big.jpg (1.3 MB)" in chosen
    assert not fixture.uploads


async def test_the_upload_checks_sizes_sends_the_token_first_and_goes_to_the_result(
    browser: WebDriver, site: tuple[FixtureSite, str], tmp_path: Path, screenshots: Path
) -> None:
    fixture, origin = site
    too_big = photo_file(tmp_path, "huge.jpg", size=300_000)
    small = photo_file(tmp_path, "small.jpg")

    def drive() -> None:
        browser.get(f"{origin}/")
        browser.find_element(By.ID, "photo-input").send_keys(too_big)
        error = wait_for(
            browser, lambda d: d.find_element(By.ID, "upload-error").is_displayed(), "a size warning"
        )
        assert error
        text = browser.find_element(By.ID, "upload-error").text
        full_page_screenshot(browser, screenshots / "fixture-upload-refused.png", width=390)
        assert "huge.jpg" in text
        assert "limit is 0.2 MB" in text
        browser.find_element(By.ID, "upload-button").click()
        assert browser.current_url == f"{origin}/"

        browser.find_element(By.ID, "photo-input").clear()
        browser.find_element(By.ID, "photo-input").send_keys(small)
        assert not browser.find_element(By.ID, "upload-error").is_displayed()
        browser.find_element(By.ID, "upload-button").click()
        wait_for(browser, lambda d: d.current_url == f"{origin}/results/fx", "the result page")
        assert_no_console_errors(browser)

    await asyncio.to_thread(drive)
    assert len(fixture.uploads) == 1, "the too-large photo must not be sent"
    sent = fixture.uploads[0]
    assert "application/json" in sent.headers["Accept"]
    assert sent.headers["X-CSRF-Token"] == "fixture-token"
    assert sent.fields == [("csrf_token", "fixture-token"), ("photo", "small.jpg")]


async def test_several_photos_go_to_the_list_and_a_refusal_is_shown_on_the_page(
    browser: WebDriver, site: tuple[FixtureSite, str], tmp_path: Path
) -> None:
    fixture, origin = site
    names = [photo_file(tmp_path, f"p{i}.jpg") for i in range(2)]

    def drive() -> None:
        fixture.upload_answer = (
            202,
            {"results": [{"id": "a", "url": "/results/a"}, {"id": "b", "url": "/results/b"}], "refused": []},
        )
        browser.get(f"{origin}/")
        browser.find_element(By.ID, "photo-input").send_keys("\n".join(names))
        browser.find_element(By.ID, "upload-button").click()
        wait_for(browser, lambda d: d.current_url == f"{origin}/results", "the list of results")

        fixture.upload_answer = (
            429,
            {
                "error": {
                    "code": "quota",
                    "message": "Daily limit reached; it resets at 00:00 UTC.",
                    "retry_after": 60,
                }
            },
        )
        browser.get(f"{origin}/")
        browser.find_element(By.ID, "photo-input").send_keys(names[0])
        browser.find_element(By.ID, "upload-button").click()
        wait_for(browser, lambda d: d.find_element(By.ID, "upload-error").is_displayed(), "the refusal")
        assert "resets at 00:00 UTC" in browser.find_element(By.ID, "upload-error").text
        assert browser.find_element(By.ID, "upload-button").is_enabled()
        assert not browser.find_element(By.ID, "upload-progress").is_displayed()

    await asyncio.to_thread(drive)
    assert [len([f for f in u.fields if f[0] == "photo"]) for u in fixture.uploads] == [2, 1]


async def test_photos_dropped_on_the_zone_are_listed_and_sent(
    browser: WebDriver, site: tuple[FixtureSite, str]
) -> None:
    fixture, origin = site

    def drive() -> None:
        browser.get(f"{origin}/")
        browser.execute_script(
            """
            const data = new DataTransfer();
            const bytes = new Uint8Array([255, 216, 255, 217]);
            data.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
            const zone = document.getElementById("drop-zone");
            const init = {dataTransfer: data, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent("dragover", init));
            zone.dispatchEvent(new DragEvent("drop", init));
            """
        )
        assert "dropped.jpg" in browser.find_element(By.ID, "chosen").text
        browser.find_element(By.ID, "upload-button").click()
        wait_for(browser, lambda d: d.current_url == f"{origin}/results/fx", "the result page")

    await asyncio.to_thread(drive)
    assert fixture.uploads[0].fields[1] == ("photo", "dropped.jpg")


def box_rect(driver: WebDriver, box_id: str) -> dict[str, Any]:
    return dict(driver.find_element(By.CSS_SELECTOR, f'.box[data-box-id="{box_id}"]').rect)


async def test_a_done_page_draws_boxes_that_follow_labels_layers_and_the_warning(
    browser: WebDriver, site: tuple[FixtureSite, str], screenshots: Path
) -> None:
    _, origin = site

    def drive() -> None:
        browser.get(f"{origin}/results/fx")
        wait_for(browser, lambda d: d.find_element(By.ID, "overlay").is_displayed(), "the overlay")
        assert not browser.find_element(By.ID, "annotated").is_displayed()
        wait_for(
            browser,
            lambda d: d.execute_script("return document.getElementById('prepared').complete"),
            "the image",
        )
        image = browser.find_element(By.ID, "prepared").rect
        box = box_rect(browser, "b1")  # left 0.1, top 0.5, width 0.3, height 0.4
        assert abs(box["x"] - (image["x"] + 0.1 * image["width"])) < 2
        assert abs(box["y"] - (image["y"] + 0.5 * image["height"])) < 2
        assert abs(box["width"] - 0.3 * image["width"]) < 2
        assert abs(box["height"] - 0.4 * image["height"]) < 2

        # The warning first: blurred until the user asks.
        assert "blurred" in classes(browser, "#photo-figure")
        full_page_screenshot(browser, screenshots / "fixture-blurred-phone.png", width=390)
        browser.find_element(By.ID, "reveal").click()
        assert "blurred" not in classes(browser, "#photo-figure")
        assert not browser.find_element(By.ID, "reveal").is_displayed()

        dog = browser.find_element(By.CSS_SELECTOR, '#labels .label[data-box-ids="b1 b2"]')
        ActionChains(browser).move_to_element(dog).perform()
        wait_for(browser, lambda d: "highlight" in classes(d, '.box[data-box-id="b1"]'), "the dog boxes lit")
        assert "highlight" in classes(browser, '.box[data-box-id="b2"]')
        assert "highlight" not in classes(browser, '.box[data-box-id="b3"]')
        assert "highlight" in classes(browser, '#labels .label[data-box-ids="b1 b2"]')
        ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
        wait_for(
            browser, lambda d: "highlight" not in classes(d, '.box[data-box-id="b1"]'), "the boxes unlit"
        )

        # The keyboard: Enter on a face pins its box; Escape lets go.
        face = browser.find_element(By.CSS_SELECTOR, "#faces .face")
        face.send_keys(Keys.ENTER)
        assert face.get_attribute("aria-pressed") == "true"
        assert "highlight" in classes(browser, '.box[data-box-id="b3"]')
        face.send_keys(Keys.ESCAPE)
        assert face.get_attribute("aria-pressed") == "false"

        # Layers: faces off hides only the face box.
        toggle = browser.find_element(By.CSS_SELECTOR, '.layer-toggle[data-kind="face"]')
        toggle.click()
        assert not browser.find_element(By.CSS_SELECTOR, '.box[data-box-id="b3"]').is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, '.box[data-box-id="b1"]').is_displayed()
        toggle.click()
        assert browser.find_element(By.CSS_SELECTOR, '.box[data-box-id="b3"]').is_displayed()

        ActionChains(browser).move_to_element(dog).perform()
        full_page_screenshot(browser, screenshots / "fixture-result.png")
        assert_no_console_errors(browser)

    await asyncio.to_thread(drive)


async def test_a_waiting_page_polls_its_status_and_reloads_when_done(
    browser: WebDriver, site: tuple[FixtureSite, str]
) -> None:
    fixture, origin = site

    def drive() -> None:
        browser.get(f"{origin}/results/wait")
        browser.execute_script("window.notReloaded = true;")
        wait_for(
            browser, lambda d: d.find_element(By.ID, "status").text == "Analysing the photo…", "analysing"
        )
        wait_for(
            browser,
            lambda d: d.find_element(By.ID, "result").get_attribute("data-status") == "done",
            "the done page",
        )
        assert browser.execute_script("return window.notReloaded === undefined")
        assert browser.find_element(By.ID, "overlay").is_displayed()

    await asyncio.to_thread(drive)
    assert fixture.status_calls == 2


async def test_the_list_of_results_follows_the_waiting_ones_until_they_finish(
    browser: WebDriver, site: tuple[FixtureSite, str]
) -> None:
    fixture, origin = site

    def drive() -> None:
        browser.get(f"{origin}/results")
        waiting = '.result-item[data-result-id="wait"]'
        wait_for(
            browser, lambda d: d.find_element(By.CSS_SELECTOR, waiting).text.count("analysing"), "analysing"
        )
        wait_for(
            browser,
            lambda d: d.find_element(By.CSS_SELECTOR, waiting).get_attribute("data-status") == "done",
            "done",
        )
        assert "done" in browser.find_element(By.CSS_SELECTOR, f"{waiting} .status").text
        assert_no_console_errors(browser)

    await asyncio.to_thread(drive)
    assert fixture.status_calls == 2, "the finished result is not asked about"
