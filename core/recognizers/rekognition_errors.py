"""What a failed Rekognition call means, in words a chat user can read.

boto3 raises two families: `ClientError` (the service answered with an error code) and
`BotoCoreError` (no usable answer: timeouts, refused connections, missing credentials). Each is
sorted into an `ErrorKind` so the application knows whose fault it was, with a message built only
from fixed text, the error code and numbers: service messages are never repeated, because some AWS
auth errors echo parts of the signed request, and credentials must never reach a chat or a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.analysis_types import ErrorKind, Feature, FeatureError
from core.errors import (
    PhotoDetectiveError,
    PhotoRejected,
    RecognizerError,
    RecognizerThrottled,
    RecognizerUnavailable,
)

SERVICE = "Amazon Rekognition"

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)
INVALID_IMAGE_CODES = frozenset(
    {"InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"}
)
ACCESS_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)
UNAVAILABLE_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"})

_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.-]")

# Kinds that say "the backend as a whole is down for us", grouped by the error they raise when
# every requested feature failed with them. TIMEOUT counts as UNAVAILABLE: both mean no answer.
_BACKEND_WIDE: dict[ErrorKind, ErrorKind] = {
    ErrorKind.THROTTLED: ErrorKind.THROTTLED,
    ErrorKind.UNAVAILABLE: ErrorKind.UNAVAILABLE,
    ErrorKind.TIMEOUT: ErrorKind.UNAVAILABLE,
    ErrorKind.ACCESS_DENIED: ErrorKind.ACCESS_DENIED,
    ErrorKind.INVALID_IMAGE: ErrorKind.INVALID_IMAGE,
}


def classify(
    error: Exception,
    operation: str,
    *,
    read_timeout: float,
    connect_timeout: float,
    attempts: int = 1,
    elapsed: float = 0.0,
) -> tuple[ErrorKind, str]:
    """Sort one failed call into an ErrorKind with a message that is safe to show to anyone.

    `operation` is the API name ("DetectFaces"), used to name the IAM permission that is missing.
    Retries have already happened inside botocore (retry mode "standard"), so whatever arrives here
    is what was left after them: `attempts` is how many requests were sent and `elapsed` how long
    the call took in all, so a timeout says what really happened (three attempts of 20 s hold a
    photo for a minute, not 20 s).
    """
    if isinstance(error, ClientError):
        return _classify_client_error(error, operation)
    if isinstance(error, ReadTimeoutError):
        return ErrorKind.TIMEOUT, _waited(f"{SERVICE} did not answer", read_timeout, attempts, elapsed)
    if isinstance(error, ConnectTimeoutError):
        return ErrorKind.TIMEOUT, _waited(
            f"Could not connect to {SERVICE}", connect_timeout, attempts, elapsed
        )
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(error, ConnectionClosedError):
        return ErrorKind.UNAVAILABLE, f"The connection to {SERVICE} closed before it answered{tries}."
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return ErrorKind.UNAVAILABLE, f"Could not connect to {SERVICE} (network error{tries})."
    if isinstance(error, NoCredentialsError):
        return ErrorKind.ACCESS_DENIED, (
            f"No AWS credentials were found for {SERVICE}: "
            "set them in the environment, in ~/.aws or as an instance role."
        )
    if isinstance(error, PartialCredentialsError):
        return ErrorKind.ACCESS_DENIED, "The AWS credentials are incomplete (a key or secret is missing)."
    if isinstance(error, BotoCoreError):
        return ErrorKind.ERROR, f"The AWS client failed while calling {SERVICE} ({type(error).__name__})."
    return (
        ErrorKind.ERROR,
        f"{SERVICE} sent an answer PhotoDetective could not read ({type(error).__name__}).",
    )


def _waited(what: str, limit: float, attempts: int, elapsed: float) -> str:
    """ "... within 20 s." for one attempt; "...: 3 attempts waited 20 s each, 61 s in all." after retries."""
    if attempts <= 1:
        return f"{what} within {limit:g} s."
    total = f"{elapsed:.0f}" if elapsed >= 10 else f"{elapsed:.1f}"
    return f"{what}: {attempts} attempts waited {limit:g} s each, {total} s in all."


def error_code(error: ClientError) -> str:
    """The service's error code, reduced to characters that are safe in any message or log line."""
    raw = error.response.get("Error", {}).get("Code", "")
    return _SAFE_CODE.sub("", str(raw))[:64] or "UnknownError"


def http_status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _attempts(error: ClientError) -> int:
    retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return (retries if isinstance(retries, int) else 0) + 1


def _classify_client_error(error: ClientError, operation: str) -> tuple[ErrorKind, str]:
    code = error_code(error)
    status = http_status(error)
    tries = _attempts(error)
    after = f" after {tries} attempts" if tries > 1 else ""
    if code in THROTTLING_CODES or status == 429:
        return ErrorKind.THROTTLED, (
            f"{SERVICE} is rate-limiting this account ({code}) and still refused{after}; "
            "try again in a minute."
        )
    if code == "ImageTooLargeException":
        return ErrorKind.INVALID_IMAGE, f"{SERVICE} refused the image as too large (it accepts at most 5 MB)."
    if code == "InvalidImageFormatException":
        return ErrorKind.INVALID_IMAGE, f"{SERVICE} could not read the image (it accepts JPEG and PNG only)."
    if code in INVALID_IMAGE_CODES:
        return ErrorKind.INVALID_IMAGE, (
            f"{SERVICE} refused the image ({code}); usually it is too small (under 80 pixels on a side) "
            "or too large in pixels."
        )
    if code in ("AccessDeniedException", "AccessDenied"):
        return ErrorKind.ACCESS_DENIED, (
            f"{SERVICE} denied access ({code}): "
            f"the AWS identity lacks the rekognition:{operation} permission."
        )
    if code in ACCESS_CODES or status == 403:
        return ErrorKind.ACCESS_DENIED, (
            f"{SERVICE} did not accept the AWS credentials ({code}): check the access key, secret and token."
        )
    if code in UNAVAILABLE_CODES or (status is not None and status >= 500):
        status_text = f", HTTP {status}" if status is not None else ""
        return (
            ErrorKind.UNAVAILABLE,
            f"{SERVICE} had a server error ({code}{status_text}) and still failed{after}.",
        )
    return ErrorKind.ERROR, f"{SERVICE} returned an unexpected error ({code})."


def backend_failure(
    requested: Iterable[Feature], errors: Iterable[FeatureError]
) -> PhotoDetectiveError | None:
    """The error to raise when nothing came back for one backend-wide reason, else None.

    Precisely: when every requested feature failed, and all their kinds fall in the same group
    (THROTTLED; UNAVAILABLE or TIMEOUT; ACCESS_DENIED; INVALID_IMAGE), the matching error is returned:
    RecognizerThrottled, RecognizerUnavailable, RecognizerError, or PhotoRejected("invalid_image")
    since an image Rekognition cannot read is the input's fault. Anything else (some features
    worked, reasons differ, or a feature failed with plain ERROR) stays per feature in
    `Analysis.errors`. The message is the first failure's, in feature order, which is already
    worded for people.
    """
    wanted = frozenset(requested)
    failures = sorted(errors, key=lambda e: list(Feature).index(e.feature))
    if not wanted or {e.feature for e in failures} != wanted:
        return None
    groups = {_BACKEND_WIDE.get(e.kind) for e in failures}
    if len(groups) != 1:
        return None
    group = groups.pop()
    message = failures[0].message
    if group is ErrorKind.THROTTLED:
        return RecognizerThrottled(message)
    if group is ErrorKind.UNAVAILABLE:
        return RecognizerUnavailable(message)
    if group is ErrorKind.ACCESS_DENIED:
        return RecognizerError(message)
    if group is ErrorKind.INVALID_IMAGE:
        return PhotoRejected("invalid_image", message)
    return None
