"""Text the stores cannot hold, refused wherever a client's text comes in.

PostgreSQL refuses a NUL in a text column, and nothing can encode a lone surrogate as
UTF-8 (SQLite's text, the ids derived from a keyword, orjson's answers), so either would be
a server error on one backend or both; the other control characters are stored, but no
client means them, and a value stored on one backend must be storable on the other. One
rule for all text therefore: no control characters (C0, DEL, C1) and no surrogates. Other
oddities (bidi overrides, zero-width characters, emoji) are text and are kept as sent.

The rule applies to every text field of a body (``Text``), and to every query parameter and
the path (``query_problem``, ``path_problem``; checked by ``api/edge.py`` before routing).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import AfterValidator

PROBLEM = "must not contain control characters or unpaired surrogates"

UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Bytes of a query string that can decode to such a character: an escape, a raw control
# byte, or a byte that Starlette's latin-1 reading of the query string turns into a C1 one.
_SUSPECT = re.compile(rb"[%\x00-\x1f\x7f-\x9f]")


def storable(text: str) -> str:
    """``text``, or ValueError naming the rule (for pydantic validators)."""
    if UNSTORABLE.search(text):
        raise ValueError(PROBLEM)
    return text


Text = Annotated[str, AfterValidator(storable)]


def query_problem(query_string: bytes) -> dict[str, str] | None:
    """The query parameters holding unstorable text, as Starlette will decode them."""
    if not _SUSPECT.search(query_string):
        return None  # the common case, without parsing
    fields = {
        # A name that breaks the rule itself is not repeated back.
        "query" if UNSTORABLE.search(name) or not name else name: PROBLEM
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if UNSTORABLE.search(name) or UNSTORABLE.search(value)
    }
    return fields or None


def path_problem(path: str) -> dict[str, str] | None:
    return {"path": PROBLEM} if UNSTORABLE.search(path) else None
