"""Hostile inputs, and where to put them: every parameter and body field of every operation
of the served OpenAPI document, so a new endpoint is covered as soon as it is documented.

Values are kept as raw text so they reach the server exactly as a hostile client sends them:
query, path and header values as bytes (percent-encoded here, so a lone surrogate's bytes,
an overlong NUL or a stray ``\\xff`` arrive as such), body values as JSON text (so
``"\\ud800"``, integers past 64 bits and ``1e400`` are sent as written).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\x1b[2J\x07\x7f\x85",  # C0 and C1 control characters
    "\u202egnp.exe\u202c\u2066",  # bidi overrides and isolates
    "\ufeff\u200b\u200d",  # byte-order mark, zero-width space and joiner
    "\U0001f984" * 50,
    "a" * 100_000,
    "\r\nX-Injected: 1",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%",
]
_NUMBERS = [
    "18446744073709551616",  # 2**64
    "-18446744073709551617",
    "9223372036854775808",  # 2**63, one past SQLite's and PostgreSQL's bigint
    "1" + "0" * 400,
    "1e400",
    "-1",
    "1.5",
    "NaN",
]
# Query, path and header values: raw bytes (httpx sends URLs of up to 64 KiB).
PARAMETER_VALUES: list[bytes] = [
    *(text[:60_000].encode() for text in _TEXT + _NUMBERS),
    "\ud800".encode("utf-8", "surrogatepass"),  # a lone surrogate, as UTF-8 would spell it
    b"\xc0\x80",  # an overlong NUL
    b"\xff\xfe",  # not UTF-8 at all
]
# Header values: HTTP allows no control characters in them (the server refuses such a
# request before the service sees it), but any other byte.
HEADER_VALUES: list[bytes] = [
    v for v in PARAMETER_VALUES if not any(c < 0x20 or c == 0x7F for c in v) and len(v) < 8000
]
# Body values: JSON text.
BODY_VALUES: list[str] = [
    *(json.dumps(text) for text in _TEXT),  # ASCII-escaped: "\u0000", "\u202e"...
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\udbff\\udbff"',
    *_NUMBERS[:5],
    "-1",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    "[" * 1000 + "]" * 1000,
]
# Names of unknown body fields: every hostile string, as a key.
BODY_KEYS: list[str] = [v for v in BODY_VALUES if v.startswith('"')]

_MARK = "\x00hostile\x00"


@dataclass
class Slot:
    """One place in a request that a hostile value can take."""

    where: str  # "query", "path", "header" or "body"
    name: str  # the parameter, or the body field's dotted path ("" for the whole body)
    steps: tuple[Any, ...] = ()  # body only: property names, "item", ("alt", i), ("key",)


@dataclass
class Operation:
    method: str
    path: str
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None
    responses: dict[str, Any] = field(repr=False)
    components: dict[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def slots(self) -> Iterator[Slot]:
        for parameter in self.parameters:
            yield Slot(parameter["in"], parameter["name"])
        if self.body is not None:
            yield Slot("body", "")
            yield Slot("body", "", (("key",),))
            yield from self._body_slots(self.body, (), "")

    def _body_slots(
        self, schema: dict[str, Any], steps: tuple[Any, ...], name: str
    ) -> Iterator[Slot]:
        schema = self.resolve(schema)
        for i, alternative in enumerate(schema.get("anyOf", [])):
            if alternative.get("type") != "null":
                yield from self._body_slots(alternative, (*steps, ("alt", i)), name)
        for prop, sub in schema.get("properties", {}).items():
            dotted = f"{name}.{prop}" if name else prop
            yield Slot("body", dotted, (*steps, prop))
            yield from self._body_slots(sub, (*steps, prop), dotted)
        if "items" in schema:
            yield from self._body_slots(schema["items"], (*steps, "item"), name)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def body_with(self, slot: Slot, value: str) -> str:
        """The smallest valid body, with ``value`` (JSON text) at ``slot``."""
        assert self.body is not None
        if not slot.steps:
            return value
        built = self._build(self.body, slot.steps)
        return json.dumps(built).replace(json.dumps(_MARK), value)

    def _build(self, schema: dict[str, Any], steps: tuple[Any, ...]) -> Any:
        schema = self.resolve(schema)
        if not steps:
            return _MARK
        step, rest = steps[0], steps[1:]
        if step == ("key",):
            return {_MARK: 1}
        if isinstance(step, tuple):
            return self._build(schema["anyOf"][step[1]], rest)
        if step == "item":
            return [self._build(schema["items"], rest)]
        built = {
            p: self.example(s)
            for p, s in schema["properties"].items()
            if p in schema.get("required", [])
        }
        built[step] = self._build(schema["properties"][step], rest)
        return built

    def example(self, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        if "anyOf" in schema:
            return self.example(schema["anyOf"][0])
        kind = schema.get("type")
        if kind == "object":
            required = schema.get("required", [])
            return {p: self.example(s) for p, s in schema["properties"].items() if p in required}
        if kind == "array":
            return [self.example(schema["items"])] * max(1, schema.get("minItems", 1))
        if kind == "integer":
            return schema.get("minimum", 0)
        if kind == "boolean":
            return True
        return "hostile input test"


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            yield Operation(
                method.upper(),
                path,
                operation.get("parameters", []),
                body["schema"] if body else None,
                operation["responses"],
                document.get("components", {}),
            )


def encode(value: bytes) -> str:
    return quote_from_bytes(value, safe="")
