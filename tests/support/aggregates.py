"""Runs made in memory for the domain's tests, and replaying their events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from automation.domain.run import AutomationRun

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)


def new_run(at: datetime = T0, reserved: int = 100) -> AutomationRun:
    return AutomationRun(
        id=uuid4(),
        site_id=uuid4(),
        account_id=uuid4(),
        trigger_type="manual",
        config={"stage_1_batch_size": 20},
        estimated_credits=reserved,
        reserved_credits=reserved,
        estimate_basis={},
        at=at,
    )


def replay(events: Any) -> Any:
    aggregate: Any = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate
