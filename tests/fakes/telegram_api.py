"""A local stand-in for the Telegram Bot API that the real python-telegram-bot client talks to over HTTP.

It serves `POST /bot<token>/<method>` (form-encoded or multipart, every value a string, JSON for
objects) and `GET /file/bot<token>/<path>` on 127.0.0.1, answers `{"ok": true, "result": ...}` or
Telegram's error shape `{"ok": false, "error_code": ..., "description": ...}`, and behaves like
Telegram where PhotoDetective depends on it:

- limits: message text 4096 and caption 1024 characters after entity parsing ("Bad Request: message
  is too long" / "Bad Request: message caption is too long"); `parse_mode=HTML` is parsed strictly
  (unknown or unbalanced tags and bad entities -> "Bad Request: can't parse entities: ...");
  sendPhoto over 10 MB or with width + height over 10000 -> "Bad Request: PHOTO_INVALID_DIMENSIONS";
  getFile over 20 MB -> "Bad Request: file is too big"; 429 with `parameters.retry_after`.
- updates: tests inject messages (photos, documents, albums, commands, replies, button presses);
  `getUpdates` long-polls, and confirms every update below `offset`, as Telegram does: an update
  is handed out again until a later `getUpdates` carries a higher offset.
- compressed photos are re-encoded (long side 1280, EXIF dropped) like Telegram's, documents are
  kept byte for byte.

Faults (`faults`, a `tests.fakes.faults.FaultTable`; helpers `too_many_requests`, `server_error`,
`timeout`, `drop`, `forbidden`) make any method, or the file download ("download"), answer 429
with `parameters.retry_after`, 500 with Telegram's JSON error, 502/503/504 with the HTML page of
Telegram's nginx front end, hang until the client times out, close the connection, or answer 403
"Forbidden: bot was blocked by the user", for a number of calls or for a while.

Every call is recorded (method, parameters, uploaded files, status) so tests assert what a user
would see. The server runs on its own event loop in a background thread, like
`tests.fakes.background.BackgroundServer`:

    with FakeTelegram() as fake:
        app = Application.builder().token(fake.token).base_url(fake.base_url)...
        chat = fake.private_chat(fake.user(42))
        fake.send_photo(chat, jpeg_bytes)
        fake.rate_limit("sendPhoto", times=1, retry_after=1)
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from PIL import Image, ImageOps, UnidentifiedImageError

from tests.fakes.background import BackgroundServer
from tests.fakes.faults import Fault, FaultTable, front_end_page, misbehave

TOKEN = "123456789:TEST-fake-token_for-photodetective"
BOT_ID = 123456789
BOT_USERNAME = "PhotoDetectiveTestBot"

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10_000
MAX_UPLOAD = 50 * 1024 * 1024
COMPRESSED_SIDE = 1280
THUMB_SIDE = 320

ADMIN_STATUSES = ("administrator", "creator")


# ---------------------------------------------------------------------------------------------
# Telegram's HTML, parsed as strictly as Telegram does
# ---------------------------------------------------------------------------------------------


class EntityError(ValueError):
    """Not valid Telegram HTML; the message is Telegram's wording after "can't parse entities: "."""


_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))*)\s*>"
)
_ATTR = re.compile(r"([a-zA-Z-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+))")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _unescape(text: str, at: int) -> str:
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"&", text):
        start = match.start()
        if start < pos:
            continue
        entity = _ENTITY.match(text, start)
        if entity is None:
            raise EntityError(f'Character "&" is reserved and must be escaped at byte offset {at + start}')
        out.append(text[pos:start])
        named, dec, hexa = entity.groups()
        if named:
            out.append(_NAMED[named])
        else:
            code = int(dec) if dec else int(hexa, 16)
            if code > 0x10FFFF:
                raise EntityError(f"Invalid numeric entity at byte offset {at + start}")
            out.append(chr(code))
        pos = entity.end()
    out.append(text[pos:])
    return "".join(out)


def parse_html(markup: str) -> str:
    """The visible text of Telegram-HTML `markup`; raises EntityError where Telegram would refuse it."""
    visible: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(markup):
        lt = markup.find("<", pos)
        if lt < 0:
            visible.append(_unescape(markup[pos:], pos))
            break
        visible.append(_unescape(markup[pos:lt], pos))
        tag = _TAG.match(markup, lt)
        if tag is None:
            raise EntityError(f"Unexpected end of name token at byte offset {lt}")
        closing, name, attrs = tag.group(1), tag.group(2).lower(), tag.group(3)
        if name not in _TAGS:
            kind = "end" if closing else "start"
            raise EntityError(f'Unsupported {kind} tag "{name}" at byte offset {lt}')
        if closing:
            if not stack:
                raise EntityError(f"Unexpected end tag at byte offset {lt}")
            expected = stack.pop()
            if expected != name:
                raise EntityError(
                    f'Unmatched end tag at byte offset {lt}, expected "</{expected}>", found "</{name}>"'
                )
        else:
            found = {
                m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
                for m in _ATTR.finditer(attrs)
            }
            if name == "a" and "href" not in found:
                raise EntityError(f'Tag "a" must have attribute "href" at byte offset {lt}')
            if name == "span" and found.get("class") != "tg-spoiler":
                raise EntityError(f'Tag "span" must have class "tg-spoiler" at byte offset {lt}')
            if name == "a":
                _unescape(found["href"], lt)
            stack.append(name)
        pos = tag.end()
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(visible)


def utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Call:
    """One Bot API request as the fake saw it, and its answer."""

    method: str
    params: Mapping[str, Any]  # strings, with JSON objects/arrays decoded
    files: Mapping[str, Upload]
    status: int
    response: Mapping[str, Any]
    started: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return None if value is None else int(value)

    @property
    def text(self) -> str:
        """The text or caption as sent (markup included)."""
        return str(self.params.get("text", self.params.get("caption", "")))

    @property
    def visible_text(self) -> str:
        """The text or caption as the user reads it (markup parsed away)."""
        raw = self.text
        return parse_html(raw) if self.params.get("parse_mode") == "HTML" else raw

    @property
    def reply_to_message_id(self) -> int | None:
        reply = self.params.get("reply_parameters")
        if isinstance(reply, dict) and "message_id" in reply:
            return int(reply["message_id"])
        value = self.params.get("reply_to_message_id")
        return None if value is None else int(value)

    @property
    def upload(self) -> Upload | None:
        """The uploaded photo or document of a send call."""
        for name in ("photo", "document"):
            if name in self.files:
                return self.files[name]
        return None


@dataclass
class _Failure:
    method: str | None
    remaining: int
    error_code: int
    description: str
    retry_after: int | None


@dataclass
class _Stored:
    file_id: str
    unique_id: str
    data: bytes
    path: str
    size: int  # what Telegram reports (normally len(data))


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirmed_below: int = 0
    files: dict[str, _Stored] = field(default_factory=dict)
    paths: dict[str, _Stored] = field(default_factory=dict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[tuple[int, int], str] = field(default_factory=dict)
    message_ids: dict[int, int] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str | None = None
    calls: list[Call] = field(default_factory=list)
    started: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)


class FakeTelegram(BackgroundServer):
    """The fake Bot API server; a (sync or async) context manager, or call start() and stop()."""

    thread_name = "fake-telegram"

    def __init__(self, host: str = "127.0.0.1", token: str = TOKEN) -> None:
        super().__init__(host)
        self.token = token
        self._lock = threading.Lock()
        self._state = _State()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1000)
        self._media_groups = itertools.count(77_000)
        self._new_update: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self.faults = FaultTable()
        self.bot_user = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "PhotoDetective",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        method: str | None,
        *,
        times: int = 1,
        error_code: int = 400,
        description: str = "Bad Request: scripted failure",
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (every method but getUpdates when None) with an error."""
        with self._lock:
            self._state.failures.append(_Failure(method, times, error_code, description, retry_after))

    def rate_limit(self, method: str | None, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls with 429 Too Many Requests and `parameters.retry_after`."""
        self.fail(
            method,
            times=times,
            error_code=429,
            description=f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
        )

    # -- faults, with Telegram's documented shapes (see the module docstring) -----------------

    def too_many_requests(
        self, method: str | None, *, retry_after: int = 1, times: int | None = 1, for_s: float | None = None
    ) -> Fault:
        """429 with `parameters.retry_after`, as Telegram's flood control answers."""
        error = f"Too Many Requests: retry after {retry_after}"
        fault = Fault("status", method, 429, retry_after, error, times=times, for_s=for_s)
        return self.faults.add(fault)

    def server_error(
        self, method: str | None, status: int = 500, *, times: int | None = 1, for_s: float | None = None
    ) -> Fault:
        """500 as the Bot API's JSON error; 502/503/504 as the HTML page of Telegram's nginx front end."""
        error = "Internal Server Error" if status == 500 else ""
        fault = Fault("status", method, status, None, error, html=status != 500, times=times, for_s=for_s)
        return self.faults.add(fault)

    def timeout(self, method: str | None, *, times: int | None = 1, for_s: float | None = None) -> Fault:
        """Take the request and never answer it (the client's read timeout ends it)."""
        return self.faults.add(Fault("hang", method, times=times, for_s=for_s))

    def drop(self, method: str | None, *, times: int | None = 1, for_s: float | None = None) -> Fault:
        """Close the connection without an answer."""
        return self.faults.add(Fault("drop", method, times=times, for_s=for_s))

    def forbidden(self, method: str | None, *, times: int | None = None, for_s: float | None = None) -> Fault:
        """403 as Telegram answers a bot that the user blocked (for good, unless told otherwise)."""
        error = "Forbidden: bot was blocked by the user"
        return self.faults.add(Fault("status", method, 403, None, error, times=times, for_s=for_s))

    def set_delay(self, method: str, seconds: float) -> None:
        """Wait this long before answering `method`."""
        with self._lock:
            self._state.delays[method] = seconds

    def set_member_status(self, chat: Mapping[str, Any], user: Mapping[str, Any], status: str) -> None:
        """What getChatMember answers for this user in this chat ("member" unless told otherwise)."""
        with self._lock:
            self._state.members[(int(chat["id"]), int(user["id"]))] = status

    # -- people, chats, messages -------------------------------------------------------------

    @staticmethod
    def user(user_id: int, first_name: str = "Alice", username: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        return user

    def private_chat(self, user: Mapping[str, Any]) -> dict[str, Any]:
        chat = {"id": int(user["id"]), "type": "private", "first_name": user.get("first_name", "")}
        with self._lock:
            self._state.chats[chat["id"]] = chat
        return chat

    def group_chat(self, chat_id: int = -1001234567890, title: str = "Photo club") -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        with self._lock:
            self._state.chats[chat_id] = chat
        return chat

    def store_file(
        self, data: bytes, *, kind: str = "documents", suffix: str = "jpg", size: int | None = None
    ) -> _Stored:
        """Keep `data` as a Telegram file and return its record (file_id, path, reported size)."""
        n = next(self._ids)
        stored = _Stored(
            file_id=f"FILE-{kind}-{n}-{'x' * 20}",
            unique_id=f"U{n}",
            data=data,
            path=f"{kind}/file_{n}.{suffix}",
            size=len(data) if size is None else size,
        )
        with self._lock:
            self._state.files[stored.file_id] = stored
            self._state.paths[stored.path] = stored
        return stored

    def _next_message_id(self, chat_id: int) -> int:
        with self._lock:
            current = self._state.message_ids.get(chat_id, 100) + 1
            self._state.message_ids[chat_id] = current
        return current

    def _message(
        self,
        chat: Mapping[str, Any],
        sender: Mapping[str, Any] | None,
        *,
        reply_to: Mapping[str, Any] | None = None,
        media_group_id: str | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(int(chat["id"])),
            "date": int(time.time()),
            "chat": dict(chat),
        }
        if sender is not None:
            message["from"] = dict(sender)
        if reply_to is not None:
            message["reply_to_message"] = dict(reply_to)
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        return message

    def _photo_sizes(self, image: bytes) -> list[dict[str, Any]]:
        """Telegram's treatment of a compressed photo: oriented, long side 1280 and 320, EXIF gone."""
        sizes = []
        with Image.open(io.BytesIO(image)) as img:
            oriented = ImageOps.exif_transpose(img).convert("RGB")
        for side, kind in ((THUMB_SIDE, "thumbs"), (COMPRESSED_SIDE, "photos")):
            copy = oriented.copy()
            copy.thumbnail((side, side))
            out = io.BytesIO()
            copy.save(out, "JPEG", quality=87)
            stored = self.store_file(out.getvalue(), kind=kind)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.unique_id,
                    "width": copy.width,
                    "height": copy.height,
                    "file_size": stored.size,
                }
            )
        return sizes

    def photo_message(
        self,
        chat: Mapping[str, Any],
        image: bytes,
        *,
        sender: Mapping[str, Any] | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A message carrying `image` as a compressed photo (not yet delivered)."""
        message = self._message(
            chat, sender or self._default_sender(chat), reply_to=reply_to, media_group_id=media_group_id
        )
        message["photo"] = self._photo_sizes(image)
        if caption is not None:
            message["caption"] = caption
            message["caption_entities"] = entities(caption)
        return message

    def document_message(
        self,
        chat: Mapping[str, Any],
        data: bytes,
        *,
        file_name: str = "photo.jpg",
        mime_type: str | None = "image/jpeg",
        sender: Mapping[str, Any] | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """A message carrying `data` as a file, byte for byte (not yet delivered)."""
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self.store_file(data, kind="documents", suffix=suffix, size=file_size)
        message = self._message(chat, sender or self._default_sender(chat), media_group_id=media_group_id)
        document: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": file_name,
            "file_size": stored.size,
        }
        if mime_type:
            document["mime_type"] = mime_type
        message["document"] = document
        if caption is not None:
            message["caption"] = caption
            message["caption_entities"] = entities(caption)
        return message

    def text_message(
        self,
        chat: Mapping[str, Any],
        text: str,
        *,
        sender: Mapping[str, Any] | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        message = self._message(chat, sender or self._default_sender(chat), reply_to=reply_to)
        message["text"] = text
        found = entities(text)
        if found:
            message["entities"] = found
        return message

    def _default_sender(self, chat: Mapping[str, Any]) -> dict[str, Any]:
        if chat.get("type") == "private":
            return self.user(int(chat["id"]), str(chat.get("first_name") or "Alice"))
        return self.user(42, "Alice")

    def new_media_group_id(self) -> str:
        return str(next(self._media_groups))

    def album_messages(
        self,
        chat: Mapping[str, Any],
        images: list[bytes],
        *,
        sender: Mapping[str, Any] | None = None,
        caption: str | None = None,
    ) -> list[dict[str, Any]]:
        """An album: photos sharing a `media_group_id`, the caption on the first, as Telegram sends them."""
        group = self.new_media_group_id()
        return [
            self.photo_message(
                chat, image, sender=sender, caption=caption if i == 0 else None, media_group_id=group
            )
            for i, image in enumerate(images)
        ]

    # -- delivering updates -------------------------------------------------------------------

    def update_for(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Wrap a message in an update with a fresh update_id (for webhook posts or `inject`)."""
        return {"update_id": next(self._update_ids), "message": dict(message)}

    def callback_update(
        self, message: Mapping[str, Any], presser: Mapping[str, Any], data: str
    ) -> dict[str, Any]:
        """A button press on an inline keyboard of `message` (a message the bot sent)."""
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": f"cbq-{next(self._ids)}",
                "from": dict(presser),
                "chat_instance": "ci-1",
                "message": dict(message),
                "data": data,
            },
        }

    def inject(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates."""
        with self._lock:
            self._state.updates.append(dict(update))
        if self._loop is not None and self._new_update is not None:
            self._loop.call_soon_threadsafe(self._new_update.set)
        return dict(update)

    def send(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver a message (through getUpdates); returns the message."""
        self.inject(self.update_for(message))
        return dict(message)

    def send_photo(self, chat: Mapping[str, Any], image: bytes, **kwargs: Any) -> dict[str, Any]:
        return self.send(self.photo_message(chat, image, **kwargs))

    def send_document(self, chat: Mapping[str, Any], data: bytes, **kwargs: Any) -> dict[str, Any]:
        return self.send(self.document_message(chat, data, **kwargs))

    def send_text(self, chat: Mapping[str, Any], text: str, **kwargs: Any) -> dict[str, Any]:
        return self.send(self.text_message(chat, text, **kwargs))

    def send_album(self, chat: Mapping[str, Any], images: list[bytes], **kwargs: Any) -> list[dict[str, Any]]:
        messages = self.album_messages(chat, images, **kwargs)
        for message in messages:
            self.send(message)
        return messages

    def press(self, message: Mapping[str, Any], presser: Mapping[str, Any], data: str) -> None:
        self.inject(self.callback_update(message, presser, data))

    # -- what happened -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._state.calls)

    def calls_to(self, *methods: str, ok: bool | None = None) -> list[Call]:
        """Calls of these methods, in order; `ok=True` only the successful ones."""
        return [c for c in self.calls if c.method in methods and (ok is None or c.ok == ok)]

    def sent(self, chat: Mapping[str, Any] | None = None) -> list[Call]:
        """Every message the bot successfully sent (text, photo, document), optionally to one chat."""
        found = self.calls_to("sendMessage", "sendPhoto", "sendDocument", ok=True)
        return [c for c in found if chat is None or c.chat_id == int(chat["id"])]

    @property
    def started(self) -> list[tuple[str, dict[str, Any]]]:
        """Every request as it arrived (method, parameters), answered or not yet."""
        with self._lock:
            return list(self._state.started)

    def offsets_sent(self) -> list[int]:
        """The `offset` of every getUpdates request that arrived, in order (0 when none was given)."""
        return [int(params.get("offset") or 0) for method, params in self.started if method == "getUpdates"]

    def handed_out(self, update_id: int) -> bool:
        """Whether some getUpdates answer already contained this update."""
        return any(
            update_id in [u["update_id"] for u in call.response.get("result", [])]
            for call in self.calls_to("getUpdates", ok=True)
        )

    @property
    def downloads(self) -> list[str]:
        """File paths downloaded through /file/bot<token>/..., in order."""
        with self._lock:
            return list(self._state.downloads)

    @property
    def confirmed_below(self) -> int:
        """Updates with a lower update_id have been confirmed by a later getUpdates offset."""
        with self._lock:
            return self._state.confirmed_below

    @property
    def webhook(self) -> tuple[str, str | None]:
        with self._lock:
            return self._state.webhook_url, self._state.webhook_secret

    async def wait_for(self, condition: Callable[[], bool], within_s: float = 15.0) -> None:
        """Wait (in the test's own loop) until `condition()` holds; fail with the calls seen."""
        deadline = time.monotonic() + within_s
        while not condition():
            if time.monotonic() > deadline:
                seen = [(c.method, c.status) for c in self.calls if c.method != "getUpdates"]
                raise AssertionError(f"condition not met within {within_s} s; calls: {seen}")
            await asyncio.sleep(0.02)

    # -- server ------------------------------------------------------------------------------

    async def _on_start(self) -> None:
        self._new_update = asyncio.Event()
        self._stopping = asyncio.Event()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    async def _on_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._new_update is not None:
            self._new_update.set()  # wake open long polls so they answer at once

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.content_type == "application/json":
            body = await request.json()
            params.update({k: v if isinstance(v, (dict, list)) else str(v) for k, v in body.items()})
            return params, files
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                text = str(value)
                if text[:1] in "{[":
                    with suppress(ValueError):
                        params[name] = json.loads(text)
                        continue
                params[name] = text
        return params, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        method = request.match_info["method"]
        params, files = await self._read_params(request)
        with self._lock:
            self._state.started.append((method, dict(params)))
            delay = self._state.delays.get(method, 0.0)
        if request.match_info["token"] != self.token:
            status, answer = 401, _error(401, "Unauthorized")
        else:
            if delay and self._stopping is not None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            fault = self.faults.take(method)
            if fault is not None:
                return await self._fault(request, fault, Call(method, params, files, 0, {}, started))
            failure = self._scripted_failure(method)
            if failure is not None:
                status, answer = failure
            else:
                try:
                    result = await self._dispatch(method, params, files)
                    status, answer = 200, {"ok": True, "result": result}
                except _ApiError as error:
                    status, answer = error.code, _error(error.code, error.description)
        with self._lock:
            self._state.calls.append(Call(method, params, files, status, answer, started))
        return web.json_response(answer, status=status)

    async def _fault(self, request: web.Request, fault: Fault, call: Call) -> web.StreamResponse:
        """Answer with `fault` instead of carrying out the call; recorded with its status (0: none)."""
        if fault.kind != "status":
            with self._lock:
                self._state.calls.append(call)
            await misbehave(request, fault, self._stopping)
            return web.Response(status=504)  # never reaches the client: the connection is gone
        answer = _error(fault.status, fault.error)
        if fault.retry_after is not None:
            answer["parameters"] = {"retry_after": fault.retry_after}
        with self._lock:
            self._state.calls.append(replace(call, status=fault.status, response=answer))
        if fault.html:
            return front_end_page(fault.status)
        return web.json_response(answer, status=fault.status)

    def _scripted_failure(self, method: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            for rule in self._state.failures:
                if rule.remaining <= 0:
                    continue
                if rule.method is None and method == "getUpdates":
                    continue
                if rule.method not in (None, method):
                    continue
                rule.remaining -= 1
                answer = _error(rule.error_code, rule.description)
                if rule.retry_after is not None:
                    answer["parameters"] = {"retry_after": rule.retry_after}
                return rule.error_code, answer
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        fault = self.faults.take("download")
        if fault is not None:
            if fault.kind != "status":
                await misbehave(request, fault, self._stopping)
                return web.Response(status=504)
            return front_end_page(fault.status) if fault.html else web.Response(status=fault.status)
        with self._lock:
            stored = self._state.paths.get(path)
            self._state.downloads.append(path)
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _dispatch(self, method: str, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise _ApiError(404, "Not Found")
        return await handler(params, files)

    # -- methods -----------------------------------------------------------------------------

    async def _api_getMe(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        return self.bot_user

    async def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        with self._lock:
            self._state.webhook_url, self._state.webhook_secret = "", None
            if params.get("drop_pending_updates") in ("true", "True", True):
                self._state.updates.clear()
        return True

    async def _api_setWebhook(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self._state.webhook_url, self._state.webhook_secret = url, secret
        return True

    async def _api_getUpdates(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        with self._lock:
            if self._state.webhook_url:
                raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        assert self._new_update is not None
        assert self._stopping is not None
        while True:
            self._new_update.clear()
            with self._lock:
                if offset > self._state.confirmed_below:
                    self._state.confirmed_below = offset
                    self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
                pending = self._state.updates[:limit]
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0 or self._stopping.is_set():
                return pending
            with suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), remaining)

    async def _api_getFile(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        with self._lock:
            stored = self._state.files.get(str(params.get("file_id")))
        if stored is None:
            raise _ApiError(400, "Bad Request: wrong file_id or the file is temporarily unavailable")
        if stored.size > MAX_DOWNLOAD:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": stored.size,
            "file_path": stored.path,
        }

    async def _api_getChatMember(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat_id, user_id = self._chat(params)["id"], int(params["user_id"])
        with self._lock:
            status = self._state.members.get((chat_id, user_id), "member")
        member: dict[str, Any] = {"status": status, "user": self.user(user_id)}
        if status == "administrator":
            member.update(
                {
                    name: False
                    for name in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            )
        elif status == "creator":
            member["is_anonymous"] = False
        elif status == "restricted":
            raise _ApiError(400, "Bad Request: restricted members are not modelled by the fake")
        return member

    async def _api_sendChatAction(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        self._chat(params)
        if params.get("action") not in {
            "typing",
            "upload_photo",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "upload_document",
            "choose_sticker",
            "find_location",
            "record_video_note",
            "upload_video_note",
        }:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        return True

    async def _api_sendMessage(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat = self._chat(params)
        text = self._checked_text(params, "text", MAX_TEXT, "Bad Request: message is too long")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        message = self._sent(chat, params)
        message["text"] = str(params["text"])
        return message

    async def _api_editMessageText(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat = self._chat(params)
        text = self._checked_text(params, "text", MAX_TEXT, "Bad Request: message is too long")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        message = self._sent(chat, params, message_id=int(params["message_id"]))
        message["text"] = str(params["text"])
        return message

    async def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat = self._chat(params)
        self._checked_text(params, "caption", MAX_CAPTION, "Bad Request: message caption is too long")
        upload = files.get("photo")
        if upload is None:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        if len(upload.data) > MAX_PHOTO_UPLOAD:
            raise _ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        try:
            with Image.open(io.BytesIO(upload.data)) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError):
            raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        if width + height > MAX_PHOTO_SIDES or max(width, height) > 20 * min(width, height):
            raise _ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        stored = self.store_file(upload.data, kind="photos")
        message = self._sent(chat, params)
        message["photo"] = [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.unique_id,
                "width": width,
                "height": height,
                "file_size": stored.size,
            }
        ]
        if "caption" in params:
            message["caption"] = str(params["caption"])
        return message

    async def _api_sendDocument(self, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat = self._chat(params)
        self._checked_text(params, "caption", MAX_CAPTION, "Bad Request: message caption is too long")
        upload = files.get("document")
        if upload is None:
            raise _ApiError(400, "Bad Request: there is no document in the request")
        if len(upload.data) > MAX_UPLOAD:
            raise _ApiError(413, "Request Entity Too Large")
        stored = self.store_file(upload.data)
        message = self._sent(chat, params)
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": upload.filename or "document",
            "file_size": stored.size,
        }
        if "caption" in params:
            message["caption"] = str(params["caption"])
        return message

    # -- helpers -----------------------------------------------------------------------------

    def _chat(self, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, TypeError, ValueError):
            raise _ApiError(400, "Bad Request: chat_id is empty") from None
        with self._lock:
            chat = self._state.chats.get(chat_id)
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat

    def _checked_text(self, params: Mapping[str, Any], name: str, limit: int, too_long: str) -> str:
        raw = params.get(name)
        if raw is None:
            return ""
        text = str(raw)
        if params.get("parse_mode") == "HTML":
            try:
                text = parse_html(text)
            except EntityError as error:
                raise _ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        elif params.get("parse_mode") not in (None, ""):
            raise _ApiError(400, "Bad Request: unsupported parse_mode in the fake")
        if utf16_len(text) > limit:
            raise _ApiError(400, too_long)
        return text

    def _sent(
        self, chat: Mapping[str, Any], params: Mapping[str, Any], message_id: int | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id or self._next_message_id(int(chat["id"])),
            "date": int(time.time()),
            "chat": dict(chat),
            "from": self.bot_user,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            message["reply_markup"] = markup
        return message


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


_COMMAND = re.compile(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")
_MENTION = re.compile(r"@[A-Za-z0-9_]{5,32}")


def entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram attaches to a text or caption: a leading bot command and @mentions.

    Offsets and lengths are in UTF-16 code units, as in the Bot API.
    """
    found: list[dict[str, Any]] = []
    command = _COMMAND.match(text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for mention in _MENTION.finditer(text):
        if command and mention.start() < command.end():
            continue
        found.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: mention.start()]),
                "length": utf16_len(mention.group()),
            }
        )
    return found


@contextmanager
def running_fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake
