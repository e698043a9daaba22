"""A hostile caption is neutralised on every platform: Telegram, Slack, the web page and the CLI.

The model's words can be steered by text in the photo, so the caption a test feeds here is what
such a model might say: HTML, mrkdwn, a Slack broadcast, a link, control characters and 10 KB of
padding. It goes through the same cleaning as a real reply (`prompt.parse_description`) and then
through each platform's own renderer, exactly as an answer would.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from adapters.slack.render import answer_blocks as slack_blocks
from adapters.slack.render import answer_mrkdwn
from adapters.telegram.render import render_answer
from adapters.web.render import Renderer
from adapters.web.view import build_view
from bot.photo_requests import AnalysisReply, FileRef, PhotoRequest
from bot.presentation import PhotoAnswer, present
from core.analysis_types import DESCRIBE_SOURCE, Analysis, Feature, Label
from core.describe import prompt
from core.describe.types import Description
from core.summary import build_summary, render_text
from tests.describe_helpers import prepared_photo

HOSTILE = (
    "<b>Hi</b> <!channel> @here *pwned* _x_ `code` <https://evil.example|click> "
    "<script>alert(1)</script>\n\u202eevil\x1b[2J " + "A" * 10_000
)
FEATURES = frozenset({Feature.LABELS, Feature.DESCRIBE})


def hostile_reply() -> AnalysisReply:
    caption, tags = prompt.parse_description(json.dumps({"caption": HOSTILE, "tags": ["<!here>", "Kite"]}))
    analysis = Analysis(
        backend="local",
        features=FEATURES,
        labels=(Label("Sky", 0.9), *(Label(tag, 0.0, source=DESCRIBE_SOURCE) for tag in tags)),
        description=Description(caption, "openai", "llava"),
    )
    photo = prepared_photo()
    request = PhotoRequest("telegram", "7", "7", "1", FileRef("f"), FEATURES)
    return AnalysisReply(request, analysis, photo.exif, b"jpeg", 320, 240, FEATURES, False, prepared=photo)


def answer() -> PhotoAnswer:
    presented = present(hostile_reply())
    assert isinstance(presented, PhotoAnswer)
    return presented


def test_the_caption_is_cleaned_and_capped_before_any_platform() -> None:
    description = hostile_reply().analysis.description
    assert description is not None
    assert len(description.text) <= prompt.MAX_CAPTION_CHARS
    assert description.text.isprintable()
    assert [label.name for label in hostile_reply().analysis.labels] == ["Sky", "Kite"]


def test_telegram_shows_the_caption_first_as_escaped_code() -> None:
    first = render_answer(answer(), first_limit=100_000, limit=100_000)[0]
    head = first.splitlines()[0]
    assert head.startswith("<b>Description:</b> <code>&lt;b&gt;Hi&lt;/b&gt; &lt;!channel&gt; @here")
    assert head.endswith("…</code>")
    assert "<script>" not in first
    assert "<a " not in first  # no link from the model's words
    assert "<b>Hi</b>" not in first


def test_slack_defuses_broadcasts_links_and_markup() -> None:
    text = answer_mrkdwn(answer().blocks)
    first = text.splitlines()[0]
    assert first.startswith("*Description:* &lt;b&gt;Hi&lt;/b&gt; &lt;!channel&gt; ＠here")
    assert "<!channel>" not in text
    assert "@here" not in text
    assert "<https://evil" not in text
    assert "*pwned*" not in text
    blocks = json.dumps(slack_blocks(answer().blocks))
    assert "<!channel>" not in blocks
    assert "<https://evil" not in blocks


def test_web_page_escapes_the_caption() -> None:
    reply = hostile_reply()
    view = build_view(reply, answer())
    assert view["description"]["backend"] == "openai"
    result = SimpleNamespace(id="r1", status="done", name="photo.jpg", error_code="", error_message="")
    html = (
        Renderer(can_sign_out=False)
        .page(
            "result.html",
            title="photo.jpg",
            result=result,
            view=json.loads(json.dumps(view)),
            status_text="Done",
            layer_kinds=[],
            box_kinds=set(),
            has_analysis=True,
            download_stem="photo",
        )
        .text
    )
    assert html is not None
    caption = re.search(r'<p id="caption">(.*?)</p>', html, re.DOTALL)
    assert caption is not None
    assert caption.group(1).startswith("&lt;b&gt;Hi&lt;/b&gt; &lt;!channel&gt;")
    assert "<script>alert" not in html
    assert "<b>Hi</b>" not in html
    assert html.index('id="caption"') < html.index('id="labels-section"')


def test_cli_summary_starts_with_one_clean_line() -> None:
    reply = hostile_reply()
    text = render_text(build_summary(reply.analysis, reply.exif, show_location=False))
    first, second = text.splitlines()[:2]
    assert first.startswith("Description: <b>Hi</b> <!channel>")
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert len(first) <= len("Description: ") + prompt.MAX_CAPTION_CHARS
    assert second == "Labels: Sky 90%, Kite"
