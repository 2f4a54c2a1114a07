"""The Account aggregate: credits granted, reserved for runs, charged and released.

The documented invariant: ``balance`` = granted - charged - held in reservations, and it is
never negative.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.domain.account import Account
from automation.domain.errors import DomainError, InsufficientCreditsError, InvalidValueError


def account_with(credits: int) -> Account:
    account = Account.open("Acme")
    if credits:
        account.grant(credits)
    account.collect_events()
    return account


def state(account: Account) -> tuple[int, int, dict[str, int]]:
    return account.version, account.balance, dict(account.reservations)


def names(events: Any) -> list[str]:
    return [type(e).__name__ for e in events]


# --- opening and granting ----------------------------------------------------------------


def test_a_new_account_has_nothing() -> None:
    account = Account.open("  Acme  ")
    assert account.name == "Acme"
    assert account.balance == 0
    assert account.reservations == {}
    assert names(account.collect_events()) == ["AccountOpened"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_an_account_needs_a_name_of_1_to_200_characters(name: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        Account.open(name)
    assert set(caught.value.fields) == {"name"}


def test_a_name_of_200_characters_is_fine() -> None:
    assert Account.open("x" * 200).name == "x" * 200


def test_grants_add_up() -> None:
    account = account_with(0)
    account.grant(10)
    account.grant(32)
    assert account.balance == 42
    assert names(account.collect_events()) == ["CreditsGranted", "CreditsGranted"]


@pytest.mark.parametrize("amount", [0, -1, -100, True, False, 1.5, 2.0, "5", None])
def test_a_grant_must_be_a_positive_whole_number(amount: Any) -> None:
    account = account_with(10)
    before = state(account)
    with pytest.raises(InvalidValueError) as caught:
        account.grant(amount)
    assert set(caught.value.fields) == {"amount"}
    assert account.collect_events() == []
    assert state(account) == before


# --- reserving ---------------------------------------------------------------------------


def test_a_reservation_holds_credits_for_a_run() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 30)
    assert account.balance == 70
    assert account.reservations == {str(run): 30}
    assert names(account.collect_events()) == ["CreditsReserved"]


def test_the_whole_balance_can_be_reserved() -> None:
    account = account_with(100)
    account.reserve(uuid4(), 100)
    assert account.balance == 0


def test_reserving_nothing_is_allowed_even_with_nothing() -> None:
    account = account_with(0)
    run = uuid4()
    account.reserve(run, 0)
    assert account.balance == 0
    assert account.reservations == {str(run): 0}


def test_reserving_more_than_the_balance_is_refused() -> None:
    account = account_with(100)
    account.reserve(uuid4(), 40)
    account.collect_events()
    before = state(account)
    with pytest.raises(InsufficientCreditsError) as caught:
        account.reserve(uuid4(), 61)
    assert (caught.value.required, caught.value.balance) == (61, 60)
    assert caught.value.details == {"required": 61, "balance": 60}
    assert caught.value.code == "insufficient_credits"
    assert account.collect_events() == []
    assert state(account) == before


def test_reserving_twice_for_one_run_loses_no_credits() -> None:
    """A second reservation for a run must not make the first one's credits vanish:
    after releasing the run every credit not charged is back."""
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 60)
    with contextlib.suppress(DomainError):  # refusing it is one correct answer
        account.reserve(run, 10)
    held = sum(account.reservations.values())
    assert account.balance + held == 100, (account.balance, account.reservations)
    account.release(run)
    assert account.balance == 100


def test_a_negative_reservation_cannot_drive_the_balance_below_zero() -> None:
    account = account_with(100)
    odd, other = uuid4(), uuid4()
    with contextlib.suppress(DomainError):  # refusing it is the expected answer
        account.reserve(odd, -50)
    assert account.balance <= 100, "a reservation must not add credits"
    account.reserve(other, account.balance)
    account.release(odd)
    assert account.balance >= 0


# --- charging ----------------------------------------------------------------------------


def test_a_charge_within_the_reservation_leaves_the_balance_alone() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 30)
    account.charge(run, 12)
    assert account.balance == 70
    assert account.reservations == {str(run): 18}
    account.charge(run, 18)
    assert account.balance == 70
    assert account.reservations == {str(run): 0}
    assert names(account.collect_events()) == [
        "CreditsReserved",
        "CreditsCharged",
        "CreditsCharged",
    ]


def test_a_charge_beyond_the_reservation_takes_the_rest_from_the_balance() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 30)
    account.charge(run, 45)
    assert account.reservations == {str(run): 0}
    assert account.balance == 55
    account.charge(run, 5)
    assert account.balance == 50


def test_a_charge_without_a_reservation_takes_from_the_balance() -> None:
    account = account_with(100)
    account.charge(uuid4(), 25)
    assert account.balance == 75
    assert account.reservations == {}


def test_a_charge_may_use_up_the_reservation_and_the_balance_exactly() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 30)
    account.charge(run, 100)
    assert account.balance == 0
    assert account.reservations == {str(run): 0}


def test_a_charge_that_would_go_negative_is_refused() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 30)
    account.collect_events()
    before = state(account)
    with pytest.raises(InsufficientCreditsError) as caught:
        account.charge(run, 101)
    # What the run could have spent: its reservation and the free balance.
    assert (caught.value.required, caught.value.balance) == (101, 100)
    assert account.collect_events() == []
    assert state(account) == before


def test_a_charge_without_a_reservation_that_would_go_negative_is_refused() -> None:
    account = account_with(10)
    before = state(account)
    with pytest.raises(InsufficientCreditsError) as caught:
        account.charge(uuid4(), 11)
    assert (caught.value.required, caught.value.balance) == (11, 10)
    assert state(account) == before


@pytest.mark.parametrize("amount", [-1, -10])
def test_a_negative_charge_mints_no_credits(amount: int) -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 5)
    with contextlib.suppress(DomainError):  # refusing it is the expected answer
        account.charge(run, amount)
    account.release(run)
    assert account.balance <= 100, "only a grant may add credits"


# --- releasing ---------------------------------------------------------------------------


def test_release_returns_only_the_unused_part() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 40)
    account.charge(run, 15)
    account.release(run)
    assert account.balance == 85
    assert account.reservations == {}
    assert names(account.collect_events())[-1] == "ReservationReleased"


def test_release_after_overspending_returns_nothing() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 40)
    account.charge(run, 50)
    account.release(run)
    assert account.balance == 50


def test_release_of_an_unknown_or_released_run_does_nothing() -> None:
    account = account_with(100)
    run = uuid4()
    account.reserve(run, 40)
    account.release(run)
    account.collect_events()
    before = state(account)
    account.release(run)
    account.release(uuid4())
    assert account.collect_events() == []
    assert state(account) == before


def test_releasing_one_run_leaves_the_others_reserved() -> None:
    account = account_with(100)
    first, second = uuid4(), uuid4()
    account.reserve(first, 10)
    account.reserve(second, 20)
    account.release(first)
    assert account.balance == 80
    assert account.reservations == {str(second): 20}


# --- random sequences --------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 200), st.just(0)),
        st.tuples(st.just("reserve"), st.integers(0, 300), st.just(0)),
        st.tuples(st.just("charge"), st.integers(0, 300), st.integers(0, 20)),
        st.tuples(st.just("release"), st.just(0), st.integers(0, 20)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 500), ops=operations)
def test_the_balance_is_never_negative_and_always_adds_up(
    start: int, ops: list[tuple[str, int, int]]
) -> None:
    account = Account.open("Acme")
    if start:
        account.grant(start)
    granted, charged = start, 0
    runs: list[UUID] = []  # every reservation is for a new run, as the application does
    for kind, amount, which in ops:
        before = state(account)
        run = runs[which % len(runs)] if runs and kind != "reserve" else uuid4()
        if kind == "grant":
            account.grant(amount)
            granted += amount
        elif kind == "reserve":
            if amount > account.balance:
                with pytest.raises(InsufficientCreditsError):
                    account.reserve(run, amount)
                assert state(account) == before
            else:
                account.reserve(run, amount)
                runs.append(run)
        elif kind == "charge":
            held = account.reservations.get(str(run), 0)
            if amount > account.balance + held:
                with pytest.raises(InsufficientCreditsError):
                    account.charge(run, amount)
                assert state(account) == before
            else:
                account.charge(run, amount)
                charged += amount
                assert account.balance == before[1] - max(0, amount - held)
        else:
            held = account.reservations.get(str(run), 0)
            account.release(run)
            assert account.balance == before[1] + held
            assert str(run) not in account.reservations
        assert account.balance >= 0
        assert all(held >= 0 for held in account.reservations.values())
        assert account.balance == granted - charged - sum(account.reservations.values())
    replayed: Any = None
    for domain_event in account.collect_events():
        replayed = domain_event.mutate(replayed)
    assert isinstance(replayed, Account)
    assert state(replayed) == state(account)
