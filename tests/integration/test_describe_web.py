"""Describing photos on the web page: the caption above the photo, and the question box under it.

The real web adapter and worker on a local port (tests.integration.web_harness), the `openai`
describer against the fake OpenAI-compatible server. A question about a result asks the model
about that result's prepared image, with the page's CSRF token, and is charged like a photo.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.describe_wiring import with_describer
from core.recognizers.base import NullRecognizer
from tests.fakes.openai_api import FakeOpenAI
from tests.integration.web_harness import running_web
from tests.settings_helpers import settings_from


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def describing(model: FakeOpenAI, tmp_path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {
        "describe_backend": "openai",
        "describe_url": model.url + "/v1",
        "describe_model": "fake-vision",
    }
    recognizer = with_describer(NullRecognizer(), settings_from(data_dir=tmp_path, **values))
    return {"recognizer": recognizer, **values}


async def test_caption_and_a_question_on_the_result_page(tmp_path: Path, model: FakeOpenAI) -> None:
    model.answer('{"caption": "A <b>bold</b> cat on a mat.", "tags": ["mat"]}')
    async with running_web(tmp_path, **describing(model, tmp_path)) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        page = (await web.get(f"/results/{result_id}")).text
        upload_page = (await web.get("/")).text
        token = await web.csrf(f"/results/{result_id}")
        model.answer("A clock & a <script>.")
        forged = await web.post(
            f"/results/{result_id}/ask",
            data={"csrf_token": "x", "question": "what is on the wall?"},
            headers={"Origin": web.origin},
        )
        asked = await web.post(
            f"/results/{result_id}/ask",
            data={"csrf_token": token, "question": "what is on the wall?"},
            headers={"Origin": web.origin, "Accept": "application/json"},
        )
        shown = await web.post(
            f"/results/{result_id}/ask",
            data={"csrf_token": token, "question": "and on the floor?"},
            headers={"Origin": web.origin},
        )
        prepared = await web.adapter.store.blob(result_id, "prepared")
        usage = await web.service.usage("web:alice")
    assert '<p id="caption">A &lt;b&gt;bold&lt;/b&gt; cat on a mat.</p>' in page
    assert f'<form id="ask-form" method="post" action="/results/{result_id}/ask">' in page
    assert "a language model on this bot&#39;s own servers (fake-vision)" in upload_page
    assert forged.status == 403
    assert asked.status == 200
    assert asked.json() == {
        "question": "what is on the wall?",
        "answer": "A clock & a <script>.",
        "answered": True,
        "charged": True,
    }
    assert shown.status == 200
    assert html.escape("A clock & a <script>.", quote=False) in shown.text
    assert "<script>." not in shown.text
    assert model.seen[-1].image == prepared  # the result's own prepared image
    assert usage.used == 3  # the photo and two questions


async def test_no_question_box_without_a_describer(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        await web.finished(result_id)
        page = (await web.get(f"/results/{result_id}")).text
        token = await web.csrf(f"/results/{result_id}")
        asked = await web.post(
            f"/results/{result_id}/ask",
            data={"csrf_token": token, "question": "what?"},
            headers={"Origin": web.origin, "Accept": "application/json"},
        )
    assert 'id="ask-form"' not in page
    assert asked.status == 404
