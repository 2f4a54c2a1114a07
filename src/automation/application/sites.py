"""Sites and their automation configuration."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from automation.application.base import AppBase, Written
from automation.domain.errors import SiteNotFoundError
from automation.domain.site import Site


class SiteCommands(AppBase):
    def register_site(self, account_id: UUID, name: str, timezone: str) -> Written:
        site = Site.register(account_id, name, timezone, self.clock.now())
        return Written(site, self._save(site))

    def site(self, account_id: UUID, site_id: UUID) -> Site:
        """A site of this account; any other is answered exactly like a missing one."""
        site = self._get(Site, site_id, SiteNotFoundError)
        if site.account_id != account_id:
            raise SiteNotFoundError()
        return site

    def update_config(self, account_id: UUID, site_id: UUID, changes: dict[str, Any]) -> Written:
        def update() -> Written:
            site = self.site(account_id, site_id)
            site.update_config(changes, self.clock.now())
            return Written(site, self._save(site))

        return self._retrying(update)
