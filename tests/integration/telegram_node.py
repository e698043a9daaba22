"""A whole bot in its own process, for the restart tests: they kill it with SIGKILL mid-work.

    python -m tests.integration.telegram_node DATA_DIR API_URL

Runs PhotoService on SQLite in DATA_DIR, the worker and the Telegram adapter polling API_URL (the
fake Bot API of the test), prints "ready" once polling, and runs until killed or SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.integration.telegram_helpers import bot_settings, start_rig, worker_config


async def run(data_dir: Path, api_url: str) -> None:
    settings = bot_settings(data_dir, api_url)
    rig = await start_rig(settings, worker=worker_config(visibility_timeout_s=2.0, grace_period_s=0.5))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await rig.close()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), sys.argv[2]))
