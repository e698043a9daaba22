"""The Slack platform adapter: one Bolt AsyncApp, reached over HTTP or Socket Mode.

HTTP mode serves Bolt through `routes()` on the runner's shared aiohttp server (POST
/slack/events for events, the slash command and interactivity alike); Bolt checks every
request's signature and timestamp against the signing secret. Socket Mode opens a WebSocket to
Slack instead (no public URL needed) and needs an app-level token.

Building the adapter starts nothing and calls no Slack API, so worker-only processes can use its
`source` and `replies`. `start` begins receiving; before it and after `stop`, HTTP deliveries
get a 503, which Slack retries later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from adapters.slack.app import SlackListeners
from adapters.slack.client import build_web_client
from adapters.slack.config import SlackSettings
from adapters.slack.intake import ACK_BUDGET_S, PLATFORM, Intake
from adapters.slack.questions import SlackQuestions
from adapters.slack.replies import Reactions, SlackReplies
from adapters.slack.source import SlackPhotoSource
from bot.service import PhotoService
from bot.settings import ENV_PREFIX, Settings, SettingsError
from bot.startup import StartupFailed

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SOCKET_CONNECT_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 10.0


class SlackAdapter:
    """`bot.platforms.PlatformAdapter` for Slack."""

    def __init__(self, settings: Settings, service: PhotoService, *, ack_budget_s: float = ACK_BUDGET_S):
        slack = settings.section(SlackSettings)
        if slack.bot_token is None:
            raise ValueError(f"the Slack adapter needs {ENV_PREFIX}SLACK_BOT_TOKEN")
        token = slack.bot_token.get_secret_value()
        self.mode = slack.mode
        self._app_token = slack.app_token.get_secret_value() if slack.app_token else None
        self.client = build_web_client(token, slack.api_url)
        self.reactions = Reactions(self.client)
        self.name = PLATFORM
        self.source = SlackPhotoSource(self.client, token, slack.file_hosts)
        self.replies = SlackReplies(self.client, self.reactions, service.questions)
        self.intake = Intake(service, self.reactions, ack_budget_s=ack_budget_s)
        signing_secret = slack.signing_secret.get_secret_value() if slack.signing_secret else ""
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            process_before_response=True,  # ack only after submit (see adapters.slack.intake)
            name="photodetective",
            logger=logging.getLogger("adapters.slack.bolt"),
        )
        self.listeners = SlackListeners(
            service=service,
            client=self.client,
            intake=self.intake,
            source=self.source,
            asking=SlackQuestions(service.questions, self.client) if service.questions else None,
        )
        self.listeners.register(self.app)
        self._receiving = False
        self._socket: AsyncSocketModeHandler | None = None

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """POST /slack/events in HTTP mode; nothing in Socket Mode."""
        if self.mode != "http":
            return []
        return [web.post(EVENTS_PATH, self.handle_http)]

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """Hand a signed Slack request to Bolt; 503 while not receiving, so Slack retries later."""
        if not self._receiving:
            return web.Response(status=503, text="not receiving events right now")
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:
            # Bolt parses the body before checking its signature, and a body that is not JSON
            # (or a form whose payload is not) raised: a forged request was a 500 and a traceback.
            return web.Response(status=400, text="malformed request")
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def start(self) -> None:
        """HTTP: accept deliveries. Socket Mode: connect, failing clearly if Slack never answers."""
        if self.mode == "socket":
            if not self._app_token:
                raise SettingsError(f"Slack Socket Mode needs {ENV_PREFIX}SLACK_APP_TOKEN")
            self._socket = AsyncSocketModeHandler(self.app, self._app_token, web_client=self.client)
            try:
                await asyncio.wait_for(
                    self._socket.connect_async(),  # type: ignore[no-untyped-call]
                    SOCKET_CONNECT_TIMEOUT_S,
                )
            except TimeoutError:
                await self._socket.close_async()  # type: ignore[no-untyped-call]
                self._socket = None
                raise StartupFailed(  # one line at start-up, exit 1 (bot.startup)
                    "Slack Socket Mode did not connect: check PHOTODETECTIVE_SLACK_APP_TOKEN "
                    "(an xapp- token with connections:write) and that Socket Mode is enabled"
                ) from None
        self._receiving = True

    async def stop(self) -> None:
        """Stop receiving; submits and reports already started finish (they take moments)."""
        self._receiving = False
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        await self.intake.drain(DRAIN_TIMEOUT_S)

    async def close(self) -> None:
        await self.intake.drain(DRAIN_TIMEOUT_S)
        await self.source.close()


def create(settings: Settings, service: PhotoService) -> SlackAdapter | None:
    """The entry-point factory: a SlackAdapter when Slack is configured, else None after one log line."""
    slack = settings.section(SlackSettings)
    if slack.bot_token is None:
        log.info("Slack is not configured (PHOTODETECTIVE_SLACK_BOT_TOKEN is not set)")
        return None
    if slack.mode == "http" and slack.signing_secret is None:
        log.warning("Slack is not started: HTTP mode needs PHOTODETECTIVE_SLACK_SIGNING_SECRET")
        return None
    if slack.mode == "socket" and slack.app_token is None:
        log.warning("Slack is not started: Socket Mode needs PHOTODETECTIVE_SLACK_APP_TOKEN")
        return None
    return SlackAdapter(settings, service)
