"""A run spends only what it holds: its reservation, topped up from the free balance.

Every charge of an active run comes out of its reservation. When a batch costs more than is
left, the run first tops the reservation up from the account's free balance, in the same
save as the charge; when the free balance cannot cover it either, the run pauses awaiting
credits (a grant and a resume carry it on), so the balance never goes below zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from automation.domain.account import Account
from automation.domain.run import AWAITING_CREDITS, AutomationRun
from automation.domain.values import RunStatus

# A run whose reservation is spent tops it up by this part of its estimate at a time.
TOP_UP_PARTS = 10


def payable_now(run: AutomationRun, account: Account, cost: int) -> int:
    """What a batch of ``cost`` credits can be charged, topping the reservation up first.
    A run that has ended (a batch that finished after a cancel) pays from the free balance."""
    if not run.is_active:
        return min(cost, account.payable_for(run.id))
    short = cost - account.reserved_for(run.id)
    if short > 0 and account.balance > 0:
        _top_up(run, account, min(short, account.balance))
    return min(cost, account.reserved_for(run.id))


def afford_more(
    run: AutomationRun, account: Account | None, load: Callable[[], Account], now: datetime
) -> Account | None:
    """Before more work is dispatched: a running run whose reservation is spent tops it up
    from the free balance, or pauses awaiting credits when there is none. Returns the
    account if it was loaded (to be saved with the run). A run estimated and so far
    charged at nothing (a free provider) needs no credit to go on."""
    if run.status is not RunStatus.RUNNING or run.credits_left > 0:
        return account
    if run.reserved_credits == 0 and run.total_credits_used == 0:
        return account
    account = account or load()
    amount = min(account.balance, max(1, run.estimated_credits // TOP_UP_PARTS))
    if amount > 0:
        _top_up(run, account, amount)
    else:
        run.pause(now, AWAITING_CREDITS)
    return account


def _top_up(run: AutomationRun, account: Account, amount: int) -> None:
    account.reserve(run.id, amount)
    run.top_up_reservation(amount)
