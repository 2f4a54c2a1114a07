"""``python -m bench [read]``: run the benchmarks (all of them when none is named)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import pipeline, projections, read_endpoints, store

BENCHMARKS: dict[str, Callable[[read_endpoints.Settings], int]] = {
    "read": read_endpoints.run,
    "store": store.run,
    "pipeline": pipeline.run,
    "projections": projections.run,
}
OUTPUTS: dict[str, Path] = {
    "read": read_endpoints.RESULTS_PATH,
    "store": store.RESULTS_PATH,
    "pipeline": pipeline.RESULTS_PATH,
    "projections": projections.RESULTS_PATH,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="BENCHMARK", help=f"{', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved measurement rounds")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk when it is on PATH, else the built-in Python client",
    )
    parser.add_argument(
        "--stack",
        choices=["embedded", "production", "both"],
        default="both",
        help="read only: the embedded stack, the production stack (PostgreSQL and RabbitMQ), "
        "or both",
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON (one benchmark)")
    args = parser.parse_args(argv)
    names: list[str] = args.names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.output and len(names) > 1:
        parser.error("--output needs exactly one benchmark named")
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be positive")
    status = 0
    for name in names:
        settings = read_endpoints.Settings(
            duration_s=args.duration,
            warmup_s=args.warmup,
            rounds=args.rounds,
            connections=args.connections,
            loadgen=args.loadgen,
            output=args.output or OUTPUTS[name],
            stacks=read_endpoints.STACKS if args.stack == "both" else (args.stack,),
        )
        status = max(status, BENCHMARKS[name](settings))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
