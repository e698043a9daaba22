"""An aiohttp server on its own event loop in a background thread, the shared life of our network fakes.

A fake that owns its loop and thread works the same from sync tests, async tests (whatever loop
pytest-asyncio runs) and subprocess-based CLI tests, and can be stopped while a test's own loop is
blocked. Subclasses say what they serve (`_build_app`) and what must happen on their loop before
the server starts (`_on_start`) and before it is torn down (`_on_stop`); this class does the rest.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web


class BackgroundServer:
    """Start/stop, `url` and (sync or async) context managers for a fake served on 127.0.0.1."""

    #: The background thread's name, to tell the fakes apart in a thread dump.
    thread_name = "fake-server"

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._wanted_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- what a fake provides ----------------------------------------------------------------

    def _build_app(self) -> web.Application:
        """The application to serve; called on the server's loop each time the fake starts."""
        raise NotImplementedError

    async def _on_start(self) -> None:
        """Create per-run loop state (events, queues) before the app is built; nothing by default."""

    async def _on_stop(self) -> None:
        """Cut open requests short (long polls, delays, sockets) before the runner is cleaned up."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server root, e.g. for boto3's `endpoint_url=` or a Bot API base URL."""
        if not self.port:
            raise RuntimeError("the fake is not running")
        return f"http://{self.host}:{self.port}"

    def start(self, port: int = 0) -> Self:
        """Start the server in a background thread and wait until it listens (on `port`, 0: any).

        A stopped fake started again on its old port is a platform host that was down (refusing
        connections) and is back, for clients that keep its URL.
        """
        if self._thread is not None:
            raise RuntimeError("already running")
        self._wanted_port = port
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop the server: open requests are cut short (`_on_stop`), then the thread ends."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None
            self.port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- server ------------------------------------------------------------------------------

    async def _serve(self) -> None:
        await self._on_start()
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._wanted_port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def _shutdown(self) -> None:
        await self._on_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
