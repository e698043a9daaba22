"""A local stand-in for Amazon Rekognition that a real boto3 client can talk to over HTTP.

It speaks the service's JSON 1.1 protocol on 127.0.0.1 (`POST /`, the operation in
`X-Amz-Target: RekognitionService.<Operation>`, base64 `Image.Bytes` in the JSON body, answers as
`application/x-amz-json-1.1`, errors as `{"__type": ..., "message": ...}`), so retries, signing,
timeouts and connection pooling are exercised for real. It refuses what the real service refuses
where it matters to us (over 5 MB, not JPEG/PNG, under 80 px), records every request, and can be
scripted to fail or to answer slowly. Like an AWS account it can also enforce a TPS limit per
operation (`limit_tps`: calls past it in any one-second window get ThrottlingException, as the
service answers when an account exceeds its quota) and answer after a random, realistic latency
(`set_latency`), so load tests see the throttling and overlap a real account would give.

The server runs on its own event loop in a background thread (`tests.fakes.background`), so sync tests,
async tests and subprocess-based CLI tests can all use it the same way:

    with FakeRekognition() as fake:
        client = boto3.client("rekognition", endpoint_url=fake.url, region_name="us-east-1", ...)
        fake.fail("ThrottlingException", operation="DetectFaces", times=2)
        fake.set_delay(0.2)
        ...
        assert [r.attempt for r in fake.requests_for("DetectFaces")] == [1, 2, 3]
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import io
import json
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.background import BackgroundServer

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MIN_IMAGE_SIDE = 80
OPERATIONS = ("DetectLabels", "DetectFaces", "DetectText", "DetectModerationLabels", "RecognizeCelebrities")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it. Times are `time.monotonic()` values of this process."""

    operation: str
    body: dict[str, Any]  # the parsed JSON body; Image.Bytes is left base64-encoded
    image: bytes | None  # the decoded Image.Bytes
    attempt: int | None  # from `amz-sdk-request: attempt=N; max=M`
    max_attempts: int | None
    authorization: str | None  # the raw Authorization header
    started: float
    ended: float
    status: int
    error_type: str | None  # the `__type` answered, None on success

    @property
    def signed(self) -> bool:
        """Whether the request carried an AWS Signature Version 4 Authorization header."""
        return bool(self.authorization and self.authorization.startswith("AWS4-HMAC-SHA256 "))

    @property
    def access_key_id(self) -> str | None:
        """The access key id from the SigV4 credential scope, to check which credentials were used."""
        if not self.signed or self.authorization is None or "Credential=" not in self.authorization:
            return None
        return self.authorization.split("Credential=", 1)[1].split("/", 1)[0]

    @property
    def params(self) -> dict[str, Any]:
        """The request parameters without the image, for pinning exactly what was asked."""
        return {k: v for k, v in self.body.items() if k != "Image"}


@dataclass
class _Failure:
    error_type: str
    operation: str | None
    remaining: int | None  # None: forever
    status: int
    message: str


@dataclass
class _Script:
    failures: list[_Failure] = field(default_factory=list)
    delays: dict[str | None, float] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency: tuple[float, float] | None = None
    tps: dict[str | None, float] = field(default_factory=dict)
    admitted: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))


class FakeRekognition(BackgroundServer):
    """The fake service; use it as a (sync or async) context manager, or call start() and stop()."""

    thread_name = "fake-rekognition"

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._lock = threading.Lock()
        self._script = _Script()
        self._requests: list[RecordedRequest] = []
        self._arrivals: list[tuple[str, int | None]] = []
        self._stopping: asyncio.Event | None = None
        self._random = random.Random(0)

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        error_type: str,
        *,
        operation: str | None = None,
        times: int | None = None,
        status: int = 400,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching calls (all of them when None) with this error.

        `operation=None` matches every operation. `message` may contain "{authorization}", replaced by
        the request's Authorization header, to imitate AWS errors that echo the signed request.
        Rules are tried in the order they were added; a rule with no calls left is skipped.
        """
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        text = message if message is not None else f"Scripted {error_type} from the fake Rekognition"
        with self._lock:
            self._script.failures.append(_Failure(error_type, operation, times, status, text))

    def throttle(self, *, operation: str | None = None, times: int | None = None) -> None:
        """Shorthand: answer ThrottlingException, the error botocore's standard mode retries."""
        self.fail("ThrottlingException", operation=operation, times=times)

    def set_delay(self, seconds: float, *, operation: str | None = None) -> None:
        """Wait this long before answering (one operation, or every operation when None)."""
        with self._lock:
            self._script.delays[operation] = seconds

    def set_latency(self, low: float, high: float, *, seed: int = 0) -> None:
        """Answer every call after a uniform random delay in [low, high] seconds (calls overlap)."""
        if not 0 <= low <= high:
            raise ValueError("need 0 <= low <= high")
        with self._lock:
            self._script.latency = (low, high)
            self._random = random.Random(seed)

    def limit_tps(self, tps: float, *, operation: str | None = None) -> None:
        """Throttle like an account quota: at most `tps` calls of an operation in any one second.

        `operation=None` sets the limit of every operation (each still counted on its own, as
        AWS counts quotas per API). A throttled call is not admitted, so it does not use the quota.
        """
        if tps <= 0:
            raise ValueError("tps must be positive")
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        with self._lock:
            self._script.tps[operation] = tps

    def throttled(self, operation: str | None = None) -> int:
        """How many calls (of one operation, or of all) were answered ThrottlingException."""
        return sum(
            1
            for r in self.requests
            if r.error_type == "ThrottlingException" and operation in (None, r.operation)
        )

    def max_rate(self, operation: str) -> int:
        """The most admitted calls of `operation` that arrived within any one second."""
        times = sorted(
            r.started for r in self.requests_for(operation) if r.error_type != "ThrottlingException"
        )
        most, first = 0, 0
        for last, arrived in enumerate(times):
            while arrived - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    def set_response(self, operation: str, body: dict[str, Any]) -> None:
        """Answer `operation` with this JSON body instead of the canned one."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation}")
        with self._lock:
            self._script.responses[operation] = copy.deepcopy(body)

    def reset(self) -> None:
        """Forget scripted failures, delays, responses and recorded requests."""
        with self._lock:
            self._script = _Script()
            self._requests.clear()
            self._arrivals.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every finished request so far, in the order they were answered."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def attempts_arrived(self, operation: str) -> list[int | None]:
        """The `attempt=N` of every request of `operation` as it arrived, answered yet or not (a
        client that timed out has given up on requests the fake is still holding)."""
        with self._lock:
            return [attempt for name, attempt in self._arrivals if name == operation]

    # -- server ------------------------------------------------------------------------------

    async def _on_start(self) -> None:
        self._stopping = asyncio.Event()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        return app

    async def _on_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def _handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else target
        attempt, max_attempts = _attempt_header(request.headers.get("amz-sdk-request", ""))
        with self._lock:
            self._arrivals.append((operation, attempt))
        authorization = request.headers.get("Authorization")
        raw = await request.read()
        body: dict[str, Any] = {}
        image: bytes | None = None

        status, answer = 200, {}
        try:
            if operation not in OPERATIONS:
                raise _ServiceError("UnknownOperationException", f"Unknown operation {target!r}")
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError:
                raise _ServiceError("SerializationException", "Body is not valid JSON") from None
            if not isinstance(parsed, dict):
                raise _ServiceError("SerializationException", "Body is not a JSON object")
            body = parsed
            image = _image_bytes(body)
            self._admit(operation, started)
            await self._wait(operation)
            self._scripted_failure(operation, authorization)
            _check_image(image)
            answer = self._answer(operation, body)
        except _ServiceError as error:
            status, answer = error.status, {"__type": error.error_type, "message": error.message}
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    operation=operation,
                    body=body,
                    image=image,
                    attempt=attempt,
                    max_attempts=max_attempts,
                    authorization=authorization,
                    started=started,
                    ended=time.monotonic(),
                    status=status,
                    error_type=answer.get("__type") if status != 200 else None,
                )
            )
        return web.Response(
            status=status,
            body=json.dumps(answer).encode(),
            headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _admit(self, operation: str, arrived: float) -> None:
        """Refuse a call past the operation's TPS limit over the last second (sliding window)."""
        with self._lock:
            tps = self._script.tps.get(operation, self._script.tps.get(None))
            if tps is None:
                return
            window = self._script.admitted[operation]
            while window and arrived - window[0] >= 1.0:
                window.popleft()
            if len(window) >= tps:
                raise _ServiceError("ThrottlingException", "Rate exceeded")
            window.append(arrived)

    async def _wait(self, operation: str) -> None:
        with self._lock:
            delay = self._script.delays.get(operation, self._script.delays.get(None, 0.0))
            if self._script.latency is not None:
                delay += self._random.uniform(*self._script.latency)
        if delay > 0 and self._stopping is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def _scripted_failure(self, operation: str, authorization: str | None) -> None:
        with self._lock:
            for rule in self._script.failures:
                if rule.operation not in (None, operation) or rule.remaining == 0:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                message = rule.message.replace("{authorization}", authorization or "")
                raise _ServiceError(rule.error_type, message, rule.status)

    def _answer(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            custom = self._script.responses.get(operation)
        if custom is not None:
            return copy.deepcopy(custom)
        return CANNED[operation](body)


class _ServiceError(Exception):
    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type, self.message, self.status = error_type, message, status


def _attempt_header(value: str) -> tuple[int | None, int | None]:
    """Parse `attempt=2; max=3` (botocore's retry bookkeeping header)."""
    parts = dict(p.strip().split("=", 1) for p in value.split(";") if "=" in p)
    try:
        attempt = int(parts["attempt"]) if "attempt" in parts else None
        most = int(parts["max"]) if "max" in parts else None
    except ValueError:
        return None, None
    return attempt, most


def _image_bytes(body: dict[str, Any]) -> bytes:
    image = body.get("Image")
    if not isinstance(image, dict) or "Bytes" not in image:
        raise _ServiceError("InvalidParameterException", "Request has invalid parameters (only Image.Bytes)")
    try:
        return base64.b64decode(image["Bytes"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise _ServiceError("SerializationException", "Image.Bytes is not valid base64") from None


def _check_image(data: bytes | None) -> None:
    """The service's documented image rules: at most 5 MB, JPEG or PNG, at least 80 px a side."""
    if data is None:
        return
    if len(data) > MAX_IMAGE_BYTES:
        raise _ServiceError("ImageTooLargeException", "Image size is too large.")
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise _ServiceError("InvalidImageFormatException", "Request has invalid image format")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise _ServiceError("InvalidImageFormatException", "Request has invalid image format") from None
    if min(width, height) < MIN_IMAGE_SIDE:
        raise _ServiceError("InvalidParameterException", "Request has invalid parameters")


@contextmanager
def running_fake() -> Iterator[FakeRekognition]:
    """`with running_fake() as fake:`; the shape pytest fixtures yield from."""
    with FakeRekognition() as fake:
        yield fake


# -- canned answers: one adult person, one face, one line of text, as Rekognition shapes them ----

PERSON_BOX = {"Width": 0.42, "Height": 0.88, "Left": 0.29, "Top": 0.1}
FACE_BOX = {"Width": 0.18, "Height": 0.27, "Left": 0.41, "Top": 0.14}
TEXT_BOX = {"Width": 0.36, "Height": 0.06, "Left": 0.05, "Top": 0.9}
TEXT_LINE = "OPEN 24 HOURS"

_LABELS: list[dict[str, Any]] = [
    {
        "Name": "Person",
        "Confidence": 99.2,
        "Instances": [{"BoundingBox": PERSON_BOX, "Confidence": 99.2, "DominantColors": []}],
        "Parents": [],
        "Aliases": [{"Name": "Human"}],
        "Categories": [{"Name": "Person Description"}],
    },
    {
        "Name": "Adult",
        "Confidence": 97.1,
        "Instances": [{"BoundingBox": PERSON_BOX, "Confidence": 97.1, "DominantColors": []}],
        "Parents": [{"Name": "Person"}],
        "Aliases": [],
        "Categories": [{"Name": "Person Description"}],
    },
    {
        "Name": "Face",
        "Confidence": 95.4,
        "Instances": [],
        "Parents": [{"Name": "Head"}, {"Name": "Person"}],
        "Aliases": [],
        "Categories": [{"Name": "Person Description"}],
    },
    {
        "Name": "Text",
        "Confidence": 71.0,
        "Instances": [],
        "Parents": [],
        "Aliases": [],
        "Categories": [{"Name": "Text and Documents"}],
    },
    {
        "Name": "Blackboard",
        "Confidence": 41.5,
        "Instances": [],
        "Parents": [],
        "Aliases": [],
        "Categories": [{"Name": "Furniture and Furnishings"}],
    },
]

_QUALITY = {"Brightness": 62.5, "Sharpness": 86.4, "Contrast": 70.2}
_COLORS = [
    {
        "Red": 35,
        "Green": 39,
        "Blue": 42,
        "HexCode": "#23272a",
        "CSSColor": "darkslategrey",
        "SimplifiedColor": "black",
        "PixelPercent": 41.3,
    },
    {
        "Red": 210,
        "Green": 180,
        "Blue": 140,
        "HexCode": "#d2b48c",
        "CSSColor": "tan",
        "SimplifiedColor": "brown",
        "PixelPercent": 22.8,
    },
]

_LANDMARK_NAMES = ("eyeLeft", "eyeRight", "mouthLeft", "mouthRight", "nose")


def _face(all_attributes: bool) -> dict[str, Any]:
    face: dict[str, Any] = {
        "BoundingBox": FACE_BOX,
        "Confidence": 99.9,
        "Landmarks": [
            {"Type": name, "X": 0.45 + 0.02 * i, "Y": 0.22 + 0.02 * i}
            for i, name in enumerate(_LANDMARK_NAMES)
        ],
        "Pose": {"Roll": -2.1, "Yaw": 8.4, "Pitch": 3.3},
        "Quality": {"Brightness": 71.0, "Sharpness": 89.9},
    }
    if all_attributes:
        face.update(
            {
                "AgeRange": {"Low": 26, "High": 34},
                "Smile": {"Value": True, "Confidence": 96.0},
                "Eyeglasses": {"Value": False, "Confidence": 98.0},
                "Sunglasses": {"Value": False, "Confidence": 99.0},
                "Gender": {"Value": "Female", "Confidence": 99.0},
                "Beard": {"Value": False, "Confidence": 95.0},
                "Mustache": {"Value": False, "Confidence": 97.0},
                "EyesOpen": {"Value": True, "Confidence": 98.0},
                "MouthOpen": {"Value": True, "Confidence": 80.0},
                "Emotions": [
                    {"Type": "CALM", "Confidence": 3.1},
                    {"Type": "HAPPY", "Confidence": 94.2},
                    {"Type": "SURPRISED", "Confidence": 6.3},
                ],
                "FaceOccluded": {"Value": False, "Confidence": 99.0},
                "EyeDirection": {"Yaw": 1.2, "Pitch": -3.0, "Confidence": 99.0},
            }
        )
    return face


def _detect_labels(body: dict[str, Any]) -> dict[str, Any]:
    features = body.get("Features") or ["GENERAL_LABELS"]
    answer: dict[str, Any] = {"Labels": [], "LabelModelVersion": "3.0"}
    if "GENERAL_LABELS" in features:
        least = float(body.get("MinConfidence", 55.0))
        most = int(body.get("MaxLabels", 1000))
        answer["Labels"] = [copy.deepcopy(label) for label in _LABELS if label["Confidence"] >= least][:most]
    if "IMAGE_PROPERTIES" in features:
        answer["ImageProperties"] = {
            "Quality": dict(_QUALITY),
            "DominantColors": copy.deepcopy(_COLORS),
            "Foreground": {"Quality": {"Brightness": 70.1, "Sharpness": 90.0}, "DominantColors": _COLORS[1:]},
            "Background": {"Quality": {"Brightness": 55.0, "Sharpness": 60.3}, "DominantColors": _COLORS[:1]},
        }
    return answer


def _detect_faces(body: dict[str, Any]) -> dict[str, Any]:
    attributes = body.get("Attributes") or ["DEFAULT"]
    return {"FaceDetails": [_face("ALL" in attributes)]}


def _detect_text(body: dict[str, Any]) -> dict[str, Any]:
    words = TEXT_LINE.split()
    detections: list[dict[str, Any]] = [
        {
            "DetectedText": TEXT_LINE,
            "Type": "LINE",
            "Id": 0,
            "Confidence": 98.6,
            "Geometry": {"BoundingBox": TEXT_BOX, "Polygon": _polygon(TEXT_BOX)},
        }
    ]
    width = TEXT_BOX["Width"] / len(words)
    for i, word in enumerate(words):
        box = dict(TEXT_BOX, Width=width, Left=TEXT_BOX["Left"] + i * width)
        detections.append(
            {
                "DetectedText": word,
                "Type": "WORD",
                "Id": i + 1,
                "ParentId": 0,
                "Confidence": 98.0,
                "Geometry": {"BoundingBox": box, "Polygon": _polygon(box)},
            }
        )
    return {"TextDetections": detections, "TextModelVersion": "3.0"}


def _detect_moderation_labels(body: dict[str, Any]) -> dict[str, Any]:
    least = float(body.get("MinConfidence", 50.0))
    labels: list[dict[str, Any]] = [
        {"Confidence": 81.0, "Name": "Alcohol", "ParentName": "", "TaxonomyLevel": 1},
        {"Confidence": 81.0, "Name": "Alcoholic Beverages", "ParentName": "Alcohol", "TaxonomyLevel": 2},
    ]
    return {
        "ModerationLabels": [label for label in labels if label["Confidence"] >= least],
        "ModerationModelVersion": "7.0",
        "ContentTypes": [],
    }


def _recognize_celebrities(body: dict[str, Any]) -> dict[str, Any]:
    face = _face(False)
    face["Emotions"] = [{"Type": "HAPPY", "Confidence": 90.0}]
    face["Smile"] = {"Value": True, "Confidence": 90.0}
    return {
        "CelebrityFaces": [
            {
                "Urls": ["www.example.org/people/ada-example"],
                "Name": "Ada Example",
                "Id": "3Ir0du6",
                "Face": face,
                "MatchConfidence": 98.0,
                "KnownGender": {"Type": "Female"},
            }
        ],
        "UnrecognizedFaces": [],
    }


def _polygon(box: dict[str, float]) -> list[dict[str, float]]:
    left, top, width, height = box["Left"], box["Top"], box["Width"], box["Height"]
    return [
        {"X": left, "Y": top},
        {"X": left + width, "Y": top},
        {"X": left + width, "Y": top + height},
        {"X": left, "Y": top + height},
    ]


CANNED = {
    "DetectLabels": _detect_labels,
    "DetectFaces": _detect_faces,
    "DetectText": _detect_text,
    "DetectModerationLabels": _detect_moderation_labels,
    "RecognizeCelebrities": _recognize_celebrities,
}
