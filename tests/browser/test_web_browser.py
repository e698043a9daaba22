"""The whole web page in a real headless Chromium: sign in, upload, wait, highlight, layers, download.

The adapter runs as `photodetective run` builds it (tests/integration/web_harness.py: stores and
service from settings, `adapters.web:create`, a worker) on 127.0.0.1, with a scripted recognizer
whose boxes sit on a generated photo. The browser follows a one-time sign-in link, sends the photo
through the page's form (app.js uploads it), lands on the result, waits for the analysis, then
hovers a label, switches a layer off and fetches the analysis JSON the download link points to.
Screenshots of the result page (desktop and phone width) go to out/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import piexif
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from adapters.web.commands import issue_link
from adapters.web.security import SESSION_COOKIE
from core.analysis_types import (
    Analysis,
    Box,
    DetectedObject,
    Face,
    FaceAttributes,
    Feature,
    Label,
    PreparedPhoto,
    TextLine,
)
from tests.browser.browser_helpers import assert_no_console_errors, classes, full_page_screenshot, wait_for
from tests.browser.fixture_site import scene
from tests.integration.web_harness import running_web

RESULT_URL = r"/results/[A-Za-z0-9_-]+$"


class SceneRecognizer:
    """Finds what `fixture_site.scene` draws: two dogs, a face and a sign saying OPEN."""

    name = "scripted"
    capabilities = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT})

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        return Analysis(
            backend=self.name,
            features=features & self.capabilities,
            labels=(Label("Dog", 0.97), Label("Street", 0.81)),
            objects=(
                DetectedObject("Dog", 0.95, Box(0.1, 0.5, 0.3, 0.4)),
                DetectedObject("Dog", 0.9, Box(0.6, 0.55, 0.25, 0.35)),
            ),
            faces=(
                Face(Box(0.45, 0.1, 0.15, 0.2), 0.99, FaceAttributes(age_low=20, age_high=30, smiling=True)),
            ),
            text=(TextLine("OPEN", 0.93, Box(0.05, 0.05, 0.3, 0.1)),),
        )


def street_photo(path: Path) -> Path:
    """The drawn scene as a camera JPEG (make, model, exposure), so the EXIF table has rows."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"PhotoDetective", piexif.ImageIFD.Model: b"Browser Test Camera"},
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: b"2026:06:01 12:30:00",
                piexif.ExifIFD.ExposureTime: (1, 250),
                piexif.ExifIFD.FNumber: (40, 10),
                piexif.ExifIFD.ISOSpeedRatings: 100,
            },
            "GPS": {},
            "1st": {},
            "thumbnail": None,
        }
    )
    path.write_bytes(scene())
    with Image.open(path) as image:
        image.load()
        image.save(path, "JPEG", quality=90, exif=exif)
    return path


def fetch_json(driver: WebDriver, href: str) -> Any:
    """GET `href` from the page itself (its cookie, its origin), as the download link would."""
    text = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'})"
        ".then(r => r.text()).then(done, e => done('ERR ' + e));",
        href,
    )
    return json.loads(text)


async def test_upload_then_result_then_highlight_layers_and_download(
    browser: WebDriver, tmp_path: Path, screenshots: Path
) -> None:
    photo = street_photo(tmp_path / "street.jpg")
    async with running_web(tmp_path / "data", recognizer=SceneRecognizer()) as web:
        url = (await issue_link(web.adapter.store, web.settings, "alice", time.time())).url
        signin = web.origin + url[url.index("/signin/") :]

        def drive() -> dict[str, Any]:
            browser.get(signin)
            wait_for(browser, lambda d: d.find_elements(By.ID, "upload-form"), "the upload page")
            full_page_screenshot(browser, screenshots / "upload.png")
            browser.find_element(By.ID, "photo-input").send_keys(str(photo))
            browser.find_element(By.ID, "upload-button").click()
            wait_for(browser, lambda d: "/results/" in d.current_url, "the result page")
            wait_for(
                browser,
                lambda d: d.find_element(By.ID, "result").get_attribute("data-status") == "done",
                "the analysis (the page polls, then reloads)",
                seconds=20,
            )
            wait_for(browser, lambda d: d.find_element(By.ID, "overlay").is_displayed(), "the overlay")
            wait_for(
                browser,
                lambda d: d.execute_script("return document.getElementById('prepared').naturalWidth > 0"),
                "the prepared photo",
            )
            boxes = {
                b.get_attribute("data-box-id"): b.get_attribute("data-kind")
                for b in browser.find_elements(By.CSS_SELECTOR, "#overlay .box")
            }
            dog = browser.find_element(
                By.XPATH, "//ul[@id='labels']/li[starts-with(normalize-space(), 'Dog')]"
            )
            dog_boxes = str(dog.get_attribute("data-box-ids")).split()
            assert len(dog_boxes) == 2
            assert all(boxes[b] == "object" for b in dog_boxes)
            face_box = next(b for b, kind in boxes.items() if kind == "face")

            ActionChains(browser).move_to_element(dog).perform()
            for box_id in dog_boxes:
                selector = f'.box[data-box-id="{box_id}"]'

                def lit(driver: WebDriver, selector: str = selector) -> bool:
                    return "highlight" in classes(driver, selector)

                wait_for(browser, lit, box_id)
            assert "highlight" not in classes(browser, f'.box[data-box-id="{face_box}"]')

            toggle = browser.find_element(By.CSS_SELECTOR, '.layer-toggle[data-kind="object"]')
            toggle.click()
            assert not browser.find_element(
                By.CSS_SELECTOR, f'.box[data-box-id="{dog_boxes[0]}"]'
            ).is_displayed()
            assert browser.find_element(By.CSS_SELECTOR, f'.box[data-box-id="{face_box}"]').is_displayed()
            toggle.click()
            assert browser.find_element(By.CSS_SELECTOR, f'.box[data-box-id="{dog_boxes[0]}"]').is_displayed()

            assert browser.find_element(By.CSS_SELECTOR, "#exif").text.count("\n") >= 2
            href = str(browser.find_element(By.ID, "download-json").get_attribute("href"))
            document: dict[str, Any] = fetch_json(browser, href)

            ActionChains(browser).move_to_element(dog).perform()
            full_page_screenshot(browser, screenshots / "results.png")
            full_page_screenshot(browser, screenshots / "results-phone.png", width=390)
            assert_no_console_errors(browser)
            return document

        document = await asyncio.to_thread(drive)

    assert {"version", "file", "backend", "labels", "objects", "faces", "text", "exif"} <= set(document)
    assert document["file"] == "street.jpg"
    assert document["backend"] == "scripted"
    assert [o["name"] for o in document["objects"]] == ["Dog", "Dog"]
    assert document["text"][0]["text"] == "OPEN"


async def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(
    browser: WebDriver, tmp_path: Path
) -> None:
    async with running_web(tmp_path / "data", worker=False) as web:
        url = (await issue_link(web.adapter.store, web.settings, "alice", time.time())).url
        signin = web.origin + url[url.index("/signin/") :]

        def drive() -> tuple[str, str]:
            browser.delete_all_cookies()
            browser.get(signin)
            wait_for(browser, lambda d: d.find_elements(By.ID, "upload-form"), "the upload page")
            copy = str(browser.get_cookie(SESSION_COOKIE)["value"])  # type: ignore[index]
            browser.get(web.origin + "/results")
            assert browser.find_element(By.ID, "signout-others-form").is_displayed()
            browser.find_element(By.CSS_SELECTOR, "#signout-form button").click()
            wait_for(browser, lambda d: d.current_url.endswith("/signedout"), "the signed-out page")
            assert browser.get_cookie(SESSION_COOKIE) is None
            assert_no_console_errors(browser)
            page = browser.find_element(By.TAG_NAME, "body").text
            browser.get(web.origin + "/")  # signed out for good: the upload page asks for a sign-in
            return copy, page + "\n" + browser.find_element(By.TAG_NAME, "body").text

        copy, page = await asyncio.to_thread(drive)
        replayed = await web.get("/", headers={"Cookie": f"{SESSION_COOKIE}={copy}"})
    assert "You are signed out" in page
    assert "Please sign in first" in page
    assert replayed.status == 401
