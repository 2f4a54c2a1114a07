"""Integer parameters are bounded to what the stores hold.

SQLite's INTEGER and PostgreSQL's bigint hold at most 2**63 - 1; a larger Python int bound
to a statement is an OverflowError (SQLite) or an out-of-range error (PostgreSQL), a 500
instead of an answer. Every integer a client sends is therefore validated against this
bound at the edge, and the schema test holds every integer parameter of the OpenAPI
document to it, so a new one cannot be left unbounded.
"""

from __future__ import annotations

STORE_INT_MAX = 2**63 - 1
