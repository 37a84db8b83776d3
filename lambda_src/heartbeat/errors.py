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


class InternalServiceError(ServiceError):
    """The store failed or something unexpected happened; clients retry these."""

    code = "InternalServiceError"
    status = 500


INTERNAL_ERROR_MESSAGE = "An internal error occurred. Please retry the request."
