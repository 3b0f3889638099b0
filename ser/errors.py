"""One exception family for everything a user's input can get wrong.

Each error carries a stable machine-readable ``code`` and the HTTP status the service answers
with, so the service maps errors to responses in one place and messages stay user-facing:
they name the bad value and what is allowed.
"""

from __future__ import annotations


class SERError(Exception):
    """Base class of every error `ser` raises about its input."""

    code = "ser_error"
    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class InvalidAudioError(SERError):
    """The bytes are not audio we can decode (unknown format, broken or lying header)."""

    code = "invalid_audio"
    http_status = 415


class EmptyAudioError(InvalidAudioError):
    """No bytes, or a header that declares no samples."""

    code = "empty_audio"
    http_status = 400


class AudioTooLargeError(SERError):
    """The upload is larger than the configured byte limit."""

    code = "audio_too_large"
    http_status = 413


class AudioTooLongError(SERError):
    """The declared or decoded duration is above the limit."""

    code = "audio_too_long"
    http_status = 413


class AudioTooShortError(SERError):
    """Too little audio (or too little speech) to classify."""

    code = "audio_too_short"
    http_status = 422


class UnsupportedAudioError(SERError):
    """Decodable in principle, but outside what we accept (channels, sample rate)."""

    code = "unsupported_audio"
    http_status = 422


class NonFiniteAudioError(SERError):
    """Samples that are NaN or infinite."""

    code = "non_finite_audio"
    http_status = 422


class NoSpeechError(SERError):
    """The audio is silent or holds no voiced region."""

    code = "no_speech"
    http_status = 422


class BadRequestError(SERError):
    """The request itself is malformed (missing field, too many files, bad parameter)."""

    code = "bad_request"
    http_status = 400
