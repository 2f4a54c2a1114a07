"""The ``automation`` command: the server, its roles, and the tools to run and audit it.

Every command reports a failure the same way: one JSON object on stderr
(``{"error": "...", ...}``) and an exit code from ``cli_parser`` (0 done, 1 a check found a
difference, 2 refused or bad arguments, 3 the service could not be reached). A reader that
closes the pipe early (``… | head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from automation import cli_runs, logs, tracing
from automation.cli_parser import OK, REFUSED, UNREACHABLE, build, fail
from automation.client import ApiError, ServiceUnreachable
from automation.config import Settings
from automation.domain.errors import DomainError

log = logging.getLogger("automation.cli")


def _print(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from automation.bootstrap import build

    log.info("admin: using %s", settings.store_description())
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
        return fail(error.message)
    finally:
        services.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build().parse_args(argv)
    try:
        return _main(args)
    except BrokenPipeError:
        # The reader went away (`… | head`): stop quietly, and keep Python's own flush at
        # exit from raising again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except SystemExit as stop:
        if isinstance(stop.code, str):
            return fail(stop.code)
        raise


def _main(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        fields = [".".join(map(str, e["loc"])) for e in error.errors()]
        return fail("invalid configuration", fields=fields)
    secrets = tuple(s for s in (settings.openai_api_key,) if s)
    logs.configure(args.command, fmt=settings.log_format, level=settings.log_level, secrets=secrets)
    tracing.setup(settings, args.command)  # its provider exports what is left at exit
    if args.command == "runs":
        return _runs(args)
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
    return fail(f"unknown command {args.command}")


def _runs(args: argparse.Namespace) -> int:
    try:
        answer = cli_runs.run(args)
    except ApiError as error:
        return fail(
            error.message, REFUSED, code=error.code, status=error.status, details=error.details
        )
    except ServiceUnreachable as error:
        return fail(f"the service did not answer: {error}", UNREACHABLE)
    except argparse.ArgumentError as error:
        return fail(str(error))
    if answer is not None:
        cli_runs.print_answer(answer, args.table)
    return OK


if __name__ == "__main__":
    raise SystemExit(main())
