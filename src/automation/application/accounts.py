"""Accounts, their API tokens and their credits."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from automation.application.base import AppBase, Written
from automation.domain.account import Account
from automation.domain.errors import AccountNotFoundError
from automation.domain.token import ApiToken, hash_token, new_token


class AccountCommands(AppBase):
    def open_account(self, name: str, credits: int = 0) -> tuple[UUID, str]:
        account = Account.open(name)
        if credits:
            account.grant(credits)
        token = new_token()
        self.save(account, ApiToken(hash_token(token), account.id))
        return account.id, token

    def issue_token(self, account_id: UUID) -> str:
        self._get(Account, account_id, AccountNotFoundError, to_change=False)
        token = new_token()
        self.save(ApiToken(hash_token(token), account_id))
        return token

    def grant_credits(self, account_id: UUID, amount: int) -> int:
        def grant() -> Written:
            account = self._get(Account, account_id, AccountNotFoundError)
            account.grant(amount)
            return Written(account.balance, self._save(account))

        return int(self._retrying(grant).value)

    def balance(self, account_id: UUID) -> int:
        return int(self._get(Account, account_id, AccountNotFoundError, to_change=False).balance)

    def authenticate(self, token: str) -> UUID | None:
        """The account a token belongs to, or None for an unknown token."""
        try:
            api_token: Aggregate = self.repository.get(ApiToken.id_for(token))
        except AggregateNotFoundError:
            return None
        if not isinstance(api_token, ApiToken) or not api_token.matches(token):
            return None
        return api_token.account_id
