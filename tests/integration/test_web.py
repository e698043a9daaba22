"""The web page over real HTTP on 127.0.0.1: routes, sign-in, CSRF, limits, escaping, the worker.

Each test runs the adapter the way `photodetective run` does (stores and service from settings,
`adapters.web:create`, a worker with the NullRecognizer or a scripted one) and talks to it as a
browser would: a one-time sign-in link, then forms carrying the page's CSRF token and Origin.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import piexif
import pytest

from adapters.web.security import SESSION_COOKIE
from bot.cli import main
from core.analysis_types import (
    Analysis,
    Box,
    DetectedObject,
    Face,
    FaceAttributes,
    Feature,
    Label,
    ModerationLabel,
    PreparedPhoto,
    TextLine,
)
from tests.integration.slack_harness import EIFFEL_GPS
from tests.integration.web_harness import WebHarness, jpeg, running_web

HOSTILE = "<script>alert(1)</script>"


class ScriptedRecognizer:
    """Finds a dog, a face, a line of (hostile) text and, when asked, a content warning."""

    name = "scripted"
    capabilities = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION})

    def __init__(self, *, moderation: bool = False) -> None:
        self.moderation = moderation

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        return Analysis(
            backend=self.name,
            features=features & self.capabilities,
            labels=(Label("Dog", 0.97), Label(HOSTILE, 0.6)),
            objects=(DetectedObject("Dog", 0.95, Box(0.1, 0.2, 0.3, 0.4)),),
            faces=(
                Face(Box(0.5, 0.1, 0.2, 0.2), 0.99, FaceAttributes(age_low=20, age_high=30, smiling=True)),
            ),
            text=(TextLine(HOSTILE, 0.9, Box(0.05, 0.8, 0.5, 0.1)),),
            moderation=(ModerationLabel("Violence", 0.8),) if self.moderation else (),
        )


def hostile_photo() -> bytes:
    return jpeg(zeroth={piexif.ImageIFD.Make: HOSTILE.encode(), piexif.ImageIFD.Model: b"Model <b>X</b>"})


# -- pages and the DOM contract -------------------------------------------------------------


async def test_the_upload_page_needs_a_sign_in_and_then_follows_the_contract(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        anonymous = await web.get("/")
        assert anonymous.status == 401
        assert "sign-in link" in anonymous.text
        await web.sign_in()
        page = await web.get("/")
        html = page.text
    assert page.status == 200
    for fragment in (
        '<form id="upload-form" method="post" action="/upload" enctype="multipart/form-data">',
        '<input type="file" id="photo-input" name="photo" accept="image/*" multiple required>',
        '<button type="submit" id="upload-button">',
        '<div id="drop-zone">',
        '<progress id="upload-progress" max="100" hidden>',
        f'<p id="size-limit" data-max-bytes="{web.settings.max_input_bytes}"',
        '<div id="upload-error" role="alert" hidden>',
        '<link rel="stylesheet" href="/static/app.css">',
        '<script src="/static/app.js" defer></script>',
    ):
        assert fragment in html
    assert html.index('id="drop-zone"') > html.index('id="upload-form"')
    assert html.index('name="csrf_token"') < html.index('id="photo-input"')


async def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        paths = ["/", "/results", f"/results/{result_id}", f"/results/{result_id}.json", "/results/x"]
        paths += [f"/results/{result_id}/annotated.jpg", "/static/app.js", "/static/nothing.js"]
        answers = {path: await web.get(path) for path in paths}
    for path, answer in answers.items():
        csp = answer.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", path
        assert answer.headers.get("Referrer-Policy") == "same-origin", path


async def test_no_inline_script_or_style_on_any_page(tmp_path: Path) -> None:
    async with running_web(tmp_path, recognizer=ScriptedRecognizer()) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        pages = [(await web.get(p)).text for p in ("/", "/results", f"/results/{result_id}")]
    for html in pages:
        assert "style=" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\son[a-z]+=", html)


async def test_a_finished_result_page_follows_the_contract(tmp_path: Path) -> None:
    async with running_web(tmp_path, recognizer=ScriptedRecognizer()) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        status = await web.finished(result_id)
        html = (await web.get(f"/results/{result_id}")).text
        annotated = await web.get(f"/results/{result_id}/annotated.jpg")
        prepared = await web.get(f"/results/{result_id}/prepared.jpg")
        download = await web.get(f"/results/{result_id}/analysis.json")
        body = download.body
        assert annotated.status == prepared.status == 200
        assert annotated.body[:2] == prepared.body[:2] == b"\xff\xd8"
    assert status["status"] == "done"
    assert status["error"] is None
    assert (
        f'<main id="result" data-result-id="{result_id}" data-status="done" '
        f'data-status-url="/results/{result_id}.json">'
    ) in html
    assert '<meta http-equiv="refresh"' not in html
    assert f'<img id="annotated" src="/results/{result_id}/annotated.jpg"' in html
    assert f'<img id="prepared" src="/results/{result_id}/prepared.jpg"' in html
    assert '<div id="overlay" hidden>' in html
    face, dog, text = re.findall(r'<div class="box" ([^>]*)>', html)
    assert 'data-kind="face" data-box-id="b1" data-left="0.5" data-top="0.1"' in face
    assert 'data-kind="object" data-box-id="b2"' in dog
    assert 'data-width="0.3" data-height="0.4"' in dog
    assert 'data-kind="text" data-box-id="b3"' in text
    assert (
        '<li class="label" data-box-ids="b2" tabindex="0">Dog <span class="confidence">97%</span></li>'
        in html
    )
    assert re.search(r'<ul id="objects"><li class="object" data-box-ids="b2"', html)
    assert re.search(r'<section id="faces">.*data-box-ids="b1"', html, re.S)
    assert re.search(r'<section id="text-read">.*data-box-ids="b3"', html, re.S)
    for kind in ("face", "object", "text"):
        assert f'<input type="checkbox" class="layer-toggle" data-kind="{kind}" checked>' in html
    assert '<p id="backend">Recognizer: scripted</p>' in html
    assert '<section id="limitations">' in html
    assert f'<a id="download-json" href="/results/{result_id}/analysis.json" download' in html
    assert '<a id="download-annotated" href=' in html
    assert f'<form id="delete-form" method="post" action="/results/{result_id}/delete">' in html
    assert 'id="moderation"' not in html
    assert "blurred" not in html
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert json.loads(body) == status["analysis"]


async def test_a_content_warning_blurs_the_photo_until_revealed(tmp_path: Path) -> None:
    async with running_web(tmp_path, recognizer=ScriptedRecognizer(moderation=True)) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        html = (await web.get(f"/results/{result_id}")).text
    assert '<section id="moderation">' in html
    assert "Violence" in html
    assert '<figure id="photo-figure" class="blurred"' in html
    assert '<button id="reveal" type="button">Show the photo</button>' in html


async def test_a_waiting_result_refreshes_itself(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        html = (await web.get(f"/results/{result_id}")).text
        status = await web.status(result_id)
        listing = (await web.get("/results")).text
    assert 'data-status="queued"' in html
    assert '<p id="status">' in html
    assert '<meta http-equiv="refresh" content="3">' in html
    assert status == {"id": result_id, "status": "queued", "analysis": None, "error": None}
    assert f'href="/results/{result_id}"' in listing


async def test_the_form_without_javascript_redirects_to_the_result(tmp_path: Path) -> None:
    async with running_web(tmp_path, quota_max_concurrent=10, quota_burst_limit=10) as web:
        await web.sign_in()
        one = await web.upload(("a.jpg", jpeg()), json=False)
        several = await web.upload(("a.jpg", jpeg()), ("b.jpg", jpeg()), json=False)
        api = await web.upload(("a.jpg", jpeg()), ("b.jpg", jpeg()))
        body = api.json()
    assert one.status == 303
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{22}", one.headers["Location"])
    assert several.status == 303
    assert several.headers["Location"] == "/results"
    assert api.status == 202
    assert len(body["results"]) == 2
    assert all(item["url"] == f"/results/{item['id']}" for item in body["results"])


# -- escaping --------------------------------------------------------------------------------


async def test_strings_from_the_photo_are_escaped(tmp_path: Path) -> None:
    async with running_web(tmp_path, recognizer=ScriptedRecognizer()) as web:
        await web.sign_in()
        answer = await web.upload_raw("<img src=x onerror=alert(1)>.jpg", hostile_photo())
        result_id = answer.json()["results"][0]["id"]
        await web.finished(result_id)
        html = (await web.get(f"/results/{result_id}")).text
        listing = (await web.get("/results")).text
    assert "<script>" not in html
    assert "<script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the EXIF make, the label and the OCR line
    assert "Model &lt;b&gt;X&lt;/b&gt;" in html
    assert "<img src=x" not in html
    assert "<img src=x" not in listing
    assert "&lt;img src=x" in listing


# -- sessions, sign-in and CSRF --------------------------------------------------------------


async def test_a_sign_in_link_works_once(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        link = await web.sign_in()
        web.client.session.cookie_jar.clear()
        again = await web.get(link)
        after = await web.get("/")
    assert again.status == 400
    assert "already used" in again.text
    assert after.status == 401


async def test_a_tampered_session_cookie_is_refused(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in("alice")
        cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))[SESSION_COOKIE].value
        body, mac = cookie.rsplit(".", 1)
        forged_body = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        answers = []
        for value in (f"{forged_body}.{mac}", f"{body}.{mac[:-1]}x", "garbage"):
            web.client.session.cookie_jar.clear()
            web.client.session.cookie_jar.update_cookies({SESSION_COOKIE: value})
            answers.append((await web.get("/")).status)
    assert answers == [401, 401, 401]


async def test_removing_an_account_ends_its_sessions(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in("alice")
        assert (await web.get("/")).status == 200
        await web.adapter.store.remove_account("alice")
        assert (await web.get("/")).status == 401


async def test_an_upload_needs_the_csrf_token_and_our_origin(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in()
        missing = await web.upload(("a.jpg", jpeg()), token="")
        wrong = await web.upload(("a.jpg", jpeg()), token="not-the-token")
        elsewhere = await web.upload(("a.jpg", jpeg()), headers={"Origin": "https://evil.example"})
        no_origin = await web.post(
            "/upload",
            data=web.form(("a.jpg", jpeg()), token=await web.csrf()),
            headers={"Accept": "application/json"},
        )
        by_header = await web.post(
            "/upload",
            data=web.form(("a.jpg", jpeg())),
            headers={"Accept": "application/json", "Origin": web.origin, "X-CSRF-Token": await web.csrf()},
        )
        referer = await web.post(
            "/upload",
            data=web.form(("a.jpg", jpeg()), token=await web.csrf()),
            headers={"Accept": "application/json", "Referer": web.origin + "/"},
        )
        jobs = await web.stores.queue.stats(0)
    assert [missing.status, wrong.status, elsewhere.status, no_origin.status] == [403, 403, 403, 403]
    assert missing.json()["error"]["code"] == "csrf"
    assert elsewhere.json()["error"]["code"] == "bad_origin"
    assert by_header.status == 202
    assert referer.status == 202
    assert jobs.queued + jobs.in_flight + jobs.done == 2


async def test_the_delete_button_removes_the_result_at_once(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        token = await web.csrf(f"/results/{result_id}")
        forged = await web.post(
            f"/results/{result_id}/delete", data={"csrf_token": "x"}, headers={"Origin": web.origin}
        )
        still = await web.get(f"/results/{result_id}")
        deleted = await web.post(
            f"/results/{result_id}/delete",
            data={"csrf_token": token},
            headers={"Origin": web.origin},
        )
        gone = [await web.get(f"/results/{result_id}{s}") for s in ("", ".json", "/annotated.jpg")]
        blobs = [await web.adapter.store.blob(result_id, k) for k in ("upload", "annotated", "prepared")]
    assert forged.status == 403
    assert still.status == 200
    assert deleted.status == 303
    assert deleted.headers["Location"] == "/results"
    assert [g.status for g in gone] == [404, 404, 404]
    assert blobs == [None, None, None]


async def test_another_accounts_result_is_not_found(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in("alice")
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        web.client.session.cookie_jar.clear()
        await web.sign_in("bob")
        answers = [
            await web.get(f"/results/{result_id}{suffix}")
            for suffix in ("", ".json", "/annotated.jpg", "/prepared.jpg", "/analysis.json")
        ]
        delete = await web.post(
            f"/results/{result_id}/delete",
            data={"csrf_token": await web.csrf()},
            headers={"Origin": web.origin},
        )
        unknown = await web.get("/results/AAAAAAAAAAAAAAAAAAAAAA")
        listing = (await web.get("/results")).text
    assert [a.status for a in answers] == [404] * 5
    assert delete.status == 404
    assert unknown.status == 404
    assert result_id not in listing
    assert await web.adapter.store.result(result_id) is not None


async def test_proxy_mode_believes_the_user_header_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    async with running_web(
        tmp_path, web_access="proxy", web_trusted_proxies="10.0.0.0/8", web_proxy_user_header="X-Remote-User"
    ) as untrusted:
        refused = await untrusted.get("/", headers={"X-Remote-User": "mallory"})
    async with running_web(
        tmp_path / "b",
        web_access="proxy",
        web_trusted_proxies="127.0.0.1/32",
        web_proxy_user_header="X-Remote-User",
    ) as trusted:
        page = await trusted.get("/", headers={"X-Remote-User": "carol"})
        missing = await trusted.get("/")
    assert refused.status == 401
    assert page.status == 200
    assert "carol" in page.text
    assert missing.status == 401


async def test_open_mode_gives_each_browser_its_own_results(tmp_path: Path) -> None:
    async with running_web(tmp_path, web_access="open") as web:
        first = await web.get("/")
        result_id = await web.uploaded_id()
        mine = await web.get(f"/results/{result_id}")
        web.client.session.cookie_jar.clear()
        await web.get("/")
        theirs = await web.get(f"/results/{result_id}")
    assert first.status == 200
    assert mine.status == 200
    assert theirs.status == 404


# -- sizes and limits ------------------------------------------------------------------------


async def test_a_large_upload_is_refused_from_its_length_and_while_streaming(tmp_path: Path) -> None:
    async with running_web(tmp_path, max_input_bytes=50_000, web_max_files=1) as web:
        await web.sign_in()
        token = await web.csrf()
        declared = await web.post(
            "/upload",
            data=b"x" * 200_000,
            headers={
                "Origin": web.origin,
                "Accept": "application/json",
                "Content-Type": "multipart/form-data; boundary=zzz",
            },
        )

        async def chunks() -> Any:
            yield b'--zzz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode()
            yield b'\r\n--zzz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
            yield b"Content-Type: image/jpeg\r\n\r\n"
            for _ in range(10):
                yield b"\xff" * 10_000

        streamed = await web.post(
            "/upload",
            data=chunks(),
            headers={
                "Origin": web.origin,
                "Accept": "application/json",
                "Content-Type": "multipart/form-data; boundary=zzz",
            },
        )
        page = (await web.get("/")).text
        stats = await web.stores.queue.stats(0)
    assert declared.status == 413
    assert declared.json()["error"]["code"] == "too_large"
    assert streamed.status == 413
    assert "limit is 0.1 MB" in streamed.json()["error"]["message"]
    assert 'data-max-bytes="50000"' in page
    assert stats.queued == 0


async def test_the_daily_quota_refusal_says_when_it_resets(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False, quota_daily_limit=1, quota_max_concurrent=5) as web:
        await web.sign_in()
        assert (await web.upload(("a.jpg", jpeg()))).status == 202
        refused = await web.upload(("b.jpg", jpeg()))
        body = refused.json()
        page = await web.upload(("c.jpg", jpeg()), json=False)
        usage = await web.service.usage("web:alice")
    assert refused.status == 429
    assert body["error"]["code"] == "daily_limit"
    assert "resets at 00:00 UTC" in body["error"]["message"]
    assert 0 < body["error"]["retry_after"] <= 86_400
    assert refused.headers["Retry-After"] == str(body["error"]["retry_after"])
    assert page.status == 429
    assert "resets at 00:00 UTC" in page.text
    assert usage.used == 1


async def test_the_per_ip_daily_limit(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False, web_ip_daily_limit=2, quota_max_concurrent=10) as web:
        await web.sign_in("alice")
        two = await web.upload(("a.jpg", jpeg()), ("b.jpg", jpeg()), ("c.jpg", jpeg()))
        body = two.json()
        web.client.session.cookie_jar.clear()
        await web.sign_in("bob")
        refused = await web.upload(("d.jpg", jpeg()))
        error = refused.json()["error"]
    assert two.status == 202
    assert len(body["results"]) == 2
    assert body["refused"][0]["code"] == "ip_daily_limit"
    assert refused.status == 429
    assert error["code"] == "ip_daily_limit"
    assert "resets at 00:00" in error["message"]
    assert error["retry_after"] > 0


async def test_concurrent_uploads_are_capped_per_ip_and_per_account(tmp_path: Path) -> None:
    async with running_web(
        tmp_path, worker=False, web_ip_concurrent_uploads=2, web_account_concurrent_uploads=1
    ) as web:
        await web.sign_in("alice")
        store = web.adapter.store
        assert await store.acquire_slot("account:alice", "other-upload", 1, 1e12, 600)
        by_account = await web.upload(("a.jpg", jpeg()))
        await store.release_slot("account:alice", "other-upload")
        for n in range(2):
            assert await store.acquire_slot("ip:127.0.0.1", f"upload-{n}", 2, 1e12, 600)
        by_ip = await web.upload(("a.jpg", jpeg()))
        await store.release_slot("ip:127.0.0.1", "upload-0")
        allowed = await web.upload(("a.jpg", jpeg()))
        after = await web.upload(("a.jpg", jpeg()))
    assert by_account.status == 429
    assert by_account.json()["error"]["code"] == "concurrent_uploads"
    assert by_ip.status == 429
    assert allowed.status == 202
    assert after.status == 202


async def test_hostile_files_are_answered_with_a_clear_message(tmp_path: Path, shared_data: Path) -> None:
    from tests.corpus.test_bad_files import REFUSED

    bad = shared_data / "bad"
    if not bad.is_dir():
        pytest.skip("../shared/data/bad is not here")
    async with running_web(
        tmp_path, quota_daily_limit=100, quota_max_concurrent=100, quota_burst_limit=100
    ) as web:
        await web.sign_in()
        ids = {name: await web.uploaded_id((bad / name).read_bytes(), Path(name).name) for name in REFUSED}
        finished = {name: await web.finished(result_id) for name, result_id in ids.items()}
        page = (await web.get(f"/results/{ids['synthetic/text_named_jpg.jpg']}")).text
    for name, (_, reason, phrase) in REFUSED.items():
        status = finished[name]
        assert status["status"] == "failed", name
        assert status["error"]["code"] == ("too_large" if reason == "too_many_bytes" else reason), name
        assert phrase in status["error"]["message"], name
    assert '<div id="failure" role="alert"' in page
    assert "an HTML page" in page


# -- the JSON document and the location rule -------------------------------------------------


def keys(document: dict[str, Any]) -> dict[str, Any]:
    return {k: keys(v) if isinstance(v, dict) else None for k, v in document.items()}


async def test_analysis_json_has_the_keys_of_the_cli(tmp_path: Path) -> None:
    photo = jpeg(zeroth={piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS"})
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo)
    out = io.StringIO()
    argv = ["analyze", str(path), "--json", "--features", "none", "--out", str(tmp_path / "o")]
    with redirect_stderr(io.StringIO()):
        assert await asyncio.to_thread(main, argv, out) == 0
    cli = json.loads(out.getvalue())
    async with running_web(tmp_path / "web") as web:
        await web.sign_in()
        status = await web.finished(await web.uploaded_id(photo))
    assert keys(status["analysis"]) == keys(cli)
    assert status["analysis"]["exif"] == cli["exif"]


@pytest.mark.parametrize("shown", [True, False])
async def test_gps_is_shown_with_a_map_link_only_where_the_settings_allow(
    tmp_path: Path, shown: bool
) -> None:
    async with running_web(tmp_path, location_in_private=shown) as web:
        await web.sign_in()
        result_id = await web.uploaded_id(jpeg(gps=EIFFEL_GPS))
        status = await web.finished(result_id)
        html = (await web.get(f"/results/{result_id}")).text
    assert ("latitude" in status["analysis"]["exif"]) is shown
    assert ('id="map-link" href="https://www.openstreetmap.org/?mlat=48.85837' in html) is shown
    assert ("48.85" in html) is shown
    if not shown:
        assert "GPS location, which is not shown" in html


# -- restarts and retention ------------------------------------------------------------------


async def test_a_queued_upload_is_analysed_after_a_restart(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        cookies = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))
    async with running_web(tmp_path) as web:
        web.client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookies[SESSION_COOKIE].value})
        status = await web.finished(result_id)
        page = await web.get(f"/results/{result_id}")
    assert status["status"] == "done"
    assert page.status == 200


@pytest.mark.redis
async def test_results_survive_a_restart_on_redis(tmp_path: Path, redis_server: Any) -> None:
    async with running_web(tmp_path / "one", redis_url=redis_server.url, worker=False) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))[SESSION_COOKIE].value
    # Another replica: a different data folder, the same Redis (queue, quotas, results, secret).
    async with running_web(tmp_path / "two", redis_url=redis_server.url) as web:
        web.client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
        status = await web.finished(result_id)
        image = await web.get(f"/results/{result_id}/annotated.jpg")
    assert status["status"] == "done"
    assert image.status == 200


async def test_the_retention_sweep_deletes_old_results(tmp_path: Path) -> None:
    now = [time.time()]
    async with running_web(tmp_path, clock=lambda: now[0], web_retention_days=7) as web:
        await web.sign_in()
        old = await web.uploaded_id()
        await web.finished(old)
        now[0] += 6 * 86400
        recent = await web.uploaded_id()
        await web.finished(recent)
        now[0] += 1.5 * 86400
        deleted = await web.adapter.sweep_once()
        answers = [(await web.get(f"/results/{i}")).status for i in (old, recent)]
        old_blob = await web.adapter.store.blob(old, "annotated")
    assert deleted == 1
    assert answers == [404, 200]
    assert old_blob is None


def test_web_is_off_by_default(tmp_path: Path) -> None:
    from adapters.web import create
    from tests.settings_helpers import settings_from

    assert create(settings_from(data_dir=tmp_path), service=None) is None  # type: ignore[arg-type]


async def test_the_page_refuses_uploads_from_web_harness_without_sign_in(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        answer = await web.post(
            "/upload", data=web.form(("a.jpg", jpeg()), token="x"), headers={"Accept": "application/json"}
        )
    assert answer.status == 401
    assert answer.json()["error"]["code"] == "signin_required"


_ = WebHarness
