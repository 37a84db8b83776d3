"""One DynamoDB table and its client: every request goes through Table.request, which maps failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class StoreError(Exception):
    """DynamoDB failed (throttled, unavailable, timed out or refused)."""


class UnknownRunner(LookupError):
    """No record for that taskrunnerId."""


class ConditionFailed(Exception):
    """A conditional write's condition did not hold; item is the record as it was, if any."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class TransactionFailed(Exception):
    """A transaction was cancelled; reasons holds one entry per item ({"Code": ..., "Item": ...})."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled: " + ", ".join(str(r.get("Code")) for r in reasons))
        self.reasons = reasons

    def failed(self, index: int) -> dict[str, Any] | None:
        """The item's reason if its condition failed (with the item as it was, when asked for), else None."""
        reason = self.reasons[index] if index < len(self.reasons) else {}
        return reason if reason.get("Code") == "ConditionalCheckFailed" else None


def transact(client: DynamoDBClient, items: list[dict[str, Any]], token: str) -> None:
    """One TransactWriteItems call, idempotent for token (a resend after a lost response is answered as done).

    TransactionFailed when a condition failed or the transaction met another; StoreError otherwise.
    """
    try:
        client.transact_write_items(TransactItems=items, ClientRequestToken=token)  # type: ignore[arg-type]
    except ClientError as error:
        if error_code(error) == "TransactionCanceledException":
            raise TransactionFailed(list(error.response.get("CancellationReasons", []))) from None  # type: ignore[arg-type]
        raise StoreError(f"transact_write_items failed: {error_code(error)}") from error
    except BotoCoreError as error:
        raise StoreError(f"transact_write_items failed: {type(error).__name__}") from error


class Table:
    """A table name and the client that reaches it."""

    def __init__(self, name: str, client: DynamoDBClient) -> None:
        self.name = name
        self.client = client

    def request(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one DynamoDB operation on this table.

        Every failure becomes StoreError, and a failed condition ConditionFailed (with the item
        as it was, when the request asked for it).
        """
        try:
            response: dict[str, Any] = getattr(self.client, operation)(TableName=self.name, **kwargs)
        except ClientError as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(error.response.get("Item")) from None  # type: ignore[arg-type]
            raise StoreError(f"{operation} failed: {code}") from error
        except BotoCoreError as error:
            raise StoreError(f"{operation} failed: {type(error).__name__}") from error
        return response


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def raise_store_error(operation: str, error: BaseException) -> NoReturn:
    """Raise a failure met outside Table.request (a paginator's pages) as StoreError; anything else as it is."""
    if isinstance(error, ClientError):
        raise StoreError(f"{operation} failed: {error_code(error)}") from error
    if isinstance(error, BotoCoreError):
        raise StoreError(f"{operation} failed: {type(error).__name__}") from error
    raise error
