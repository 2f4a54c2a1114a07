"""The ``automation`` command: the server, its roles, and the admin tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import orjson

from automation.config import Settings
from automation.domain.errors import DomainError


def _print(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(orjson.dumps({"error": message}).decode() + "\n")
    return code


def _account_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {raw!r}") from None


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="every role in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    api = commands.add_parser("api", help="the HTTP API alone")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    demo = commands.add_parser("demo", help="the whole pipeline on a fresh data dir, live")
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="an empty directory to use (default: a new temporary one)",
    )
    commands.add_parser("projector", help="the read-model projector alone")
    commands.add_parser("scheduler", help="the scheduler alone (check_scheduled_automations)")
    commands.add_parser("relay", help="the CloudEvents relay alone (needs AMQP_URL)")
    commands.add_parser("orchestrator", help="the orchestrator alone (needs AMQP_URL)")
    commands.add_parser("worker", help="a stage worker (needs AMQP_URL)")

    audit = commands.add_parser("audit", help="a run's history: replay, export, import")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    for name, text in (
        ("replay", "the run's timeline with its state after each event"),
        ("export", "the run's stored events as NDJSON"),
    ):
        audit_command = audit_commands.add_parser(name, help=text)
        audit_command.add_argument("run_id", type=_account_id)
    audit_commands.add_parser("import", help="stored events (NDJSON on stdin) into this store")

    views = commands.add_parser("projections", help="rebuild or verify the read models")
    view_commands = views.add_subparsers(dest="projections_command", required=True)
    rebuild = view_commands.add_parser("rebuild", help="drop and rebuild from the events")
    rebuild.add_argument("name", nargs="?", default=None, help="one read model (default: all)")
    view_commands.add_parser("verify", help="compare every read model with a rebuild")

    admin = commands.add_parser("admin", help="accounts, tokens and credits")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_commands.add_parser("create-account")
    create.add_argument("name")
    create.add_argument("--credits", type=_positive, default=0)
    token = admin_commands.add_parser("create-token")
    token.add_argument("account_id", type=_account_id)
    grant = admin_commands.add_parser("grant-credits")
    grant.add_argument("account_id", type=_account_id)
    grant.add_argument("amount", type=_positive)
    return parser


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from automation.bootstrap import build

    services = build(settings)
    try:
        app = services.app
        if args.admin_command == "create-account":
            account_id, token = app.open_account(args.name, args.credits)
            _print({"account_id": str(account_id), "token": token})
        elif args.admin_command == "create-token":
            _print({"token": app.issue_token(args.account_id)})
        else:
            balance = app.grant_credits(args.account_id, args.amount)
            _print({"account_id": str(args.account_id), "balance": balance})
    except DomainError as error:
        return _fail(error.message)
    finally:
        services.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    if args.command == "admin":
        return _admin(args, settings)
    if args.command == "audit":
        from automation import audit_cli

        if args.audit_command == "replay":
            return audit_cli.replay(settings, args.run_id)
        if args.audit_command == "export":
            return audit_cli.export(settings, args.run_id)
        return audit_cli.import_(settings)
    if args.command == "projections":
        from automation import projections_cli

        if args.projections_command == "rebuild":
            return projections_cli.rebuild_command(settings, args.name)
        return projections_cli.verify_command(settings)
    if args.command == "demo":
        from automation import demo

        return demo.main(settings, args.data_dir)
    from automation import roles

    if args.command == "serve":
        return roles.serve(settings, args.host, args.port)
    if args.command == "api":
        return roles.api(settings, args.host, args.port)
    if args.command == "projector":
        return roles.projector(settings)
    if args.command == "scheduler":
        return roles.scheduler(settings)
    if args.command == "relay":
        return roles.relay(settings)
    if args.command == "orchestrator":
        return roles.orchestrator(settings)
    if args.command == "worker":
        return roles.worker(settings)
    return _fail(f"unknown command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
