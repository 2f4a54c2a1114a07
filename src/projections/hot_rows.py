"""The hot reads' rows for many sites in one query: current_run's and history's JSON text.

The API groups concurrent reads of one kind into one of these queries
(``automation.api.read_groups``); one site's read is the same query with one id.
"""

from __future__ import annotations

from collections.abc import Sequence

from automation.adapters.sql import Tx


def _bodies(tx: Tx, table: str, site_ids: Sequence[str]) -> dict[str, str]:
    marks = ",".join("?" * len(site_ids))
    rows = tx.fetchall(f"SELECT site_id, body FROM {table} WHERE site_id IN ({marks})", site_ids)
    return {str(site): str(body) for site, body in rows}


def current_run_bodies(tx: Tx, site_ids: Sequence[str]) -> dict[str, str]:
    """Each listed site's active run as JSON text; a site without one is left out."""
    return _bodies(tx, "current_runs", site_ids)


def history_bodies(tx: Tx, site_ids: Sequence[str]) -> dict[str, str]:
    """Each listed site's ``{"runs": [...]}`` as JSON text; a site with no runs is left out."""
    return _bodies(tx, "site_history", site_ids)
