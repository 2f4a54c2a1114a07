"""The ``automation`` command's arguments: every subcommand, its help, defaults and variables."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

import orjson

from automation import cli_runs

# Exit codes, the same for every command (docs/operations.md lists them).
OK, BROKEN, REFUSED, UNREACHABLE = 0, 1, 2, 3
ENVIRONMENT = (
    "environment: AUTOMATION_DATA_DIR (default ./var), DATABASE_URL, AMQP_URL and the other "
    "variables of the README's configuration table; AUTOMATION_LOG_FORMAT (text|json), "
    "AUTOMATION_LOG_LEVEL (default INFO)"
)


def fail(message: str, exit_code: int = REFUSED, **details: object) -> int:
    """The CLI's one error format: a JSON object on stderr; returns the exit code."""
    sys.stderr.write(orjson.dumps({"error": message, **details}).decode() + "\n")
    return exit_code


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default and keeps the descriptions' line breaks."""


class Parser(argparse.ArgumentParser):
    """Usage errors in the one error format, with the usage beside them, exit code 2."""

    def error(self, message: str) -> NoReturn:
        fail(message, REFUSED, usage=self.format_usage().strip())
        raise SystemExit(REFUSED)


def _id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {raw!r}") from None


def _whole(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _command(commands: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=text, description=text, epilog=ENVIRONMENT, formatter_class=Formatter
    )
    return parser


def _listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on")


def build() -> argparse.ArgumentParser:
    parser = Parser(
        prog="automation",
        description="Automation runs of a seven-stage content pipeline: the service, its "
        "roles, and the tools to run and audit it.",
        epilog=ENVIRONMENT,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=version("automation-runs"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _listen(
        _command(
            commands,
            "serve",
            "every role in one process: API, projector, "
            "orchestrator, stage workers, scheduler and (with AMQP_URL) the relay",
        )
    )
    _listen(_command(commands, "api", "the HTTP API alone (any number of copies)"))
    _command(commands, "demo", "the whole pipeline on a fresh data dir, live").add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="an empty directory to use (default: a new temporary one)",
    )
    for name, text in (
        ("projector", "the read-model projector alone"),
        ("scheduler", "the scheduler alone: starts due scheduled runs"),
        ("relay", "the CloudEvents relay alone (needs AMQP_URL)"),
        ("orchestrator", "the orchestrator alone (needs AMQP_URL)"),
        ("worker", "a stage worker (needs AMQP_URL)"),
    ):
        _command(commands, name, text)

    audit = _command(commands, "audit", "a run's history: replay, export, import")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    for name, text in (
        ("replay", "the run's timeline with its state after each event"),
        ("export", "the run's stored events as NDJSON"),
    ):
        _command(audit_commands, name, text).add_argument("run_id", type=_id, help="the run")
    _command(audit_commands, "import", "stored events (NDJSON on stdin) into this store")

    views = _command(commands, "projections", "rebuild or verify the read models")
    view_commands = views.add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    _command(view_commands, "rebuild", "drop and rebuild from the events").add_argument(
        "name", nargs="?", default=None, help="one read model (default: all)"
    )
    _command(view_commands, "verify", "compare every read model with a rebuild (exit 1: differ)")

    admin = _command(commands, "admin", "accounts, tokens and credits, in this store")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create = _command(admin_commands, "create-account", "open an account; prints its token")
    create.add_argument("name", help="the account's name")
    create.add_argument("--credits", type=_whole, default=0, help="credits to grant at once")
    token = _command(admin_commands, "create-token", "issue another token for an account")
    token.add_argument("account_id", type=_id, help="the account")
    grant = _command(admin_commands, "grant-credits", "add credits to an account's balance")
    grant.add_argument("account_id", type=_id, help="the account")
    grant.add_argument("amount", type=_whole, help="how many credits")

    cli_runs.add_parser(commands, Formatter)
    return parser
