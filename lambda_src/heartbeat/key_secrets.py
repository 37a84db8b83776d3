"""Key secrets at rest: each one encrypted under a KMS key, never stored or logged in plain text.

Why KMS rather than secrets derived from one master secret kept in Secrets Manager:

- The key that protects the secrets never leaves KMS. A derivation master has to be read
  into every function that verifies, and whoever reads it once holds every key's secret, past
  and future; KMS gives a caller one secret per Decrypt call, each call in CloudTrail with
  the access key id it was for.
- Each secret is its own ciphertext, bound to its access key id by the encryption context:
  a ciphertext copied into another key's record does not decrypt there.
- A leak is contained to the keys it touched, and those are revoked one by one; a leaked
  master would mean re-issuing every key at once.
- A read of the keys table (a backup, an export, a restored copy, a console scan) reveals no
  secret without kms:Decrypt on this one KMS key, which only the API handler holds.

The cost is one Decrypt per key per execution environment (the secret is immutable, so it is
cached for the environment's life) and the KMS key's monthly fee; see docs/authentication.md.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.clients import CLIENT_CONFIG

ENCRYPTION_CONTEXT_KEY = "accessKeyId"
PURPOSE = {"purpose": "taskrunner-heartbeat access key"}


class SecretsUnavailable(Exception):
    """KMS failed (throttled, unavailable, refused): the request can be retried."""


class KeySecrets:
    """Seals and opens key secrets with one KMS key. Give it a client to use another endpoint."""

    def __init__(self, kms_key_id: str | None, client: Any = None) -> None:
        self.kms_key_id = kms_key_id
        self._client = client

    @property
    def client(self) -> Any:
        """The KMS client, made on first use: a steady heartbeat never opens a secret, so a cold start need not."""
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", config=CLIENT_CONFIG)
        return self._client

    def seal(self, access_key_id: str, secret: str) -> bytes:
        """The secret encrypted for this access key id alone."""
        if not self.kms_key_id:
            raise SecretsUnavailable("no KMS key to encrypt with (KEYS_KMS_KEY_ID)")
        response = self._call(
            "encrypt",
            KeyId=self.kms_key_id,
            Plaintext=secret.encode(),
            EncryptionContext=_context(access_key_id),
        )
        return bytes(response["CiphertextBlob"])

    def open(self, access_key_id: str, ciphertext: bytes) -> str:
        """The secret sealed for this access key id; SecretsUnavailable if KMS fails or refuses."""
        extra = {"KeyId": self.kms_key_id} if self.kms_key_id else {}
        response = self._call("decrypt", CiphertextBlob=ciphertext, EncryptionContext=_context(access_key_id), **extra)
        return bytes(response["Plaintext"]).decode()

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise SecretsUnavailable(f"kms {operation} failed: {code}") from error
        except BotoCoreError as error:
            raise SecretsUnavailable(f"kms {operation} failed: {type(error).__name__}") from error
        return response


def _context(access_key_id: str) -> dict[str, str]:
    return {**PURPOSE, ENCRYPTION_CONTEXT_KEY: access_key_id}
