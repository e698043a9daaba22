"""The composition root: the one place that turns settings into working parts.

Entry points call these builders and pass the results down; nothing else constructs backends
or reads settings, so tests can build any part with explicit values instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.access import AccessPolicy
from bot.describe_wiring import build_questions, unbilled_features, with_describer
from bot.metrics import Metrics
from bot.preferences import PreferencesStore, RedisPreferences, SQLitePreferences
from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue
from bot.quota import QuotaPolicy, QuotaStore, RedisQuotaStore, SQLiteQuotaStore
from bot.rate_limit import RateGate, RedisSlotSchedule, SlotSchedule, SqliteSlotSchedule
from bot.service import PhotoService
from bot.settings import ENV_PREFIX, BackendChoice, Settings, SettingsError
from bot.startup import writable_folder
from bot.storage import RedisPolicy, SqlitePolicy
from core.analysis_types import Feature
from core.errors import RecognizerError
from core.recognizers.base import CallGate, NullRecognizer, OpenGate, Recognizer
from core.recognizers.local import LocalRecognizer, local_models_installed
from core.recognizers.rekognition import RekognitionRecognizer, aws_credentials_available


@dataclass(frozen=True)
class RecognizerChoice:
    """The recognizer to use and, when `auto` had to settle for less, a note saying why."""

    recognizer: Recognizer
    note: str | None = None


NO_BACKEND_NOTE = (
    "No recognizer is available, so only EXIF is read and the photo prepared: the local recognizer's "
    "models are not installed (run `make install` or `python scripts/install_models.py`) and no AWS "
    "credentials were found for Amazon Rekognition."
)


def build_rekognition(settings: Settings) -> RekognitionRecognizer:
    """Rekognition configured from the settings; credentials come from the standard AWS chain.

    The client is built here, so a missing region or a malformed endpoint URL is a settings
    error at start-up (one line, exit 2), named by the variables that fix it.
    """
    try:
        return _rekognition(settings)
    except RecognizerError as error:
        raise SettingsError(f"{error} (settings: {REKOGNITION_SETTINGS})") from None


REKOGNITION_SETTINGS = f"{ENV_PREFIX}REKOGNITION_REGION, {ENV_PREFIX}REKOGNITION_ENDPOINT_URL"


def _rekognition(settings: Settings) -> RekognitionRecognizer:
    return RekognitionRecognizer(
        region=settings.rekognition_region,
        endpoint_url=settings.rekognition_endpoint_url,
        max_attempts=settings.rekognition_max_attempts,
        connect_timeout=settings.rekognition_connect_timeout,
        read_timeout=settings.rekognition_read_timeout,
        min_confidence=settings.rekognition_min_confidence,
        celebrities=settings.rekognition_celebrities,
        concurrent_photos=settings.worker_concurrency,
        gate=build_rate_gate(settings),
    )


#: How every store built here reaches SQLite and Redis (bot.storage), decided once: a writer waits
#: 5 s for another process's lock; Redis answers within 1 s or the store reports itself unavailable.
#: Stores with stricter needs derive from these rather than build their own: the job queue syncs
#: every commit (synchronous FULL) and never retries a Redis command (its scripts are not idempotent,
#: and it waits at least 2 s for one); the web results wait longer for a command carrying an image.
SQLITE_POLICY = SqlitePolicy(busy_timeout_s=5.0)
REDIS_POLICY = RedisPolicy(timeout_s=1.0, retries=1, max_connections=50)


def build_rate_gate(settings: Settings) -> CallGate:
    """The account-wide Rekognition rate limit: in Redis when replicas share it, else a SQLite file."""
    if settings.rekognition_tps <= 0:
        return OpenGate()
    schedule: SlotSchedule = (
        RedisSlotSchedule(settings.redis_url, policy=REDIS_POLICY)
        if settings.redis_url
        else SqliteSlotSchedule(settings.data_dir / "rate.sqlite3", policy=SQLITE_POLICY)
    )
    return RateGate(schedule, settings.rekognition_tps)


def build_local(settings: Settings) -> LocalRecognizer:
    """The embedded offline recognizer; its models load lazily, on the first photo that needs them."""
    return LocalRecognizer(
        models_dir=settings.models_dir,
        moderation=settings.local_moderation,
        concurrent_photos=settings.worker_concurrency,
    )


def build_recognizer(settings: Settings, choice: BackendChoice | None = None) -> RecognizerChoice:
    """The recognizer (`pick_recognizer`), followed by the describer when one is configured."""
    picked = pick_recognizer(settings, choice)
    return RecognizerChoice(with_describer(picked.recognizer, settings), picked.note)


def pick_recognizer(settings: Settings, choice: BackendChoice | None = None) -> RecognizerChoice:
    """Pick the backend: an explicit choice wins; `auto` prefers Rekognition when AWS credentials exist.

    Otherwise `auto` uses the embedded recognizer, so a fresh install works with no cloud account;
    and it never fails: without models either, photos are still prepared and EXIF read, with a note.
    """
    wanted = choice or settings.backend
    if wanted == "none":
        return RecognizerChoice(NullRecognizer())
    if wanted == "rekognition":
        return RecognizerChoice(build_rekognition(settings))
    if wanted == "local":
        return RecognizerChoice(build_local(settings))
    if aws_credentials_available():
        return RecognizerChoice(build_rekognition(settings))
    if local_models_installed(settings.models_dir):
        return RecognizerChoice(build_local(settings))
    return RecognizerChoice(NullRecognizer(), NO_BACKEND_NOTE)


@dataclass(frozen=True)
class Stores:
    """The durable state: the job queue and the quota store, both SQLite or both Redis."""

    queue: JobQueue
    quota: QuotaStore
    preferences: PreferencesStore

    async def close(self) -> None:
        await self.queue.close()
        await self.quota.close()
        await self.preferences.close()


def quota_policy(settings: Settings) -> QuotaPolicy:
    """The quota limits from settings; a slot's lease outlives the longest job a worker may run."""
    return QuotaPolicy(
        daily_limit=settings.quota_daily_limit,
        max_concurrent=settings.quota_max_concurrent,
        burst_limit=settings.quota_burst_limit,
        burst_window_s=settings.quota_burst_window_s,
        global_daily_calls=settings.quota_global_daily_calls,
        timezone=settings.quota_timezone,
        max_job_s=settings.job_timeout_s * settings.job_max_attempts + settings.job_visibility_timeout_s,
    )


def access_policy(settings: Settings) -> AccessPolicy:
    return AccessPolicy(
        admins=settings.admins, allowed=settings.allowed_chats, blocked=settings.blocked_chats
    )


def build_stores(settings: Settings) -> Stores:
    """Redis when a URL is set (replicas share work and quotas), else SQLite files in the data folder."""
    if settings.redis_url:
        return Stores(
            queue=RedisJobQueue(
                settings.redis_url, max_attempts=settings.job_max_attempts, policy=REDIS_POLICY
            ),
            quota=RedisQuotaStore.from_url(settings.redis_url, policy=REDIS_POLICY),
            preferences=RedisPreferences(settings.redis_url, policy=REDIS_POLICY),
        )
    writable_folder(settings.data_dir, f"{ENV_PREFIX}DATA_DIR")
    return Stores(
        queue=SqliteJobQueue(
            settings.data_dir / "queue.sqlite3", policy=SQLITE_POLICY, max_attempts=settings.job_max_attempts
        ),
        quota=SQLiteQuotaStore(settings.data_dir / "quota.sqlite3", policy=SQLITE_POLICY),
        preferences=SQLitePreferences(settings.data_dir / "preferences.sqlite3", policy=SQLITE_POLICY),
    )


def build_service(
    settings: Settings,
    stores: Stores,
    capabilities: frozenset[Feature],
    metrics: Metrics | None = None,
    backend: str = "none",
) -> PhotoService:
    """The service adapters submit to, with the limits and lists from settings."""
    return PhotoService(
        queue=stores.queue,
        quota=stores.quota,
        policy=quota_policy(settings),
        access=access_policy(settings),
        capabilities=capabilities,
        max_bytes=settings.max_input_bytes,
        preferences=stores.preferences,
        default_features=settings.features,
        metrics=metrics,
        backend=backend,
        outage_patience_s=settings.store_outage_patience_s,
        questions=build_questions(
            settings,
            stores.quota,
            quota_policy(settings),
            access_policy(settings),
            sqlite=SQLITE_POLICY,
            redis=REDIS_POLICY,
        ),
        unbilled=unbilled_features(settings, backend, capabilities),
    )
