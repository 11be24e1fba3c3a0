"""Telling AWS errors apart: worth retrying (throttling, outages, the network) or not.

Shared by the sources that call S3 and SQS, so every one of them retries the same codes.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from detector.errors import DetectorError, ParseError, TransientError

# Errors that say the object is gone for good: retrying cannot help.
OBJECT_GONE = frozenset({"NoSuchKey", "NoSuchBucket", "InvalidObjectState", "NoSuchVersion"})
THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
        "TooManyRequestsException",
        "SlowDown",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KmsThrottled",
        "OverLimit",
    }
)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    HTTPClientError,
    BotoConnectionError,
    aiohttp.ClientError,
    TimeoutError,
    ConnectionError,
)


def object_error(url: str, exc: Any) -> DetectorError:
    code = error_code(exc)
    if code in OBJECT_GONE:
        return ParseError(f"object cannot be read: {code}", origin=url)
    # Access denied and the like may be fixed; the receive count bounds the retries.
    return TransientError(f"GetObject {url}: {describe(exc)}")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in THROTTLING or status == 429 or status >= 500
    return isinstance(exc, NETWORK_ERRORS)


def error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
