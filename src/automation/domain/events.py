"""Which event classes an aggregate stores, found on the aggregate class itself.

Every event is a class nested in its aggregate (``AutomationRun.BatchCompleted``). The
library also puts two bases on every aggregate, ``Event`` and ``Created``, which nothing
stores; everything else nested there is an event that the store may hold.
"""

from __future__ import annotations

from eventsourcing.domain import DomainEvent

_LIBRARY_BASES = frozenset({"Event", "Created"})


def event_classes(aggregate: type) -> frozenset[type[DomainEvent]]:
    """The classes of the events ``aggregate`` records."""
    return frozenset(
        value
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, DomainEvent) and name not in _LIBRARY_BASES
    )
