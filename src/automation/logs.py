"""The process's log lines: text or JSON, a level, the role, and the ids in scope.

``configure`` is called once per process by the CLI. Code that knows which account, site,
run, batch or request it works for says so with ``log_context(run=…)`` (or ``bind`` inside
a task of its own); every line logged within carries those ids. Every line passes through
``redact`` first, so a token, a password in a URL or a configured secret never reaches a
log, whatever the message or the exception says.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

from automation.tracing import current_trace_id

IDS = ("account", "site", "run", "batch", "request", "trace")

_ids: ContextVar[dict[str, str] | None] = ContextVar("log_ids", default=None)

_PATTERNS = (
    (re.compile(r"atk_[A-Za-z0-9_\-]+"), "atk_***"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1***"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
)


class Redactor:
    """Masks tokens, bearer credentials, URL passwords and the given secrets."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._secrets = tuple(s for s in secrets if len(s) >= 4)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def current_ids() -> dict[str, str]:
    return dict(_ids.get() or {})


def bind(**ids: object) -> None:
    """Adds ids to the current context for good (a task's context is its own copy)."""
    _ids.set(current_ids() | {k: str(v) for k, v in ids.items() if v is not None})


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Adds ids to every line logged inside the block."""
    token = _ids.set(current_ids() | {k: str(v) for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _ids.reset(token)


class _Formatter(logging.Formatter):
    def __init__(self, role: str, redact: Redactor, as_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s%(ids)s")
        self._role, self._redact, self._json = role, redact, as_json

    def format(self, record: logging.LogRecord) -> str:
        ids = current_ids()
        if "trace" not in ids and (trace_id := current_trace_id()) is not None:
            ids["trace"] = trace_id  # the active span's, so a line leads to its trace
        if not self._json:
            record.ids = "".join(f" {k}={v}" for k, v in ids.items())
            return self._redact(super().format(record))
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "role": self._role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({f"{k}_id": v for k, v in ids.items()})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self._redact(orjson.dumps(line).decode())


def configure(
    role: str, *, fmt: str = "text", level: str = "INFO", secrets: tuple[str, ...] = ()
) -> None:
    """One handler on stderr for the whole process, uvicorn's loggers included."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(role, Redactor(secrets), as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # A line per HTTP request a client makes is noise at INFO; its failures still show.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
