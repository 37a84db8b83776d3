"""The service's error vocabulary: each error's awsJson code and HTTP status.

The codes are the bare shape names that AWS Data Pipeline returns, so that botocore,
the AWS CLI and the JS and Java SDKs raise the named exception.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """An error answered to the client in the awsJson 1.1 error envelope."""

    code: ClassVar[str] = "InternalServiceError"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestException(ServiceError):
    """A member broke a constraint of the service model."""

    code = "InvalidRequestException"
    status = 400


class SerializationException(ServiceError):
    """The body is not a JSON object, or a member has the wrong JSON type."""

    code = "SerializationException"
    status = 400


class UnknownOperationException(ServiceError):
    """The X-Amz-Target header is missing or names an operation this endpoint lacks."""

    code = "UnknownOperationException"
    status = 400


class RequestEntityTooLargeException(ServiceError):
    """The body is larger than this endpoint reads."""

    code = "RequestEntityTooLargeException"
    status = 413


class NotFoundException(ServiceError):
    """Nothing is served at that path: awsJson clients always POST to the root."""

    code = "NotFoundException"
    status = 404


class MethodNotAllowedException(ServiceError):
    """The root takes POST only."""

    code = "MethodNotAllowedException"
    status = 405


class MissingAuthenticationTokenException(ServiceError):
    """Authentication is on and the request carries no signature."""

    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignatureException(ServiceError):
    """The Authorization header is malformed, or the request has no X-Amz-Date."""

    code = "IncompleteSignatureException"
    status = 400


class UnrecognizedClientException(ServiceError):
    """The access key is not one this service issued, or it was revoked."""

    code = "UnrecognizedClientException"
    status = 400


class InvalidSignatureException(ServiceError):
    """The signature does not match, its scope is not the request's date, or its time is over 5 minutes off."""

    code = "InvalidSignatureException"
    status = 400


class AccessDeniedException(ServiceError):
    """The key may not report for this runner or worker group."""

    code = "AccessDeniedException"
    status = 400


class LimitExceededException(ServiceError):
    """The key has as many runners as its cap allows: it cannot register another."""

    code = "LimitExceededException"
    status = 400


class InternalServiceError(ServiceError):
    """The store failed or something unexpected happened; clients retry these."""

    code = "InternalServiceError"
    status = 500


INTERNAL_ERROR_MESSAGE = "An internal error occurred. Please retry the request."
