"""The Account aggregate: a tenant and its credits.

``balance`` is what the account can still spend: granted, less charged, less what active
runs hold in reservation. It never goes below zero: a reservation or charge that would
take it there is refused.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from automation.domain.copying import FastCopy
from automation.domain.errors import InsufficientCreditsError, InvalidValueError


class Account(FastCopy, Aggregate):
    INITIAL_VERSION = 1

    class AccountOpened(Aggregate.Created):
        name: str

    class CreditsGranted(Aggregate.Event):
        amount: int

    class CreditsReserved(Aggregate.Event):
        run_id: UUID
        amount: int

    class CreditsCharged(Aggregate.Event):
        run_id: UUID
        amount: int

    class ReservationReleased(Aggregate.Event):
        run_id: UUID

    @classmethod
    def open(cls, name: str) -> Account:
        if not name.strip() or len(name.strip()) > 200:
            raise InvalidValueError({"name": "must be 1 to 200 characters"})
        return cls(name=name.strip())

    @event(AccountOpened)
    def __init__(self, *, name: str) -> None:
        self.name = name
        self.balance = 0
        self.reservations: dict[str, int] = {}

    def grant(self, amount: int) -> None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InvalidValueError({"amount": "must be a positive whole number"})
        self._granted(amount=amount)

    def reserve(self, run_id: UUID, amount: int) -> None:
        _require_whole(amount)
        if amount > self.balance:
            raise InsufficientCreditsError(required=amount, balance=self.balance)
        self._reserved(run_id=run_id, amount=amount)

    def reserved_for(self, run_id: UUID) -> int:
        """What the account still holds for the run."""
        return self.reservations.get(str(run_id), 0)

    def payable_for(self, run_id: UUID) -> int:
        """The most a run can be charged: its reservation and the free balance."""
        return self.reservations.get(str(run_id), 0) + self.balance

    def charge(self, run_id: UUID, amount: int) -> None:
        """Charge a run's spend: from its reservation first, then from the free balance."""
        _require_whole(amount)
        held = self.reservations.get(str(run_id), 0)
        if amount - min(held, amount) > self.balance:
            raise InsufficientCreditsError(required=amount, balance=self.balance + held)
        self._charged(run_id=run_id, amount=amount)

    def release(self, run_id: UUID) -> None:
        if str(run_id) in self.reservations:
            self._released(run_id=run_id)

    @event(CreditsGranted)
    def _granted(self, amount: int) -> None:
        self.balance += amount

    @event(CreditsReserved)
    def _reserved(self, run_id: UUID, amount: int) -> None:
        self.balance -= amount
        self.reservations[str(run_id)] = self.reservations.get(str(run_id), 0) + amount

    @event(CreditsCharged)
    def _charged(self, run_id: UUID, amount: int) -> None:
        held = self.reservations.get(str(run_id), 0)
        from_reservation = min(held, amount)
        if str(run_id) in self.reservations:
            self.reservations[str(run_id)] = held - from_reservation
        self.balance -= amount - from_reservation

    @event(ReservationReleased)
    def _released(self, run_id: UUID) -> None:
        self.balance += self.reservations.pop(str(run_id))


def _require_whole(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidValueError({"amount": "must be a whole number of credits, 0 or more"})
