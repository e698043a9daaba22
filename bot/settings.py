"""All settings, read once at start from the environment and a `.env` file, and validated there.

Every field is an environment variable named `PHOTODETECTIVE_<FIELD>` (upper case). AWS credentials
and region are *not* here: boto3 reads them from the standard chain (env, ~/.aws, instance role),
so operators configure Rekognition the way they configure every other AWS tool.

The settings object is built in the composition root (`bot.wiring`) and its values are handed to
the parts that need them; nothing deep in the code reads settings on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.limits import ImageLimits
from core.models import DEFAULT_FEATURES, Feature

ENV_PREFIX = "PHOTODETECTIVE_"

BackendChoice = Literal["auto", "rekognition", "none"]


class SettingsError(Exception):
    """A setting is wrong; the message names the environment variable so the operator can fix it."""


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
        description="Recognizer: auto (Rekognition when AWS credentials are found), rekognition, or none.",
    )
    features: Annotated[
        frozenset[Feature], Field(description="Analyses run by default, comma separated.")
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
    rekognition_celebrities: bool = Field(
        False, description="Allow the billed RecognizeCelebrities call (feature 'celebrities')."
    )
    show_location_cli: bool = Field(
        True, description="Show GPS coordinates and a map link in the CLI summary."
    )
    data_dir: Path = Field(Path("data"), description="Folder for the SQLite files and other state.")

    @field_validator("features", mode="before")
    @classmethod
    def _parse_features(cls, value: object) -> object:
        """Accept "labels,faces" from the environment as well as a list."""
        if isinstance(value, str):
            return parse_features(value)
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


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """Read and validate the settings once at start; a bad value raises SettingsError naming its variable."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("Invalid setting(s):\n  " + "\n  ".join(problems)) from None
