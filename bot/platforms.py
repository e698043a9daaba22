"""How the application finds and drives chat-platform adapters without importing them.

Imports point one way (adapters -> bot -> core), yet `photodetective run` must start the adapters.
So adapters register a factory under the `photodetective.adapters` entry-point group (see
pyproject.toml) and the runner loads whatever is installed. A factory returns None when its
platform is not configured, after saying so in one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Protocol

from aiohttp import web

from bot.ports import PhotoSource, ReplyPort
from bot.service import PhotoService
from bot.settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "photodetective.adapters"


class PlatformAdapter(Protocol):
    """One chat platform: receives events (when started) and fetches photos and replies (always).

    Workers need `source` and `replies` even in a process that does not receive events (the
    worker role), so building an adapter must not start receiving; `start` does.
    """

    @property
    def name(self) -> str:
        """The platform name used in requests ("telegram", "slack")."""
        ...

    @property
    def source(self) -> PhotoSource: ...

    @property
    def replies(self) -> ReplyPort: ...

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """HTTP routes this platform receives events on (webhooks), served on the one shared port."""
        ...

    async def start(self) -> None:
        """Begin receiving events (long polling, a webhook server, a socket); returns once running."""
        ...

    async def stop(self) -> None:
        """Stop receiving; events already acknowledged are in the queue. Replies still work."""
        ...

    async def close(self) -> None:
        """Release clients and connections, after the workers have delivered their last replies."""
        ...


AdapterFactory = Callable[[Settings, PhotoService], "PlatformAdapter | None"]


def load_adapters(settings: Settings, service: PhotoService) -> list[PlatformAdapter]:
    """Build every installed adapter whose platform is configured, in a stable (name) order."""
    adapters: list[PlatformAdapter] = []
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        factory: AdapterFactory = entry.load()
        adapter = factory(settings, service)
        if adapter is not None:
            adapters.append(adapter)
    return adapters
