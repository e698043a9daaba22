"""Regenerate the documentation's pictures from the real product, so they never drift from what it does.

    python scripts/docs_images.py docs/img        # what `make docs-images` runs

The pictures are real output, not drawings: the annotated photos come from `photodetective analyze`
with the embedded recognizer, and the web page's results page is a screenshot of `photodetective run`
(web page on, a throw-away data folder) in the same headless Chromium the browser tests use, after
a real upload through the form. They are shrunk and re-encoded (JPEG for photos, 256-colour PNG for
the page) so the repository stays small.

The photos used are ours or public domain: the generated sample (`scripts/sample_photo.py`) and the
US Navy portrait of Grace Hopper from the evaluation set (`scripts/fetch_eval_photos.py`, pinned and
hash-checked; fetched here when missing). Nothing from `../shared/data` is used, since that may not
be copied into the project.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("PHOTODETECTIVE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PHOTODETECTIVE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
PORTRAIT = Path("matplotlib") / "grace_hopper.jpg"
PHOTO_SIDE = 720  # px, the long side of the annotated photos in the docs
PAGE_MAX_HEIGHT = 1500  # px of a page screenshot kept (the top: the photo, its boxes and the labels)


def _run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    arguments = [str(part) for part in command]  # our own executables and files, never user input
    done = subprocess.run(arguments, env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _portrait() -> Path:
    """The public-domain portrait from the evaluation set, fetched (pinned, hash-checked) when missing."""
    folder = Path(
        os.environ.get("PHOTODETECTIVE_EVAL_PHOTOS", Path.home() / ".cache/photodetective/eval-photos")
    )
    if not (folder / PORTRAIT).exists():
        _run(sys.executable, ROOT / "scripts" / "fetch_eval_photos.py", "--dir", folder)
    return folder / PORTRAIT


def save_photo(source: Path, target: Path) -> None:
    """A docs-sized, optimised JPEG (no metadata: the annotated copies carry none anyway)."""
    with Image.open(source) as opened:
        image = opened.convert("RGB")
        image.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
        image.save(target, "JPEG", quality=82, optimize=True, progressive=True)


def save_page(source: Path, target: Path, width: int) -> None:
    """A page screenshot cut to its top part, halved on desktop, as a 256-colour PNG (text stays sharp)."""
    with Image.open(source) as opened:
        image = opened.convert("RGB").crop((0, 0, opened.width, min(opened.height, PAGE_MAX_HEIGHT)))
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, "PNG", optimize=True)


def annotated_photos(work: Path, out: Path) -> Path:
    """Run the CLI on the sample and the portrait; keep both annotated copies. Returns the portrait."""
    sample = work / "sample.jpg"
    _run(sys.executable, ROOT / "scripts" / "sample_photo.py", sample)
    portrait = _portrait()
    _run(BIN / "photodetective", "analyze", sample, portrait, "--backend", "local", "--features", "all",
         "--out", work / "annotated", "--no-progress", env=_clean_env({}))  # fmt: skip
    save_photo(work / "annotated" / "sample.annotated.jpg", out / "annotated-sample.jpg")
    save_photo(work / "annotated" / "grace_hopper.annotated.jpg", out / "annotated-portrait.jpg")
    return portrait


def _clean_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment without the caller's PhotoDetective settings or AWS credentials, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTODETECTIVE_", "AWS_"))}
    return {**env, **settings}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def web_page(work: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`photodetective run` with only the web page on, in a throw-away folder; yields its URL and settings."""
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = _clean_env(
        {
            "PHOTODETECTIVE_WEB_ENABLED": "true",
            "PHOTODETECTIVE_WEB_PUBLIC_URL": origin,
            "PHOTODETECTIVE_DATA_DIR": str(work / "data"),
            "PHOTODETECTIVE_HTTP_PORT": str(port),
            "PHOTODETECTIVE_BACKEND": "local",
            "PHOTODETECTIVE_FEATURES": "all",
        }
    )
    log = (work / "run.log").open("w")
    command = [str(BIN / "photodetective"), "run"]
    server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=log)  # noqa: S603 (our own CLI)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{origin}/healthz", timeout=2).close()  # noqa: S310 (http on 127.0.0.1)
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"photodetective run did not start; see {work / 'run.log'}")
            time.sleep(0.5)
        yield origin, env
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _browser(work: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--hide-scrollbars", f"--user-data-dir={work / 'chromium'}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER, log_output=os.devnull), options=options
    )
    driver.set_page_load_timeout(30)
    return driver


def _wait(driver: Any, condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition(driver):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)


def _screenshot(driver: Any, path: Path, width: int) -> None:
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height), PAGE_MAX_HEIGHT))
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)  # let the boxes be re-laid out at the new width
    driver.save_screenshot(str(path))


def results_page(work: Path, out: Path, photo: Path) -> None:
    """Upload `photo` through the real form and screenshot its results page at desktop and phone width."""
    from selenium.webdriver.common.by import By

    with web_page(work) as (_, env):
        added = _run(BIN / "photodetective", "web", "user", "add", "docs", env=env)
        match = re.search(r"https?://\S+/signin/\S+", added)
        if match is None:
            raise SystemExit(f"no sign-in link in: {added!r}")
        driver = _browser(work)
        try:
            driver.set_window_size(1280, 900)
            driver.get(match.group(0))
            _wait(driver, lambda d: d.find_elements(By.ID, "upload-form"), "the upload page")
            driver.find_element(By.ID, "photo-input").send_keys(str(photo))
            driver.find_element(By.ID, "upload-button").click()
            _wait(driver, lambda d: "/results/" in d.current_url, "the result page")
            _wait(driver, lambda d: d.find_element(By.ID, "result").get_attribute("data-status") == "done",
                  "the analysis", seconds=120)  # fmt: skip
            loaded = "return document.getElementById('prepared').naturalWidth > 0"
            _wait(driver, lambda d: d.execute_script(loaded), "the prepared photo")
            _screenshot(driver, work / "desktop.png", 1280)
            save_page(work / "desktop.png", out / "web-result-desktop.png", width=960)
            _screenshot(driver, work / "phone.png", 390)
            save_page(work / "phone.png", out / "web-result-phone.png", width=390)
        finally:
            driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the pictures (docs/img)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        print(
            f"needs chromium and chromium-driver ({', '.join(missing)} missing): make system-deps",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="docs-images-") as folder:
        work = Path(folder)
        portrait = annotated_photos(work, args.out)
        results_page(work, args.out, portrait)
    for picture in sorted(args.out.iterdir()):
        print(f"{picture}: {picture.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
