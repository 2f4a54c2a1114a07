"""API tokens. Only a token's SHA-256 hash is stored; the aggregate's id is derived from
that hash, so authenticating is one keyed read of the event store, never a scan."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid5(NAMESPACE_URL, "automation:api-token")


def new_token() -> str:
    """A fresh random token: 256 bits from the OS's CSPRNG."""
    return "atk_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(Aggregate):
    INITIAL_VERSION = 1

    class TokenIssued(Aggregate.Created):
        token_hash: str
        account_id: UUID

    @staticmethod
    def create_id(token_hash: str, **_: object) -> UUID:
        return uuid5(_NAMESPACE, token_hash)

    @classmethod
    def id_for(cls, token: str) -> UUID:
        return cls.create_id(hash_token(token))

    @event(TokenIssued)
    def __init__(self, token_hash: str, account_id: UUID) -> None:
        self.token_hash = token_hash
        self.account_id = account_id

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_hash, hash_token(token))
