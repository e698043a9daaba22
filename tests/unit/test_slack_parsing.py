"""The Slack adapter's small decisions: file objects and links, users, token hosts, recent events."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.slack.adapter import EVENTS_PATH
from adapters.slack.commands import COMMAND, SHORTCUT_CALLBACK_ID, parse_user, split_user
from adapters.slack.files import describe_type, file_ref, image_files, parse_file_link, share_in
from adapters.slack.intake import RecentEvents, is_direct, refusal_for
from adapters.slack.source import token_may_go_to
from core.errors import UnsupportedFormat

HOSTS = frozenset({"files.slack.com", "127.0.0.1:8123"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/a.jpg", True),
        ("http://files.slack.com/files-pri/T1-F1/a.jpg", False),  # never in clear text
        ("https://files.slack.com.evil.example/x", False),
        ("https://evil.example/files.slack.com", False),
        ("https://user@evil.example/", False),
        ("https://files.slack.com@evil.example/", False),
        ("http://127.0.0.1:8123/files-pri/T1-F1/a.jpg", True),  # a loopback fake, on its port only
        ("http://127.0.0.1:8124/files-pri/T1-F1/a.jpg", False),
        ("ftp://files.slack.com/a.jpg", False),
        ("not a url", False),
        ("https://[::1", False),
    ],
)
def test_token_goes_only_to_listed_hosts(url: str, allowed: bool) -> None:
    assert token_may_go_to(url, HOSTS) is allowed


@pytest.mark.parametrize(
    ("text", "file_id"),
    [
        ("https://acme.slack.com/files/U012AB3CD/F0ABC123/photo.jpg", "F0ABC123"),
        ("<https://acme.slack.com/files/U012AB3CD/F0ABC123/photo.jpg>", "F0ABC123"),
        ("https://files.slack.com/files-pri/T01-F0XYZ789/download/cat.png", "F0XYZ789"),
        ("F0ABC123", "F0ABC123"),
        ("<F0ABC123>", "F0ABC123"),
        ("https://example.com/files/U1/F0ABC123/x.jpg", None),
        ("features", None),
        ("F0", None),
    ],
)
def test_parse_file_link(text: str, file_id: str | None) -> None:
    assert parse_file_link(text) == file_id


@pytest.mark.parametrize(
    ("text", "user"),
    [("<@U0BOB|bob>", "U0BOB"), ("<@W0ENT>", "W0ENT"), ("U0BOB", "U0BOB"), ("@bob", None), ("<@U0>x", None)],
)
def test_parse_user(text: str, user: str | None) -> None:
    assert parse_user(text) == user


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("<@U0BOB|Bob Smith> 5", ("U0BOB", "5")),
        ("<@U0BOB>", ("U0BOB", "")),
        ("U0BOB  12 ", ("U0BOB", "12")),
        ("@bob 5", (None, "5")),
        ("", (None, "")),
    ],
)
def test_split_user(text: str, split: tuple[str | None, str]) -> None:
    assert split_user(text) == split


def test_file_objects() -> None:
    image = {"id": "F1", "mimetype": "image/heic", "size": 123, "name": "IMG\n_1.HEIC"}
    pdf = {"id": "F2", "mimetype": "application/pdf", "pretty_type": "PDF"}
    unknown = {"id": "F3", "file_access": "check_file_info"}
    gone = {"id": "F4", "mode": "tombstone", "mimetype": "image/png"}
    external = {"id": "F5", "mimetype": "image/png", "is_external": True}

    assert image_files([image, pdf, unknown, gone, external], include_unknown=False) == [image]
    assert image_files([image, pdf, unknown, gone, external], include_unknown=True) == [image, unknown]
    ref = file_ref(image)
    assert (ref.file_id, ref.size, ref.name, ref.mime_type) == ("F1", 123, "IMG _1.HEIC", "image/heic")
    assert file_ref(unknown).size is None
    assert describe_type(pdf) == "a PDF file"
    assert describe_type({"filetype": "odt"}) == "an odt file"

    refusal = refusal_for([pdf])
    assert refusal == str(UnsupportedFormat("a PDF file"))
    assert refusal.startswith("That file looks like a PDF file, not a photo.")
    assert refusal_for([pdf, image]) is None  # the image is analysed, the PDF ignored
    assert refusal_for([unknown]) is None  # files.info will tell
    assert refusal_for([gone]) is not None


def test_share_in() -> None:
    file = {
        "shares": {
            "private": {"G1": [{"ts": "1.1", "thread_ts": "0.9"}]},
            "public": {"C1": [{"ts": "2.2"}]},
        }
    }
    assert share_in(file, "C1") == ("2.2", None)
    assert share_in(file, "G1") == ("1.1", "0.9")
    assert share_in(file, "C2") is None
    assert share_in({}, "C1") is None


def test_is_direct() -> None:
    assert is_direct("D123", "im")
    assert is_direct("D123")
    assert not is_direct("C123", "channel")
    assert not is_direct("G123", "mpim")  # a group DM has several people: not private


def test_recent_events() -> None:
    recent = RecentEvents(ttl_s=3600, max_size=3)
    assert recent.add("a")
    assert not recent.add("a")
    recent.discard("a")
    assert recent.add("a")
    for name in ("b", "c", "d"):
        assert recent.add(name)
    assert recent.add("a")  # the oldest was forgotten to stay within max_size
    expired = RecentEvents(ttl_s=-1.0)  # everything is already too old
    assert expired.add("x")
    assert expired.add("x")


# -- the app manifest ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
HISTORY = frozenset({"channels:history", "groups:history", "im:history", "mpim:history"})
#: What each Web API method the adapter calls needs (docs.slack.dev method reference).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "files_info": frozenset({"files:read"}),
    "files_upload_v2": frozenset({"files:write"}),
    "chat_postMessage": frozenset({"chat:write"}),
    "chat_postEphemeral": frozenset({"chat:write"}),
    "reactions_add": frozenset({"reactions:write"}),
    "reactions_remove": frozenset({"reactions:write"}),
    "conversations_history": HISTORY,
    "conversations_replies": HISTORY,
}
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
}


def manifest_list(text: str, key: str) -> list[str]:
    """The `- item` lines under `key:` in the manifest (no YAML library needed for this)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{key}:")
    items = []
    for line in lines[start + 1 :]:
        if not line.strip().startswith("- "):
            break
        items.append(line.strip()[2:])
    return items


def test_manifest_asks_exactly_for_the_scopes_the_code_uses() -> None:
    manifest = (ROOT / "adapters" / "slack" / "manifest.yml").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "adapters" / "slack").glob("*.py"))
    called = set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", source))
    assert called == set(METHOD_SCOPES)  # a new call needs its scope added here and in the manifest
    events = manifest_list(manifest, "bot_events")
    assert set(events) == set(EVENT_SCOPES)
    needed = set().union(*METHOD_SCOPES.values()) | {EVENT_SCOPES[e] for e in events} | {"commands"}
    assert set(manifest_list(manifest, "bot")) == needed


def test_manifest_matches_the_listeners() -> None:
    manifest = (ROOT / "adapters" / "slack" / "manifest.yml").read_text(encoding="utf-8")
    assert f"callback_id: {SHORTCUT_CALLBACK_ID}" in manifest
    assert f"command: {COMMAND}" in manifest
    assert "should_escape: true" in manifest  # parse_user needs <@U…> mentions
    urls = re.findall(r"(?:url|request_url): (\S+)", manifest)
    assert len(urls) == 3
    assert all(url.endswith(EVENTS_PATH) for url in urls)
