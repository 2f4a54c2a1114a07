"""Log lines: JSON with the role and the ids in scope, and no secret in any of them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from automation import logs

TOKEN = "atk_GVuZ9_ba11V3ncVKXZo_95efYDmfIBkEbUuKQHkoLWc"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The process's logging, configured by ``logs.configure``, written to a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)


def configure(out: io.StringIO, fmt: str, secrets: tuple[str, ...] = ()) -> None:
    logs.configure("worker", fmt=fmt, level="INFO", secrets=secrets)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)


def test_json_lines_name_the_role_and_the_ids_in_scope(captured: io.StringIO) -> None:
    configure(captured, "json")
    log = logging.getLogger("automation.test")
    with logs.log_context(run="r-1", site="s-1"):
        log.info("batch %d done", 3)
        with logs.log_context(batch="b-9"):
            log.warning("slow")
    log.info("outside")
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["batch 3 done", "slow", "outside"]
    assert {line["role"] for line in lines} == {"worker"}
    assert [line["level"] for line in lines] == ["info", "warning", "info"]
    assert lines[0]["run_id"] == "r-1"
    assert lines[0]["site_id"] == "s-1"
    assert "batch_id" not in lines[0]
    assert lines[1]["batch_id"] == "b-9"
    assert "run_id" not in lines[2]
    assert all(line["time"].endswith("+00:00") for line in lines)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_token_password_or_secret_reaches_a_line(captured: io.StringIO, fmt: str) -> None:
    configure(captured, fmt, secrets=("sk-live-0123456789",))
    log = logging.getLogger("automation.test")
    log.info("token %s used", TOKEN)
    log.info("connecting to postgresql://app:pa55word@db:5432/prod")
    log.info("headers: {'Authorization': 'Bearer %s'}", "opaque-credential")
    try:
        raise RuntimeError("the provider refused key sk-live-0123456789")
    except RuntimeError:
        log.exception("AI call failed")
    text = captured.getvalue()
    for secret in (TOKEN, "pa55word", "opaque-credential", "sk-live-0123456789"):
        assert secret not in text
    assert "postgresql://app:***@db:5432/prod" in text
    assert text.count("\n") >= 4


def test_text_lines_carry_the_ids_too(captured: io.StringIO) -> None:
    configure(captured, "text")
    with logs.log_context(run="r-2", request=None):
        logging.getLogger("automation.test").info("paused")
    line = captured.getvalue().strip()
    assert line.endswith("paused run=r-2")
    assert "request=" not in line
