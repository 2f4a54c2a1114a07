"""Fast copies of aggregates for the repository's cache.

The event store's repository hands out a deep copy of a cached aggregate, so a command
that changes it and then fails leaves the cache untouched. ``copy.deepcopy`` is generic
and slow: on a run with a few hundred recorded batches it cost more than the rest of
loading the run. The state of these aggregates is made of plain values, so a copy that
shares what is immutable and copies containers is exact, and many times faster.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Self
from uuid import UUID

# Values that nothing ever changes in place: shared between the copies.
_IMMUTABLE: frozenset[type] = frozenset(
    {int, float, bool, str, bytes, type(None), UUID, datetime, date, time, timedelta, Decimal}
)


def copy_value(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE or isinstance(value, Enum):
        return value
    if kind is dict:
        return {key: copy_value(item, memo) for key, item in value.items()}
    if kind is list:
        return [copy_value(item, memo) for item in value]
    if kind is set:
        return set(value)  # members are hashable, so immutable here (ints, strs, tuples)
    if kind is tuple and all(type(item) in _IMMUTABLE for item in value):
        return value
    return deepcopy(value, memo)  # anything else: the generic, always-correct way


class FastCopy:
    """Gives an aggregate a ``__deepcopy__`` that copies its state with ``copy_value``."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update({k: copy_value(v, memo) for k, v in self.__dict__.items()})
        return clone
