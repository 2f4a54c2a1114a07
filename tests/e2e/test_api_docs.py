"""docs/api.md says what the API does: its endpoint table lists exactly the operations of
the OpenAPI document, every field its examples show is in the document's schemas, and every
field the answers' schemas have is named in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from automation.api.app import create_app
from automation.bootstrap import Services

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EVENTS_DOC = API_DOC.with_name("events.md")
# A row of the endpoint table: | `GET /api/v1/automation/pause|resume?run_id=` | … |
ROW = re.compile(
    r"^\| `((?:GET|POST|PUT|DELETE)(?:\|(?:GET|POST|PUT|DELETE))*) (/api/v1/[^`]*)`", re.M
)


def document(services: Services) -> dict[str, Any]:
    found: dict[str, Any] = create_app(services).openapi()
    return found


def documented_operations(text: str) -> set[tuple[str, str]]:
    found = set()
    for methods, raw in ROW.findall(text):
        path = raw.split("?", 1)[0].replace("\\|", "|")
        # Alternatives in one segment: /api/v1/planner/keywords|clusters|ideas
        head, _, last = path.rpartition("/")
        parts = re.split(r"(\{[^}]+\})", path)
        if "|" in last and "{" not in last:
            paths = [f"{head}/{alt}" for alt in last.split("|")]
        elif any("|" in p for p in parts):
            segment = next(p for p in path.split("/") if "|" in p)
            paths = [path.replace(segment, alt) for alt in segment.split("|")]
        else:
            paths = [path]
        found |= {(m, p) for m in methods.split("|") for p in paths}
    return found


def test_the_endpoint_table_lists_exactly_the_apis_operations(services: Services) -> None:
    paths = document(services)["paths"]
    served = {
        (method.upper(), path)
        for path, item in paths.items()
        if path.startswith("/api/v1/")
        for method in item
    }
    listed = documented_operations(API_DOC.read_text())
    assert listed - served == set(), "documented but not served"
    assert served - listed == set(), "served but not documented"


def schema_fields(schema: dict[str, Any]) -> set[str]:
    """Every property name in a schema, nested objects' too."""
    found: set[str] = set()
    for name, inner in schema.get("properties", {}).items():
        found |= {name} | schema_fields(inner)
    return found


def named_in(text: str) -> set[str]:
    """Every word in a code span (`id, keyword, volume`) or a JSON key of the text."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`]+)`", prose)
    return {w for span in spans for w in re.findall(r"\w+", span)} | set(
        re.findall(r'"(\w+)":', text)
    )


def test_every_field_the_examples_show_is_in_the_schemas(services: Services) -> None:
    schemas = document(services)["components"]["schemas"].values()
    fields = {name for schema in schemas for name in schema_fields(schema)}
    # An event's `data` is free-form in the schema; its fields are those of events.md.
    fields |= named_in(EVENTS_DOC.read_text())
    text = API_DOC.read_text()
    shown = {
        key
        for block in re.findall(r"```json\n(.*?)```", text, re.S)
        for key in re.findall(r'"(\w+)":', block)
    }
    assert len(shown) >= 40
    assert shown - fields == set()


def test_every_field_of_every_answer_is_named_in_the_docs(services: Services) -> None:
    schemas = document(services)["components"]["schemas"]
    named = named_in(API_DOC.read_text())
    missing = {
        f"{schema_name}.{field}"
        for schema_name, schema in schemas.items()
        for field in schema_fields(schema)
        if field not in named
    }
    assert missing == set()
