"""All settings, read once at start from the environment and a `.env` file, and validated there.

Every field is an environment variable named `PHOTODETECTIVE_<FIELD>` (upper case). AWS credentials
and region are *not* here: boto3 reads them from the standard chain (env, ~/.aws, instance role),
so operators configure Rekognition the way they configure every other AWS tool.

The settings object is built in the composition root (`bot.wiring`) and its values are handed to
the parts that need them; nothing deep in the code reads settings on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from core.analysis_types import DEFAULT_FEATURES, Feature
from core.limits import ImageLimits

ENV_PREFIX = "PHOTODETECTIVE_"

B = TypeVar("B", bound=BaseSettings)
BackendChoice = Literal["auto", "rekognition", "local", "none"]


class SettingsError(Exception):
    """A setting is wrong; the message names the environment variable so the operator can fix it."""


class SettingsSection(BaseSettings):
    """Base of a platform adapter's own settings (`PHOTODETECTIVE_<PLATFORM>_...`).

    Each adapter declares its variables in its own package and registers the class under the
    `photodetective.settings` entry-point group, so adding a platform adds its settings without
    touching bot/; `load_settings` validates them all at start and the README table lists them.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)


S = TypeVar("S", bound=SettingsSection)
SECTIONS_ENTRY_POINT_GROUP = "photodetective.settings"


def installed_sections() -> list[type[SettingsSection]]:
    """Every settings section an installed adapter registers, in a stable (name) order."""
    found: list[type[SettingsSection]] = []
    for entry in sorted(entry_points(group=SECTIONS_ENTRY_POINT_GROUP), key=lambda e: e.name):
        kind = entry.load()
        if isinstance(kind, type) and issubclass(kind, SettingsSection):
            found.append(kind)
    return found


class Settings(BaseSettings):
    """PhotoDetective's configuration. See the README's settings table for every variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    backend: BackendChoice = Field(
        "auto",
        description="Recognizer: auto (Rekognition when AWS credentials are found, else local), rekognition, "
        "local (embedded, offline), or none.",
    )
    features: Annotated[
        frozenset[Feature],
        NoDecode,
        Field(
            description="Analyses run by default, comma separated; `describe` is added to the default "
            "when a describer is configured."
        ),
    ] = DEFAULT_FEATURES
    max_input_bytes: int = Field(25_000_000, ge=1_000, description="Largest photo file accepted, in bytes.")
    max_pixels: int = Field(100_000_000, ge=10_000, description="Largest photo accepted, in pixels.")
    min_side: int = Field(80, ge=1, description="Smallest accepted width or height, in pixels.")
    max_side: int = Field(
        1920, ge=80, le=10_000, description="Long side of the image sent to the recognizer, in pixels."
    )
    jpeg_quality: int = Field(85, ge=30, le=95, description="JPEG quality of prepared and annotated images.")
    rekognition_endpoint_url: str | None = Field(
        None, description="Override the Rekognition endpoint (e.g. a VPC endpoint)."
    )
    rekognition_region: str | None = Field(None, description="AWS region; default: the standard AWS chain.")
    rekognition_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per call (retry mode standard)."
    )
    rekognition_connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect to Rekognition.")
    rekognition_read_timeout: float = Field(
        20.0, gt=0, description="Seconds to wait for one Rekognition answer."
    )
    rekognition_min_confidence: float = Field(
        55.0, ge=0, le=100, description="Lowest label confidence (percent) Rekognition reports."
    )
    rekognition_tps: float = Field(
        5.0,
        ge=0,
        description=(
            "Rekognition calls per second per API, shared by every worker (in Redis, or a SQLite file on one "
            "host), so replicas together stay under the account's quota; 0 = no shared limit."
        ),
    )
    rekognition_celebrities: bool = Field(
        False, description="Allow the billed RecognizeCelebrities call (feature 'celebrities')."
    )
    models_dir: Path | None = Field(
        None,
        description="Local recognizer's model folder (default: share/photodetective/models in the venv).",
    )
    local_moderation: bool = Field(
        True, description="Run the local recognizer's nudity check (open_nsfw, BSD-2-Clause weights)."
    )
    show_location_cli: bool = Field(
        True, description="Show GPS coordinates and a map link in the CLI summary."
    )
    location_in_private: bool = Field(
        True, description="Show a photo's GPS position (map link) in one-to-one chats."
    )
    location_in_groups: bool = Field(
        False, description="Show a photo's GPS position in groups and channels (otherwise only a note)."
    )
    http_host: str = Field(
        "127.0.0.1",
        description="Address of the HTTP server (webhooks, Slack events, health); 0.0.0.0 in a container.",
    )
    http_port: int = Field(8080, ge=1, le=65535, description="Port of that HTTP server.")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the /metrics listener, apart from the public HTTP port; in a container "
        "0.0.0.0 with the metrics port left unpublished (reachable on the private network only).",
    )
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Port of the /metrics listener (Prometheus); 0 turns it off."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or JSON.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged."
    )
    data_dir: Path = Field(Path("data"), description="Folder for the SQLite files and other state.")
    redis_url: str | None = Field(
        None,
        description="Redis URL for the queue and quotas (several replicas); default: SQLite in data_dir.",
    )
    quota_daily_limit: int = Field(20, ge=0, description="Photos per user per day.")
    quota_max_concurrent: int = Field(
        2, ge=1, description="Photos per user in the queue or in progress at once."
    )
    quota_burst_limit: int = Field(5, ge=1, description="Photos per user within quota_burst_window_s.")
    quota_burst_window_s: float = Field(60.0, gt=0, description="The burst window, in seconds.")
    quota_global_daily_calls: int | None = Field(
        1000,
        ge=0,
        description="Billed recognizer units per day for everyone together (cost guard): one per feature "
        "of each photo on Rekognition (labels and image properties are billed separately), 0 offline; "
        "empty = no cap.",
    )
    quota_timezone: str = Field("UTC", description="Time zone whose midnight starts a new quota day.")
    quota_charge_user_errors: bool = Field(
        False, description="Keep the charge when a photo fails through the user's own bad input."
    )
    admins: Annotated[
        frozenset[str], NoDecode, Field(description="Admin users, e.g. telegram:123,slack:T1:U2.")
    ] = frozenset()
    allowed_chats: Annotated[
        frozenset[str],
        NoDecode,
        Field(description="Chats/workspaces allowed (empty = all), e.g. telegram:-100123."),
    ] = frozenset()
    blocked_chats: Annotated[frozenset[str], NoDecode, Field(description="Chats/workspaces refused.")] = (
        frozenset()
    )
    job_timeout_s: float = Field(120.0, gt=0, description="Longest time one photo may take.")
    job_visibility_timeout_s: float = Field(
        60.0, gt=0, description="A job whose worker stops heart-beating is retried after this long."
    )
    job_max_attempts: int = Field(3, ge=1, description="Attempts before a job is dead-lettered.")
    store_outage_patience_s: float = Field(
        10.0,
        ge=0,
        description="How long a new photo waits out a queue or quota store outage (a Redis restart) "
        "before the user is asked to send it again.",
    )
    worker_concurrency: int = Field(
        2,
        ge=1,
        description="Photos one worker process analyses at once; it takes one job more, whose photo is"
        " downloaded and prepared while they run.",
    )
    worker_processes: int = Field(0, ge=0, description="Processes for image work; 0 = one per CPU core.")
    shutdown_grace_s: float = Field(20.0, ge=0, description="Time in-flight jobs get to finish on shutdown.")
    delivery_horizon_s: float = Field(
        86400.0,
        gt=0,
        description="How long a finished answer is kept and retried while its platform is down; "
        "past it the user gets one apology, is refunded, and the job is a dead letter.",
    )
    delivery_backoff_max_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait between two tries of an undelivered answer (unless the platform asks "
        "for longer): an answer goes out within about this long after its platform recovers.",
    )

    describe_backend: Literal["none", "bedrock", "openai"] = Field(
        "none",
        description="Vision-language model for a caption, tags and questions (feature 'describe'): none, "
        "bedrock (Amazon Bedrock Converse, standard AWS chain) or openai (any OpenAI-compatible "
        "/v1/chat/completions server, e.g. Ollama). none sends no photo anywhere new.",
    )
    describe_model: str | None = Field(
        None,
        description="The describer's model: a Bedrock model or inference-profile id, or the server's name.",
    )
    describe_url: str | None = Field(
        None,
        description="API base of the openai backend as OpenAI clients take it (http://localhost:11434/v1).",
    )
    describe_api_key: SecretStr | None = Field(
        None, description="API key of the openai backend, sent only to describe_url's host as a Bearer token."
    )
    describe_region: str | None = Field(
        None, description="AWS region for Bedrock; default: the standard AWS chain."
    )
    describe_timeout_s: float = Field(
        20.0, gt=0, description="Longest wait for a description or an answer; past it the reply goes without."
    )
    describe_tps: float = Field(
        1.0,
        ge=0,
        description="Bedrock calls per second shared by every worker (like rekognition_tps); 0 = no limit.",
    )
    describe_explicit_to_hosted: bool = Field(
        False,
        description="Send photos flagged explicit (or not checked) to a hosted describer (bedrock, or "
        "openai at a public address).",
    )
    describe_retention_h: float = Field(
        24.0,
        ge=0,
        description="Hours a photo is kept for questions about it (Telegram, Slack); 0 = no questions.",
    )
    describe_questions_per_hour: int = Field(
        10,
        ge=0,
        description="Questions about photos one user may ask per hour (each also counts as a photo).",
    )

    _sections: dict[type[SettingsSection], SettingsSection] = PrivateAttr(default_factory=dict)

    def with_sections(self, *sections: SettingsSection) -> Settings:
        """A copy that also carries these platforms' own settings (what `load_settings` does from the env)."""
        copy = self.model_copy()
        copy._sections = {**self._sections, **{type(section): section for section in sections}}
        return copy

    def section(self, kind: type[S]) -> S:
        """A platform's own settings, loaded with these at start; its defaults (platform off) if none were.

        Adapters own their settings classes, so bot/ never names a platform's variables; the
        composition root loads every installed section once, next to the application's own.
        """
        found = self._sections.get(kind)
        if found is None:
            return kind.model_construct()
        assert isinstance(found, kind)
        return found

    @model_validator(mode="before")
    @classmethod
    def _describe_by_default(cls, data: object) -> object:
        """With a describer configured and no feature list given, the defaults include `describe`."""
        if isinstance(data, dict) and data.get("features") is None:
            backend = data.get("describe_backend")
            if backend is not None and str(backend).strip().lower() != "none":
                return {**data, "features": DEFAULT_FEATURES | {Feature.DESCRIBE}}
        return data

    @model_validator(mode="after")
    def _describer_complete(self) -> Settings:
        """A describer needs its model (and the openai backend its URL): fail at start, not per photo."""
        if self.describe_backend != "none" and not self.describe_model:
            backend = self.describe_backend
            raise ValueError(f"{ENV_PREFIX}DESCRIBE_MODEL is required with describe_backend={backend}")
        if self.describe_backend == "openai" and not self.describe_url:
            raise ValueError(f"{ENV_PREFIX}DESCRIBE_URL is required with describe_backend=openai")
        return self

    @field_validator("features", mode="before")
    @classmethod
    def _parse_features(cls, value: object) -> object:
        """Accept "labels,faces" from the environment as well as a list."""
        if isinstance(value, str):
            return parse_features(value)
        return value

    @field_validator("admins", "allowed_chats", "blocked_chats", mode="before")
    @classmethod
    def _parse_names(cls, value: object) -> object:
        """Accept "telegram:1, slack:T2" from the environment as well as a list."""
        return comma_separated(value)

    @field_validator("quota_global_daily_calls", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("quota_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value

    def image_limits(self) -> ImageLimits:
        """The limits photo preparation enforces, from these settings."""
        return ImageLimits(
            max_bytes=self.max_input_bytes,
            max_pixels=self.max_pixels,
            min_side=self.min_side,
            max_side=self.max_side,
            jpeg_quality=self.jpeg_quality,
        )


def comma_separated(value: object) -> object:
    """A set from "a, b,c" as environment variables spell lists; anything else passes to pydantic."""
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


def parse_features(text: str) -> frozenset[Feature]:
    """Parse "labels,faces,text" (or "none", or "all") into features, naming any unknown one."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words in (["none"], []):
        return frozenset()
    if words == ["all"]:
        return frozenset(Feature) - {Feature.CELEBRITIES}
    unknown = [w for w in words if w not in {f.value for f in Feature}]
    if unknown:
        choices = ", ".join(f.value for f in Feature)
        raise ValueError(f"unknown feature {', '.join(unknown)} (choose from {choices}, all or none)")
    return frozenset(Feature(w) for w in words)


def load_settings(
    env_file: Path | None = Path(".env"), sections: Sequence[type[SettingsSection]] | None = None
) -> Settings:
    """Read and validate every setting once at start; bad values raise SettingsError naming each variable.

    `sections` defaults to every installed adapter's settings; all problems are reported together.
    """
    problems: list[str] = []
    settings = _validated(Settings, env_file, problems)
    loaded = [
        _validated(kind, env_file, problems)
        for kind in (installed_sections() if sections is None else sections)
    ]
    if problems or settings is None:
        raise SettingsError("Invalid setting(s):\n  " + "\n  ".join(problems))
    return settings.with_sections(*(section for section in loaded if section is not None))


def _validated(kind: type[B], env_file: Path | None, problems: list[str]) -> B | None:
    prefix = str(kind.model_config.get("env_prefix", ""))
    try:
        return kind(_env_file=env_file)
    except ValidationError as exc:
        for error in exc.errors():
            name = prefix + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
    except SourceError as exc:
        # pydantic-settings could not even parse a value; its message names the field, not the variable.
        match = re.search(r'field "(\w+)"', str(exc))
        problems.append(f"{prefix + match.group(1).upper() if match else 'a setting'}: could not be parsed")
    return None
