"""Errors that carry their HTTP status: the whole tree, in this one module.

Every failure a client can cause is one of these; the HTTP edge (``streaming.web.app``) turns
them into the one JSON error shape in exactly one place::

    RilletError                 500 internal
     ├── ColumnsDamaged         500 internal_error (column files that cannot be trusted)
     ├── SettingError           500 bad_setting (a setting the server cannot start with)
     ├── BadRequest             400 bad_request (and more specific codes)
     ├── Unauthorized           401 unauthorized
     ├── Forbidden              403 forbidden
     ├── NotFound               404 not_found
     │    └── VersionNotFound   404 version_not_found (a version not kept, or never made)
     ├── MethodNotAllowed       405 method_not_allowed
     ├── NotReady               409 not_ready
     ├── RateLimited            429 rate_limited (with Retry-After)
     ├── PayloadTooLarge        413 too_large
     ├── UnsupportedMediaType   415 not_csv
     ├── InvalidCSV             422 invalid_csv (carries the line number when known)
     ├── RenderUnavailable      501 render_unavailable (no vl-convert-python for svg/png)
     ├── LLMFailed              502 llm_failed (the LLM answered an error, or nonsense)
     │    └── MalformedAnswer   502 (the answer is not the JSON asked for)
     ├── LLMUnavailable         503 llm_unavailable (no GROQ_API_KEY)
     └── LLMTimeout             504 llm_timeout
"""

from __future__ import annotations

from typing import Any


class RilletError(Exception):
    """Base class: a status, a stable snake_case code and a message for people."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The body of the error response: ``{"error": {"code", "message", ...}}``."""
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class ColumnsDamaged(RilletError):
    """A dataset's column files disagree with their description: never answer from them."""

    code = "internal_error"


class SettingError(RilletError):
    code = "bad_setting"


class BadRequest(RilletError):
    status = 400
    code = "bad_request"


class Unauthorized(RilletError):
    status = 401
    code = "unauthorized"


class Forbidden(RilletError):
    status = 403
    code = "forbidden"


class NotFound(RilletError):
    status = 404
    code = "not_found"


class VersionNotFound(NotFound):
    """A version the dataset does not keep (never made, or pruned)."""

    code = "version_not_found"


class MethodNotAllowed(RilletError):
    status = 405
    code = "method_not_allowed"


class NotReady(RilletError):
    status = 409
    code = "not_ready"


class RateLimited(RilletError):
    """429 with the seconds to wait, sent as ``Retry-After`` too."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class PayloadTooLarge(RilletError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(RilletError):
    status = 415
    code = "not_csv"


class InvalidCSV(RilletError):
    """A CSV that cannot be converted; ``line`` is the 1-based physical line, when known."""

    status = 422
    code = "invalid_csv"

    def __init__(self, message: str, *, line: int | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.line = line
        if line is not None:
            self.extra["line"] = line


class LLMFailed(RilletError):
    """The LLM (Groq) failed after its retries, or answered something unusable."""

    status = 502
    code = "llm_failed"


class MalformedAnswer(LLMFailed):
    """The model's answer is not the JSON asked for (Groq's own check, or ours)."""


class RenderUnavailable(RilletError):
    status = 501
    code = "render_unavailable"


class LLMUnavailable(RilletError):
    status = 503
    code = "llm_unavailable"


class LLMTimeout(RilletError):
    status = 504
    code = "llm_timeout"
