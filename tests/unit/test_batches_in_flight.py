"""Several batches of a stage in flight at once, and the fast copies the cache hands out."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automation.domain.account import Account
from automation.domain.errors import InvalidStateError
from automation.domain.run import AutomationRun
from tests.support.aggregates import T0, new_run, replay


def running_stage_one() -> AutomationRun:
    run = new_run()
    run.start_stage(1, T0)
    return run


def test_batches_are_dispatched_up_to_the_window_and_never_share_an_item() -> None:
    run = running_stage_one()
    assert run.dispatch_batch(1, ["a", "b"], T0, window=3) == 1
    assert run.dispatch_batch(1, ["c"], T0, window=3) == 2
    with pytest.raises(InvalidStateError, match="already in flight"):
        run.dispatch_batch(1, ["b", "d"], T0, window=3)
    assert run.dispatch_batch(1, ["d"], T0, window=3) == 3
    with pytest.raises(InvalidStateError, match="in flight"):
        run.dispatch_batch(1, ["e"], T0, window=3)
    assert run.items_in_flight() == {"a", "b", "c", "d"}


def test_batches_are_recorded_in_any_order_and_the_stage_waits_for_all() -> None:
    run = running_stage_one()
    for items in (["a"], ["b"], ["c"]):
        run.dispatch_batch(1, items, T0, window=3)
    run.record_batch(1, 3, 1, 1, ["x3"], 2, T0)
    run.record_batch(1, 1, 1, 1, ["x1"], 0, T0)
    with pytest.raises(InvalidStateError, match="in flight"):
        run.complete_stage(1, T0)
    with pytest.raises(InvalidStateError, match="not in flight"):
        run.record_batch(1, 3, 1, 1, ["x3"], 2, T0)  # a batch is recorded once
    run.record_batch(1, 2, 1, 1, ["x2"], 0, T0)
    run.complete_stage(1, T0)
    assert run.stages[1]["processed"] == 3
    assert run.stages[1]["credits_used"] == 2
    assert run.in_flight == {}
    # Replaying the stored events gives the same state.
    again = replay(run.collect_events())
    assert again.completed_batches == {(1, 1), (1, 2), (1, 3)}
    assert again.in_flight == {}


def test_the_in_flight_batches_are_known_with_their_dispatch_time() -> None:
    run = running_stage_one()
    run.dispatch_batch(1, ["a"], T0, window=2)
    later = T0 + timedelta(seconds=5)
    run.dispatch_batch(1, ["b"], later, window=2)
    assert [(f["batch"], f["item_ids"], f["at"]) for f in run.in_flight.values()] == [
        (1, ["a"], T0),
        (2, ["b"], later),
    ]


@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40))
def test_a_fast_copy_equals_a_deep_copy_and_shares_nothing_mutable(stages: list[int]) -> None:
    run = running_stage_one()
    for number, stage in enumerate(stages):
        run.stages[stage]["processed"] += number  # vary the nested state
        run.completed_batches.add((stage, number))
    run.dispatch_batch(1, ["a", "b"], T0, window=2)
    run.collect_events()
    clone = copy.deepcopy(run)
    assert type(clone) is AutomationRun
    assert clone.__dict__ == run.__dict__
    # Changing the copy leaves the original as it was.
    before = copy.copy(run.stages[1])
    clone.stages[1]["processed"] += 1
    clone.completed_batches.add((9, 9))
    clone.in_flight[(1, 1)]["item_ids"].append("z")
    clone.config["stage_1_batch_size"] = 99
    assert run.stages[1] == before
    assert (9, 9) not in run.completed_batches
    assert run.in_flight[(1, 1)]["item_ids"] == ["a", "b"]
    assert run.config["stage_1_batch_size"] == 20


def test_a_fast_copy_of_an_account_keeps_its_reservations_apart() -> None:
    account = Account.open("acme")
    account.grant(100)
    run_id = new_run().id
    account.reserve(run_id, 40)
    clone = copy.deepcopy(account)
    clone.charge(run_id, 10)
    assert account.balance == 60
    assert account.reservations == {str(run_id): 40}
    assert clone.reservations != account.reservations
