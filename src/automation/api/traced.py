"""A span per command of a run or a config, inside FastAPI's span of its request (see
``create_app``); nothing when tracing is off (``tracing.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from automation import tracing

P = ParamSpec("P")
R = TypeVar("R")


def command(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A span named ``command NAME`` around a command's handler; a run started or resumed
    within records its context, so the run's batches join this trace."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(handler)
        async def traced(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracing.span(f"command {name}", {"automation.command": name}):
                return await handler(*args, **kwargs)

        return traced

    return decorate
