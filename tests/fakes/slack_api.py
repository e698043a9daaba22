"""A local stand-in for Slack's Web API, file host and Socket Mode server, on 127.0.0.1.

The real slack-sdk client (and so the real Bolt app) talks to it over HTTP, so request encoding,
retries on 429 (`Retry-After`), the three steps of files_upload_v2 and the Socket Mode handshake
are all exercised for real. Every call is recorded, so a test can assert what a user would see:
the reactions on a message, the file uploaded into a thread and its comment, ephemeral notes.

What it serves:
- `/api/<method>` for any method, GET or POST; parameters are merged from the query string, a
  form (urlencoded or multipart) and a JSON body. Unknown methods answer `{"ok": true}`.
  auth.test, files.info, files.getUploadURLExternal, files.completeUploadExternal,
  chat.postMessage, chat.postEphemeral, reactions.add/remove, conversations.history/replies and
  apps.connections.open behave like Slack's (the parts this project uses).
- `/files-pri/<team>-<file id>/<name>`: the file bytes for `Authorization: Bearer <bot token>`,
  and, like Slack, HTTP 200 with an HTML sign-in page for a missing or wrong token.
- `/upload/<file id>`: the raw upload step of files_upload_v2.
- `/response/<name>`: a response_url for slash commands and shortcuts.
- `/socket`: a WebSocket that says `hello`, then sends whatever envelopes the test queues, and
  records the acknowledgements it gets back.

Faults (`faults`, a `tests.fakes.faults.FaultTable`; helpers `too_many_requests`,
`server_error`, `timeout`, `drop`) make any method, the file host ("download") or the upload
step ("upload") answer 429 with `Retry-After` and `{"ok": false, "error": "ratelimited"}`, 500
with `{"ok": false, "error": "internal_error"}`, 502/503/504 with the front end's HTML page, hang
until the client gives up, or close the connection; for a number of calls or for a while. Slack
refuses a conversation for good with HTTP 200 and an error code: `fail(method, "channel_not_found")`.

It runs on its own event loop in a background thread, like every fake (`tests.fakes.background`):

    with FakeSlack() as slack:
        file = slack.add_file("F1", jpeg_bytes)
        slack.rate_limit("files.completeUploadExternal", times=1, retry_after=1)
        ...
        assert slack.reactions("D1", ts) == {"white_check_mark"}
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.background import BackgroundServer
from tests.fakes.faults import Fault, FaultTable, front_end_page, misbehave

LOGIN_PAGE = (
    b"<!DOCTYPE html><html lang='en'><head><title>Slack</title></head>"
    b"<body><h1>Sign in to your workspace</h1><form action='/signin'></form></body></html>"
)


@dataclass(frozen=True)
class ApiCall:
    """One Web API call as the fake saw it; `status` is the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    error: str | None


@dataclass(frozen=True)
class SharedFile:
    """A file completed by files.completeUploadExternal: what a user sees posted."""

    file_id: str
    filename: str
    title: str | None
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass(frozen=True)
class Download:
    """A GET of a file URL; `served` is False when the HTML sign-in page was answered instead."""

    file_id: str
    authorization: str | None
    served: bool


@dataclass
class _Script:
    rate_limits: dict[str, list[int]] = field(default_factory=dict)  # method -> [times left, retry_after]
    failures: dict[str, list[Any]] = field(default_factory=dict)  # method -> [times left or None, error]


class FakeSlack(BackgroundServer):
    """The fake Slack; use it as a (sync or async) context manager, or call start() and stop()."""

    thread_name = "fake-slack"

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot-token",
        app_token: str = "xapp-fake-app-token",
        team_id: str = "T0FAKE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        #: Tokens the file host accepts; set it to something else to get the sign-in page.
        self.file_tokens: set[str] = {bot_token}
        #: file id -> URL the file host redirects to instead of serving the file.
        self.file_redirects: dict[str, str] = {}
        self._lock = threading.Lock()
        self._script = _Script()
        self._calls: list[ApiCall] = []
        self._files: dict[str, dict[str, Any]] = {}
        self._file_data: dict[str, bytes] = {}
        self._chunked: set[str] = set()
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._outside: set[str] = set()
        self._reactions: dict[tuple[str, str], set[str]] = {}
        self._pending_uploads: dict[str, dict[str, Any]] = {}
        self._uploaded: dict[str, bytes] = {}
        self._shared: list[SharedFile] = []
        self._downloads: list[Download] = []
        self._responses: list[dict[str, Any]] = []
        self._socket_acks: list[dict[str, Any]] = []
        self._socket_connections = 0
        self._ts = itertools.count(1)
        self._upload_ids = itertools.count(1)
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._stopping: asyncio.Event | None = None
        self.faults = FaultTable()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The Web API base URL to give AsyncWebClient (`base_url=`, with the trailing slash)."""
        return f"{self.url}/api/"

    @property
    def file_host(self) -> str:
        """The `host:port` files are served from (for `slack_file_hosts`)."""
        return f"{self.host}:{self.port}"

    # -- scripting ---------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message timestamp, increasing like Slack's."""
        with self._lock:
            return f"1700000000.{next(self._ts):06d}"

    def add_file(
        self,
        file_id: str,
        data: bytes,
        *,
        name: str = "photo.jpg",
        mimetype: str = "image/jpeg",
        filetype: str | None = None,
        user: str = "U0ALICE",
        size: int | None = None,
        shares: Mapping[str, list[str]] | None = None,
        chunked: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store a file and return its object as events and files.info show it.

        `size` overrides the reported size (to test the check before download); `shares` maps a
        channel to the timestamps of messages that shared the file there; `chunked` serves the
        download without Content-Length, so only the bytes themselves tell the size.
        """
        pretty = filetype or mimetype.split("/")[-1]
        url = f"{self.url}/files-pri/{self.team_id}-{file_id}/{name}"
        obj: dict[str, Any] = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": pretty,
            "pretty_type": pretty.upper(),
            "user": user,
            "size": len(data) if size is None else size,
            "mode": "hosted",
            "is_external": False,
            "url_private": url,
            "url_private_download": f"{url}?download=1",
            "shares": {
                "public": {
                    channel: [{"ts": ts, "channel_name": "general"} for ts in stamps]
                    for channel, stamps in (shares or {}).items()
                }
            },
            **extra,
        }
        with self._lock:
            self._files[file_id] = obj
            self._file_data[file_id] = data
            if chunked:
                self._chunked.add(file_id)
        return copy.deepcopy(obj)

    def add_message(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """Store a message for conversations.history/replies (a `ts` is given if missing)."""
        message = {"type": "message", "ts": message.get("ts") or self.next_ts(), **message}
        with self._lock:
            self._messages.setdefault(channel, []).append(copy.deepcopy(message))
        return message

    def not_a_member(self, channel: str) -> None:
        """The app is not in `channel`: history, posts, reactions and uploads answer not_in_channel."""
        with self._lock:
            self._outside.add(channel)

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and `Retry-After`.

        `method` is a Web API method name, or "upload" for the raw upload step.
        """
        with self._lock:
            self._script.rate_limits[method] = [times, retry_after]

    def too_many_requests(
        self, call: str | None, *, retry_after: int = 1, times: int | None = 1, for_s: float | None = None
    ) -> Fault:
        """HTTP 429 with `Retry-After` (and `ratelimited` for API methods), as Slack rate-limits."""
        fault = Fault("status", call, 429, retry_after, "ratelimited", times=times, for_s=for_s)
        return self.faults.add(fault)

    def server_error(
        self, call: str | None, status: int = 500, *, times: int | None = 1, for_s: float | None = None
    ) -> Fault:
        """500 with Slack's `internal_error`; 502/503/504 as the HTML page of Slack's front end."""
        fault = Fault(
            "status", call, status, None, "internal_error", html=status != 500, times=times, for_s=for_s
        )
        return self.faults.add(fault)

    def timeout(self, call: str | None, *, times: int | None = 1, for_s: float | None = None) -> Fault:
        """Take the request and never answer it."""
        return self.faults.add(Fault("hang", call, times=times, for_s=for_s))

    def drop(self, call: str | None, *, times: int | None = 1, for_s: float | None = None) -> Fault:
        """Close the connection without an answer."""
        return self.faults.add(Fault("drop", call, times=times, for_s=for_s))

    async def _fault(self, request: web.Request, call: str) -> web.StreamResponse | None:
        """The response for a scripted fault on `call`, or None to serve it normally."""
        fault = self.faults.take(call)
        if fault is None:
            return None
        if fault.kind != "status":
            await misbehave(request, fault, self._stopping)
            return web.Response(status=504)  # never reaches the client: the connection is gone
        if fault.html:
            return front_end_page(fault.status)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        if call in ("download", "upload"):
            return web.Response(status=fault.status, text="error", headers=headers)
        body = {"ok": False, "error": fault.error}
        return web.json_response(body, status=fault.status, headers=headers)

    def fail(self, method: str, error: str, *, times: int | None = None) -> None:
        """Answer `method` with `{"ok": false, "error": error}` (`times` calls, or all)."""
        with self._lock:
            self._script.failures[method] = [times, error]

    def send_envelope(self, envelope: dict[str, Any]) -> None:
        """Queue a Socket Mode envelope for the connected client (sent once one is connected)."""
        loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            raise RuntimeError("the fake is not running")
        loop.call_soon_threadsafe(outbox.put_nowait, copy.deepcopy(envelope))

    # -- records -----------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def ok_calls(self, method: str) -> list[ApiCall]:
        """The calls of `method` that succeeded (not rate limited, no error)."""
        return [c for c in self.calls(method) if c.status == 200 and c.error is None]

    @property
    def shared_files(self) -> list[SharedFile]:
        with self._lock:
            return list(self._shared)

    @property
    def downloads(self) -> list[Download]:
        with self._lock:
            return list(self._downloads)

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Bodies posted to response URLs (slash command and shortcut answers)."""
        with self._lock:
            return copy.deepcopy(self._responses)

    @property
    def socket_acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._socket_acks)

    @property
    def socket_connections(self) -> int:
        with self._lock:
            return self._socket_connections

    def reactions(self, channel: str, ts: str) -> set[str]:
        """The reactions currently on a message (added and not removed)."""
        with self._lock:
            return set(self._reactions.get((channel, ts), set()))

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        """Parameters of successful chat.postEphemeral calls (to `user`, or to anyone)."""
        return [c.params for c in self.ok_calls("chat.postEphemeral") if user in (None, c.params.get("user"))]

    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/response/{name}"

    # -- server ------------------------------------------------------------------------------

    async def _on_start(self) -> None:
        self._outbox = asyncio.Queue()
        self._stopping = asyncio.Event()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{team_file}/{name}", self._file)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/socket", self._socket)
        return app

    async def _on_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # hung requests end now
        for ws in list(self._sockets):
            await ws.close()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    def _scripted_429(self, method: str) -> int | None:
        with self._lock:
            rule = self._script.rate_limits.get(method)
            if rule and rule[0] > 0:
                rule[0] -= 1
                return int(rule[1])
        return None

    def _scripted_error(self, method: str) -> str | None:
        with self._lock:
            rule = self._script.failures.get(method)
            if rule and rule[0] != 0:
                if rule[0] is not None:
                    rule[0] -= 1
                return str(rule[1])
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        faulty = await self._fault(request, method)
        if faulty is not None:
            self._record(ApiCall(method, params, None, faulty.status, "fault"))
            return faulty
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        retry_after = self._scripted_429(method)
        if retry_after is not None:
            self._record(ApiCall(method, params, token, 429, "ratelimited"))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        error = "invalid_auth" if token != expected else self._scripted_error(method)
        answer: dict[str, Any]
        if error is None:
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            answer = handler(params) if handler is not None else {"ok": True}
            error = None if answer.get("ok") else str(answer.get("error"))
        else:
            answer = {"ok": False, "error": error}
        self._record(ApiCall(method, params, token, 200, error))
        return web.json_response(answer)

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)

    # -- methods (called on the fake's loop, under no lock) --------------------------------

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "photodetective",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
        }

    def _m_files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            obj = self._files.get(str(params.get("file")))
            return (
                {"ok": True, "file": copy.deepcopy(obj)} if obj else {"ok": False, "error": "file_not_found"}
            )

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            file_id = f"FUP{next(self._upload_ids):04d}"
            self._pending_uploads[file_id] = {"filename": params["filename"], "length": int(params["length"])}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(params.get("files") or "[]")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        channel = params.get("channel_id")
        with self._lock:
            if channel in self._outside:
                return {"ok": False, "error": "not_in_channel"}
            if not files or any(f.get("id") not in self._uploaded for f in files):
                return {"ok": False, "error": "file_not_found"}
            for f in files:
                pending = self._pending_uploads[f["id"]]
                self._shared.append(
                    SharedFile(
                        file_id=f["id"],
                        filename=pending["filename"],
                        title=f.get("title"),
                        data=self._uploaded[f["id"]],
                        channel_id=channel,
                        thread_ts=params.get("thread_ts"),
                        initial_comment=params.get("initial_comment"),
                    )
                )
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if params.get("channel") in self._outside:
                return {"ok": False, "error": "not_in_channel"}
        return {"ok": True, "channel": params.get("channel"), "ts": self.next_ts()}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self.next_ts()}

    def _m_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (str(params.get("channel")), str(params.get("timestamp")))
        with self._lock:
            if key[0] in self._outside:
                return {"ok": False, "error": "not_in_channel"}
            names = self._reactions.setdefault(key, set())
            if params.get("name") in names:
                return {"ok": False, "error": "already_reacted"}
            names.add(str(params.get("name")))
        return {"ok": True}

    def _m_reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (str(params.get("channel")), str(params.get("timestamp")))
        with self._lock:
            names = self._reactions.get(key, set())
            if params.get("name") not in names:
                return {"ok": False, "error": "no_reaction"}
            names.discard(str(params.get("name")))
        return {"ok": True}

    def _m_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        limit = int(params.get("limit") or 100)
        with self._lock:
            if channel in self._outside:
                return {"ok": False, "error": "not_in_channel"}
            messages = [m for m in self._messages.get(channel, []) if m.get("thread_ts") in (None, m["ts"])]
            newest_first = sorted(messages, key=lambda m: float(m["ts"]), reverse=True)[:limit]
            return {"ok": True, "messages": copy.deepcopy(newest_first), "has_more": False}

    def _m_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel")), str(params.get("ts"))
        with self._lock:
            if channel in self._outside:
                return {"ok": False, "error": "not_in_channel"}
            thread = [m for m in self._messages.get(channel, []) if ts in (m["ts"], m.get("thread_ts"))]
            if not thread:
                return {"ok": False, "error": "thread_not_found"}
            ordered = sorted(thread, key=lambda m: float(m["ts"]))
            return {"ok": True, "messages": copy.deepcopy(ordered), "has_more": False}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket?ticket=fake"}

    # -- other routes ------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        faulty = await self._fault(request, "download")
        if faulty is not None:
            return faulty
        team_file = request.match_info["team_file"]
        file_id = team_file.split("-", 1)[-1]
        auth = request.headers.get("Authorization")
        token = auth.removeprefix("Bearer ") if auth and auth.startswith("Bearer ") else None
        with self._lock:
            redirect = self.file_redirects.get(file_id)
            obj, data = self._files.get(file_id), self._file_data.get(file_id)
            served = token in self.file_tokens and obj is not None and data is not None and not redirect
            self._downloads.append(Download(file_id, auth, served))
        if redirect:
            raise web.HTTPFound(redirect)
        if not served or obj is None or data is None:
            return web.Response(status=200, body=LOGIN_PAGE, content_type="text/html")
        if file_id not in self._chunked:
            return web.Response(status=200, body=data, content_type=str(obj["mimetype"]))
        response = web.StreamResponse(status=200)
        response.content_type = str(obj["mimetype"])
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 16_384):
            await response.write(data[start : start + 16_384])
        await response.write_eof()
        return response

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        faulty = await self._fault(request, "upload")
        if faulty is not None:
            return faulty
        retry_after = self._scripted_429("upload")
        if retry_after is not None:
            return web.Response(status=429, text="rate limited", headers={"Retry-After": str(retry_after)})
        file_id = request.match_info["file_id"]
        data = await request.read()
        with self._lock:
            if file_id not in self._pending_uploads:
                return web.Response(status=404, text="unknown upload")
            self._uploaded[file_id] = data
        return web.Response(status=200, text=f"OK - {len(data)}")

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self._responses.append({"name": request.match_info["name"], **body})
        return web.Response(status=200, text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        with self._lock:
            self._socket_connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0FAKE"},
            }
        )
        pump = asyncio.create_task(self._pump(ws))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if isinstance(data, dict) and "envelope_id" in data:
                        with self._lock:
                            self._socket_acks.append(data)
        finally:
            pump.cancel()
            self._sockets.discard(ws)
        return ws

    async def _pump(self, ws: web.WebSocketResponse) -> None:
        assert self._outbox is not None
        while not ws.closed:
            envelope = await self._outbox.get()
            await ws.send_json(envelope)


def events_api_envelope(body: dict[str, Any], envelope_id: str, retry_attempt: int = 0) -> dict[str, Any]:
    """A Socket Mode `events_api` envelope carrying an Events API body."""
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
        "payload": body,
    }
