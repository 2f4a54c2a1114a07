"""The event catalogue names every event class of every aggregate exactly once, under the
names that docs/events.md and the public contract give it."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from eventsourcing.domain import BaseAggregate, DomainEvent

import automation.domain
from automation.application.event_catalogue import CATALOGUE, TERMINAL_TYPES, published
from automation.domain.events import event_classes
from automation.domain.run import AutomationRun
from projections.run_document import ENDINGS, RUN_EVENTS

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
# A row of docs/events.md's tables: | `Name` | `routing.key` | `automation.routing.key.v1` |
DOC_ROW = re.compile(r"^\| `(\w+)` \| `([\w.]+)` \| `([\w.]+)` \|", re.MULTILINE)
# What ../shared/CONTRACT.md promises by name: the listing's types and the routing keys.
CONTRACT_TYPES = {
    "RunStarted",
    "StageStarted",
    "StageCompleted",
    "CreditsConsumed",
    "RunPaused",
    "RunResumed",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
}
CONTRACT_KEYS = {
    "run.started",
    "run.stage_completed",
    "run.credits_consumed",
    "run.paused",
    "run.resumed",
    "run.cancelled",
    "run.completed",
    "run.failed",
    "config.updated",
}


def aggregates() -> list[type]:
    """Every aggregate class defined in the domain package, found by importing it."""
    found = []
    for module in pkgutil.iter_modules(automation.domain.__path__):
        loaded = importlib.import_module(f"automation.domain.{module.name}")
        found += [
            value
            for value in vars(loaded).values()
            if isinstance(value, type)
            and issubclass(value, BaseAggregate)
            and value.__module__ == loaded.__name__
        ]
    return found


def test_every_event_class_of_every_aggregate_is_in_the_catalogue_exactly_once() -> None:
    found = aggregates()
    assert {a.__name__ for a in found} >= {
        "AutomationRun",
        "Site",
        "Account",
        "ApiToken",
        "ScheduledSlot",
    }
    classes = [kind for aggregate in found for kind in event_classes(aggregate)]
    assert len(classes) == len(set(classes))
    assert set(classes) == set(CATALOGUE)
    for kind in classes:  # each one nested in its aggregate, as the stored topic says
        assert issubclass(kind, DomainEvent)
        assert kind.__qualname__.count(".") == 1
    # No two classes go out under one name or one routing key.
    assert len({p.name for p in CATALOGUE.values()}) == len(CATALOGUE)
    assert len({p.routing_key for p in CATALOGUE.values()}) == len(CATALOGUE)


def test_the_published_names_are_the_documented_ones() -> None:
    documented = {m[0]: (m[1], m[2]) for m in DOC_ROW.findall(EVENTS_DOC.read_text())}
    assert documented == {p.name: (p.routing_key, p.cloud_event_type) for p in CATALOGUE.values()}
    assert {p.name for p in CATALOGUE.values()} >= CONTRACT_TYPES
    assert {p.routing_key for p in CATALOGUE.values()} >= CONTRACT_KEYS
    stage_completed = published(_event(AutomationRun.StageCompleted))
    assert stage_completed.cloud_event_type == "automation.run.stage_completed.v1"


def test_the_run_events_readers_follow_are_the_run_stream_s_and_three_end_it() -> None:
    assert event_classes(AutomationRun) == RUN_EVENTS
    assert {CATALOGUE[kind].routing_key.split(".")[0] for kind in RUN_EVENTS} == {"run"}
    assert {CATALOGUE[kind].name for kind in ENDINGS} == TERMINAL_TYPES
    assert {"RunCompleted", "RunFailed", "RunCancelled"} == TERMINAL_TYPES


def test_an_event_class_missing_from_the_catalogue_goes_out_under_other() -> None:
    class Unlisted(AutomationRun.Event):
        pass

    shown = published(_event(Unlisted))
    assert (shown.name, shown.routing_key) == ("Unlisted", "other.unlisted")


def _event(kind: type) -> object:
    """An instance of an event class, without the fields its constructor would want."""
    return object.__new__(kind)
