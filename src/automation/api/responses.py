"""JSON responses rendered with orjson, and bodies already rendered by a read model."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def raw_json(text: str, status: int = 200) -> Response:
    """A body the read model stored as JSON text: served without parsing it again."""
    return Response(text.encode(), status, media_type="application/json")
