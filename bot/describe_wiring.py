"""Building the describer from the settings (part of the composition root, `bot.wiring`).

Kept apart from `bot.wiring` so the describer's settings are read in one small place: the
backend, its model and address, the shared Bedrock rate limit, and the describe stage's rules
(timeout, explicit photos). With `describe_backend=none` nothing is built and no photo goes
anywhere new.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError

from bot.access import AccessPolicy
from bot.describing import DescribingRecognizer
from bot.kept_photos import KeptPhotos, RedisKeptPhotos, SQLiteKeptPhotos
from bot.questions import QuestionService
from bot.quota.base import QuotaStore
from bot.quota.models import QuotaPolicy
from bot.rate_limit import RateGate, RedisSlotSchedule, SlotSchedule, SqliteSlotSchedule
from bot.settings import ENV_PREFIX, Settings, SettingsError
from bot.storage import RedisPolicy, SqlitePolicy
from core.analysis_types import Feature
from core.describe.base import Describer
from core.describe.openai_compat import is_self_hosted
from core.recognizers.base import CallGate, OpenGate, Recognizer

DESCRIBE_SETTINGS = f"{ENV_PREFIX}DESCRIBE_BACKEND, _MODEL, _URL, _REGION"


def build_describer(settings: Settings) -> Describer | None:
    """The configured describer, or None; a setting it cannot work with is a start-up error."""
    model = settings.describe_model or ""
    try:
        if settings.describe_backend == "bedrock":
            from core.describe.bedrock import BedrockDescriber

            return BedrockDescriber(
                model=model,
                region=settings.describe_region,
                timeout_s=settings.describe_timeout_s,
                concurrency=max(2, settings.worker_concurrency * 2),
                gate=describe_gate(settings),
            )
        if settings.describe_backend == "openai":
            from core.describe.openai_compat import OpenAIDescriber

            key = settings.describe_api_key
            return OpenAIDescriber(
                base_url=settings.describe_url or "",
                model=model,
                api_key=key.get_secret_value() if key is not None else None,
                timeout_s=settings.describe_timeout_s,
            )
    except (ValueError, BotoCoreError) as error:  # BotoCoreError: no region found, a bad endpoint
        raise SettingsError(
            f"The describer cannot be built: {error} (settings: {DESCRIBE_SETTINGS})"
        ) from None
    return None


def describe_gate(settings: Settings) -> CallGate:
    """The account-wide Bedrock rate limit, shared like Rekognition's (Redis, else a SQLite file)."""
    if settings.describe_tps <= 0:
        return OpenGate()
    schedule: SlotSchedule = (
        RedisSlotSchedule(settings.redis_url)
        if settings.redis_url
        else SqliteSlotSchedule(settings.data_dir / "rate.sqlite3")
    )
    return RateGate(schedule, settings.describe_tps)


def with_describer(recognizer: Recognizer, settings: Settings) -> Recognizer:
    """`recognizer` followed by the configured describer, or `recognizer` itself when there is none."""
    describer = build_describer(settings)
    if describer is None:
        return recognizer
    return DescribingRecognizer(
        recognizer,
        describer,
        timeout_s=settings.describe_timeout_s,
        allow_explicit=settings.describe_explicit_to_hosted,
    )


def build_questions(
    settings: Settings,
    quota: QuotaStore,
    policy: QuotaPolicy,
    access: AccessPolicy,
    *,
    sqlite: SqlitePolicy,
    redis: RedisPolicy,
) -> QuestionService | None:
    """The service answering questions about answered photos, or None (no describer, or turned off).

    It has its own describer: in split roles the ingress answers questions while workers describe.
    The kept photos live beside the other state (Redis when set, else a SQLite file), so the worker
    that keeps a photo and the process that gets the question see the same store, reached with
    the same SQLite and Redis policies as every other store (`bot.wiring`).
    """
    if settings.describe_questions_per_hour <= 0:
        return None
    describer = build_describer(settings)
    if describer is None:
        return None
    kept: KeptPhotos = (
        RedisKeptPhotos(settings.redis_url, redis)
        if settings.redis_url
        else SQLiteKeptPhotos(settings.data_dir / "kept_photos.sqlite3", sqlite)
    )
    return QuestionService(
        describer=describer,
        kept=kept,
        quota=quota,
        policy=policy,
        access=access,
        questions_per_hour=settings.describe_questions_per_hour,
        retention_s=settings.describe_retention_h * 3600,
        timeout_s=settings.describe_timeout_s,
    )


def unbilled_features(
    settings: Settings, recognizer: str, capabilities: frozenset[Feature]
) -> frozenset[Feature]:
    """Features that cost nothing per call, so the daily cost cap counts no unit for them.

    Every feature of a recognizer other than Rekognition (the embedded one runs on this machine),
    and a describer at a self-hosted address (the openai backend pointed at localhost, a private
    address or a bare host name). Bedrock is always billed, whatever recognizer runs beside it.
    """
    free = frozenset() if recognizer == "rekognition" else capabilities - {Feature.DESCRIBE}
    if settings.describe_backend == "openai" and is_self_hosted(settings.describe_url or ""):
        free |= {Feature.DESCRIBE}
    return free
