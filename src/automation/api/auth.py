"""Who is calling: the account of a bearer token, through a per-process cache of hashes."""

from __future__ import annotations

from uuid import UUID

import anyio.to_thread

from automation.bootstrap import Services
from automation.domain.token import hash_token

ACCOUNT = "automation.account_id"  # the scope key of the caller's account (api/edge.py)
CACHE_LIMIT = 10_000
MAX_TOKEN_LENGTH = 200  # tokens are 47 characters; a longer one is nobody's


async def account_of(authorization: str, services: Services, cache: dict[str, UUID]) -> UUID | None:
    """The account whose token the ``Authorization`` header carries, or None for a missing,
    malformed or unknown one. May raise what the store raises when it is unreachable."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    key = hash_token(token)  # the cache holds hashes, never tokens
    account_id = cache.get(key)
    if account_id is None:
        account_id = await anyio.to_thread.run_sync(services.app.authenticate, token)
        if account_id is None:
            return None
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[key] = account_id
    return account_id
