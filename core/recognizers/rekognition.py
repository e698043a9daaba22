"""Amazon Rekognition as a `Recognizer`: one API request per operation, run concurrently.

Each feature maps to one Rekognition operation, except labels and image properties, which share
one DetectLabels request (its `Features` list asks for both). Sharing saves a round trip, not
money: AWS bills every feature per image, and Image Properties is billed on top of the labels
(its own price, no free tier). So a photo with every default feature is 4 requests and 4 billed
units, and adding properties makes 5 units in the same 4 requests (docs/recognizers/
rekognition-costs.md; `bot.service.billed_calls` counts units for the daily cost cap). The calls
for one photo run at the same time on a small thread pool, because boto3 is synchronous but its
clients are thread-safe, so a photo costs the latency of its slowest call rather than their sum.

A failing call marks only its own features as failed (see `rekognition_errors`); the recognizer
raises only when every requested feature failed for one backend-wide reason. Credentials and the
region come from the standard AWS chain and are never written into messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from core.analysis_types import (
    Analysis,
    Celebrity,
    DetectedObject,
    ErrorKind,
    Face,
    Feature,
    FeatureError,
    ImageProperties,
    Label,
    ModerationLabel,
    PreparedPhoto,
    TextLine,
)
from core.errors import RecognizerError, RecognizerThrottled, RecognizerUnavailable, TooLarge, TooSmall
from core.recognizers import rekognition_parse as parse
from core.recognizers.base import CallGate, OpenGate
from core.recognizers.rekognition_errors import backend_failure, classify, error_code, http_status

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

logger = logging.getLogger(__name__)

BASE_CAPABILITIES: frozenset[Feature] = frozenset(
    {Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION, Feature.PROPERTIES}
)
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Rekognition's limit for image bytes sent in the request
MIN_IMAGE_SIDE = 80  # Rekognition's smallest accepted width or height, in pixels
DEFAULT_MIN_CONFIDENCE = 55.0  # Rekognition's own default for DetectLabels, in percent
DEFAULT_MAX_LABELS = 25
# At most this many requests run for one photo: DetectLabels (labels and properties), DetectFaces,
# DetectText, DetectModerationLabels and RecognizeCelebrities (up to 6 billed units: see above).
CALLS_PER_PHOTO = 5

_METHODS: Mapping[str, str] = {
    "DetectLabels": "detect_labels",
    "DetectFaces": "detect_faces",
    "DetectText": "detect_text",
    "DetectModerationLabels": "detect_moderation_labels",
    "RecognizeCelebrities": "recognize_celebrities",
}


@dataclass(frozen=True)
class PlannedCall:
    """One Rekognition request: the operation, the features it answers, and its parameters sans image."""

    operation: str
    features: frozenset[Feature]
    params: Mapping[str, Any]


def plan_calls(
    features: frozenset[Feature],
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_labels: int = DEFAULT_MAX_LABELS,
) -> tuple[PlannedCall, ...]:
    """The requests that answer `features`, one per operation, in a stable order.

    Labels and properties share DetectLabels: GENERAL_LABELS with the label thresholds when labels
    are wanted, IMAGE_PROPERTIES when properties are, and only IMAGE_PROPERTIES (no label limits)
    when properties are all that is asked. One request, but two billed units when both are asked.
    """
    calls: list[PlannedCall] = []
    label_features = features & {Feature.LABELS, Feature.PROPERTIES}
    if label_features:
        params: dict[str, Any] = {}
        kinds: list[str] = []
        if Feature.LABELS in label_features:
            kinds.append("GENERAL_LABELS")
            params.update(MaxLabels=max_labels, MinConfidence=min_confidence)
        if Feature.PROPERTIES in label_features:
            kinds.append("IMAGE_PROPERTIES")
        params["Features"] = kinds
        calls.append(PlannedCall("DetectLabels", label_features, params))
    if Feature.FACES in features:
        calls.append(PlannedCall("DetectFaces", frozenset({Feature.FACES}), {"Attributes": ["ALL"]}))
    if Feature.TEXT in features:
        calls.append(PlannedCall("DetectText", frozenset({Feature.TEXT}), {}))
    if Feature.MODERATION in features:
        calls.append(PlannedCall("DetectModerationLabels", frozenset({Feature.MODERATION}), {}))
    if Feature.CELEBRITIES in features:
        calls.append(PlannedCall("RecognizeCelebrities", frozenset({Feature.CELEBRITIES}), {}))
    return tuple(calls)


@dataclass
class _Findings:
    """What one call contributed; each field is written by exactly one operation."""

    labels: tuple[Label, ...] = ()
    objects: tuple[DetectedObject, ...] = ()
    faces: tuple[Face, ...] = ()
    text: tuple[TextLine, ...] = ()
    moderation: tuple[ModerationLabel, ...] = ()
    celebrities: tuple[Celebrity, ...] = ()
    properties: ImageProperties | None = None
    errors: list[FeatureError] = field(default_factory=list)


class RekognitionRecognizer:
    """Amazon Rekognition behind the `Recognizer` protocol.

    Every argument is a plain value the application fills from its settings. `region=None` and
    `endpoint_url=None` use the standard AWS chain and endpoint. `min_confidence` (percent, like
    Rekognition) and `max_labels` limit DetectLabels. `concurrent_photos` sizes the thread pool and
    HTTP connection pool so that many photos analysed at once never queue for a connection.
    `gate` is the account-wide rate limit every call waits for (`core.recognizers.base.CallGate`;
    default: none), so many workers together stay under the account's TPS quota.
    `client` replaces the boto3 client (tests pass one wrapped in a botocore Stubber); the timeout
    and retry arguments then do not apply, since they configure the client this class builds.
    """

    name = "rekognition"

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        max_labels: int = DEFAULT_MAX_LABELS,
        celebrities: bool = False,
        concurrent_photos: int = 4,
        gate: CallGate | None = None,
        client: RekognitionClient | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 0 <= min_confidence <= 100:
            raise ValueError("min_confidence is a percentage (0..100)")
        if max_labels < 1 or concurrent_photos < 1:
            raise ValueError("max_labels and concurrent_photos must be at least 1")
        self._capabilities = BASE_CAPABILITIES | ({Feature.CELEBRITIES} if celebrities else set())
        self._min_confidence = float(min_confidence)
        self._max_labels = max_labels
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        workers = CALLS_PER_PHOTO * concurrent_photos
        self._owns_client = client is None
        if client is None:
            client = _make_client(
                region=region,
                endpoint_url=endpoint_url,
                config=Config(
                    # total_max_attempts counts the first try; botocore's `max_attempts` key counts only
                    # the retries after it, so max_attempts=3 there would make 4 billed attempts.
                    retries={"mode": "standard", "total_max_attempts": max_attempts},
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    max_pool_connections=workers,
                    user_agent_extra="photodetective",
                ),
            )
        self._client = client
        # Requests sent per call, counted in the calling thread (boto3 is synchronous: each call's
        # attempts are sent from the thread that made it), so a failure can say how many there were.
        self._sent = threading.local()
        client.meta.events.register("before-send.rekognition", self._count_attempt)
        self._gate: CallGate = gate or OpenGate()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rekognition")
        self._closed = False

    @property
    def capabilities(self) -> frozenset[Feature]:
        """Labels, faces, text, moderation and image properties; celebrities only when enabled."""
        return self._capabilities

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Run the requested features this backend has, concurrently, one request per operation.

        Raises TooLarge/TooSmall before any (billed) call when the JPEG is outside Rekognition's
        limits, and the error chosen by `rekognition_errors.backend_failure` when every feature
        failed for one backend-wide reason; otherwise failures are listed in `Analysis.errors`.
        """
        if self._closed:
            raise RecognizerUnavailable("The Amazon Rekognition backend has been shut down.")
        wanted = frozenset(features) & self._capabilities
        calls = plan_calls(wanted, min_confidence=self._min_confidence, max_labels=self._max_labels)
        if not calls:
            return Analysis(backend=self.name, features=frozenset())
        _check_limits(photo)
        loop = asyncio.get_running_loop()
        outcomes = await asyncio.gather(
            *(loop.run_in_executor(self._executor, self._run, call, photo.jpeg) for call in calls)
        )
        found = _Findings()
        for outcome in outcomes:
            found.labels = found.labels or outcome.labels
            found.objects = found.objects or outcome.objects
            found.faces = found.faces or outcome.faces
            found.text = found.text or outcome.text
            found.moderation = found.moderation or outcome.moderation
            found.celebrities = found.celebrities or outcome.celebrities
            found.properties = found.properties or outcome.properties
            found.errors.extend(outcome.errors)
        failure = backend_failure(wanted, found.errors)
        if failure is not None:
            raise failure
        order = list(Feature)
        return Analysis(
            backend=self.name,
            features=wanted,
            labels=found.labels,
            objects=found.objects,
            faces=found.faces,
            text=found.text,
            moderation=found.moderation,
            celebrities=found.celebrities,
            properties=found.properties,
            errors=tuple(sorted(found.errors, key=lambda e: order.index(e.feature))),
        )

    def close(self) -> None:
        """Stop the worker threads and, if this object built the client, close its connections.

        Calls already queued still run (their analyses finish with whatever they get), so an
        analysis in progress never sees a bare cancellation; new analyses are refused.
        """
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False)
        if self._owns_client:
            self._client.close()

    def _count_attempt(self, **_: Any) -> None:
        """botocore's before-send hook: one more request of the current thread's call went out."""
        self._sent.attempts = getattr(self._sent, "attempts", 0) + 1

    def _run(self, call: PlannedCall, jpeg: bytes) -> _Findings:
        """Make one call in a worker thread and turn its answer (or its failure) into findings."""
        found = _Findings()
        method = getattr(self._client, _METHODS[call.operation])
        try:
            self._gate.wait_turn(call.operation)
        except RecognizerThrottled as error:
            logger.warning("Rekognition %s not called: %s", call.operation, error)
            found.errors.extend(
                FeatureError(f, ErrorKind.THROTTLED, str(error)) for f in _ordered(call.features)
            )
            return found
        self._sent.attempts = 0
        started = time.monotonic()
        try:
            response: Mapping[str, Any] = method(Image={"Bytes": jpeg}, **call.params)
        except Exception as error:  # a failed call must not take the other features down with it
            kind, message = classify(
                error,
                call.operation,
                read_timeout=self._read_timeout,
                connect_timeout=self._connect_timeout,
                attempts=self._sent.attempts,
                elapsed=time.monotonic() - started,
            )
            _log_failure(call, kind, error)
            found.errors.extend(FeatureError(f, kind, message) for f in _ordered(call.features))
            return found
        for feature in _ordered(call.features):
            try:
                _parse_into(found, feature, response)
            except Exception:
                logger.exception("Could not read the Rekognition %s answer for %s", call.operation, feature)
                message = "Amazon Rekognition sent an answer PhotoDetective could not read."
                found.errors.append(FeatureError(feature, ErrorKind.ERROR, message))
        return found


def aws_credentials_available() -> bool:
    """Whether the standard AWS chain is configured with credentials, answered without any network call.

    Used to pick a backend at start-up, so it must be quick and must not hang: the chain's network
    sources are judged by their configuration instead of being contacted. The ECS/EKS container
    source counts when its environment variables are set, `credential_process` and `role_arn`
    profiles count when present (the process is not run, the role not assumed). The EC2 instance
    metadata service is never asked, since on any other machine that lookup waits for a timeout:
    on EC2 with only an instance role this returns False, and the operator chooses the backend
    explicitly. SSO, web identity and login sources are deferred by botocore and count when set up.
    True means "configured", not "valid": bad keys still fail on the first call, as ACCESS_DENIED.
    """
    try:
        session = botocore.session.Session()
        if any(os.environ.get(name) for name in _CONTAINER_VARIABLES):
            return True
        profile_name = session.get_config_variable("profile") or "default"
        profile = session.full_config.get("profiles", {}).get(profile_name, {})
        if isinstance(profile, Mapping) and ("credential_process" in profile or "role_arn" in profile):
            return True
        resolver = session.get_component("credential_provider")
        for method in ("iam-role", "container-role", "custom-process", "assume-role"):
            resolver.remove(method)
        return resolver.load_credentials() is not None
    except (BotoCoreError, OSError, ValueError, KeyError):
        return False


_CONTAINER_VARIABLES = ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


def _make_client(*, region: str | None, endpoint_url: str | None, config: Config) -> RekognitionClient:
    """Build the boto3 client, turning configuration mistakes into one clear start-up error."""
    try:
        return boto3.session.Session().client(
            "rekognition", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError:
        raise RecognizerError(
            "No AWS region is configured for Amazon Rekognition: set the region setting, "
            "AWS_REGION or AWS_DEFAULT_REGION."
        ) from None
    except ValueError as error:
        raise RecognizerError(f"The Amazon Rekognition endpoint or region is not valid: {error}") from None
    except BotoCoreError as error:
        raise RecognizerError(f"Could not set up Amazon Rekognition ({type(error).__name__}).") from None


def _check_limits(photo: PreparedPhoto) -> None:
    """Refuse locally what Rekognition would refuse anyway, saving the upload and the round trip."""
    if len(photo.jpeg) > MAX_IMAGE_BYTES:
        size = len(photo.jpeg) / 1024 / 1024
        raise TooLarge(
            "too_many_bytes",
            f"The prepared image is {size:.1f} MB; Amazon Rekognition accepts at most 5 MB. "
            "Lower the size or quality of the image sent to the recognizer.",
        )
    if min(photo.width, photo.height) < MIN_IMAGE_SIDE:
        raise TooSmall(
            "too_small",
            f"The photo is {photo.width}x{photo.height} pixels; Amazon Rekognition needs at least "
            f"{MIN_IMAGE_SIDE} pixels on each side.",
        )


def _parse_into(found: _Findings, feature: Feature, response: Mapping[str, Any]) -> None:
    if feature is Feature.LABELS:
        found.labels, found.objects = parse.parse_labels(response)
    elif feature is Feature.PROPERTIES:
        found.properties = parse.parse_properties(response)
    elif feature is Feature.FACES:
        found.faces = parse.parse_faces(response)
    elif feature is Feature.TEXT:
        found.text = parse.parse_text(response)
    elif feature is Feature.MODERATION:
        found.moderation = parse.parse_moderation(response)
    elif feature is Feature.CELEBRITIES:
        found.celebrities = parse.parse_celebrities(response)


def _ordered(features: frozenset[Feature]) -> list[Feature]:
    return [f for f in Feature if f in features]


def _log_failure(call: PlannedCall, kind: ErrorKind, error: Exception) -> None:
    """Log what an operator needs (operation, kind, code, status, request id), never the service text."""
    if isinstance(error, ClientError):
        request_id = error.response.get("ResponseMetadata", {}).get("RequestId", "")
        logger.warning(
            "Rekognition %s failed: %s (code %s, HTTP %s, request id %s)",
            call.operation,
            kind.value,
            error_code(error),
            http_status(error),
            str(request_id)[:64],
        )
    elif isinstance(error, BotoCoreError):
        logger.warning("Rekognition %s failed: %s (%s)", call.operation, kind.value, type(error).__name__)
    else:
        # Not botocore's: a bug on our side or in a library, worth its traceback.
        logger.error("Rekognition %s failed unexpectedly", call.operation, exc_info=error)
