"""Pieces shared by the Telegram end-to-end tests: generated photos and a running bot ("rig").

A rig is the real thing, minus the network: `PhotoService` on SQLite stores in a temporary
folder, the `Worker`, and the Telegram adapter polling the fake Bot API (`tests.fakes.telegram_api`)
with the real python-telegram-bot client over HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import piexif
from PIL import Image, ImageDraw

from adapters.telegram import TelegramAdapter, TelegramConfig
from bot.service import PhotoService
from bot.settings import Settings
from bot.wiring import Stores, build_service, build_stores
from bot.worker import Worker, WorkerConfig
from core.recognizers.base import NullRecognizer, Recognizer
from tests.fakes.telegram_api import TOKEN
from tests.integration.worker_helpers import adapter_worker
from tests.settings_helpers import settings_from

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKETELEGRAMTEST",
    "AWS_SECRET_ACCESS_KEY": "fake/telegram/secret/0000000000000000000",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def jpeg(
    width: int = 640, height: int = 480, *, exif: bytes | None = None, color: str = "steelblue"
) -> bytes:
    """A small photo-like JPEG: a background, a "face" and a "sign", optionally with EXIF."""
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.4, height * 0.15, width * 0.6, height * 0.45), fill="peachpuff")
    draw.rectangle((width * 0.05, height * 0.85, width * 0.45, height * 0.95), fill="white")
    out = io.BytesIO()
    if exif is None:
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _rational(value: float, scale: int = 10_000) -> tuple[int, int]:
    return round(value * scale), scale


def _dms(value: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return (degrees, 1), (minutes, 1), _rational(seconds, 100)


def exif_bytes(
    *,
    make: str = "Canon",
    model: str = "Canon EOS R5",
    lens: str | None = None,
    gps: tuple[float, float] | None = None,
) -> bytes:
    """EXIF with camera, settings, a capture time and optionally a GPS position (piexif)."""
    zeroth: dict[int, Any] = {
        piexif.ImageIFD.Make: make.encode("utf-8"),
        piexif.ImageIFD.Model: model.encode("utf-8"),
    }
    exif: dict[int, Any] = {
        piexif.ExifIFD.DateTimeOriginal: b"2024:05:14 18:03:00",
        piexif.ExifIFD.FNumber: (18, 10),
        piexif.ExifIFD.ExposureTime: (1, 120),
        piexif.ExifIFD.ISOSpeedRatings: 100,
        piexif.ExifIFD.FocalLength: (50, 1),
    }
    if lens is not None:
        exif[piexif.ExifIFD.LensModel] = lens.encode("utf-8")
    data: dict[str, Any] = {"0th": zeroth, "Exif": exif}
    if gps is not None:
        lat, lon = gps
        data["GPS"] = {
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: _dms(lat),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: _dms(lon),
        }
    return bytes(piexif.dump(data))


def bot_settings(data_dir: Path, api_url: str, token: str = TOKEN, **overrides: Any) -> Settings:
    """Settings for a test bot: its own data folder, the fake Bot API, generous bursts."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "telegram_token": token,
        "telegram_api_url": api_url,
        "quota_burst_limit": 50,
        "quota_max_concurrent": 10,
        "quota_daily_limit": 50,
        "backend": "none",
    }
    values.update(overrides)
    return settings_from(**values)


def worker_config(**overrides: Any) -> WorkerConfig:
    values: dict[str, Any] = {
        "worker_id": f"test-{os.getpid()}",
        "concurrency": 2,
        "poll_interval_s": 0.05,
        "visibility_timeout_s": 3.0,
        "job_timeout_s": 20.0,
        "grace_period_s": 5.0,
    }
    values.update(overrides)
    return WorkerConfig(**values)


@dataclass
class Rig:
    """A running bot: service, stores, adapter and worker, stopped with `close()`."""

    settings: Settings
    stores: Stores
    service: PhotoService
    adapter: TelegramAdapter
    worker: Worker | None
    stop: asyncio.Event
    working: asyncio.Task[None] | None

    async def close(self) -> None:
        self.stop.set()
        await self.adapter.stop()
        if self.working is not None:
            await self.working
        await self.adapter.close()
        await self.stores.close()

    async def jobs(self) -> int:
        """Jobs ever stored (waiting, in progress, done or dead)."""
        stats = await self.stores.queue.stats(time.time())
        return stats.queued + stats.in_flight + stats.done + stats.dead


async def start_rig(
    settings: Settings,
    *,
    recognizer: Recognizer | None = None,
    with_worker: bool = True,
    poll_timeout_s: int = 1,
    worker: WorkerConfig | None = None,
    start: bool = True,
) -> Rig:
    """Build and start the bot the way `photodetective run` does, but with the adapter built directly."""
    recognizer = recognizer or NullRecognizer()
    stores = build_stores(settings)
    service = build_service(settings, stores, recognizer.capabilities, backend=recognizer.name)
    config = dataclasses.replace(
        TelegramConfig.from_settings(settings, recognizer.capabilities, recognizer.name),
        poll_timeout_s=poll_timeout_s,
    )
    adapter = TelegramAdapter(config, service)
    stop = asyncio.Event()
    the_worker = None
    working = None
    if with_worker:
        the_worker = adapter_worker(settings, stores, adapter, recognizer, worker or worker_config())
        working = asyncio.create_task(the_worker.run(stop))
    if start:
        await adapter.start()
    return Rig(settings, stores, service, adapter, the_worker, stop, working)
