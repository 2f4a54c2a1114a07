"""API tokens: random, long, stored only as a hash, found by an id derived from that hash."""

from __future__ import annotations

import base64
import hashlib
import math
import string
from collections import Counter
from uuid import uuid4

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from automation.application.app import AutomationApp
from automation.domain.token import ApiToken, hash_token, new_token

URLSAFE = set(string.ascii_letters + string.digits + "-_")
PREFIX = "atk_"


def body(token: str) -> str:
    assert token.startswith(PREFIX)
    return token[len(PREFIX) :]


def test_tokens_are_long_and_urlsafe() -> None:
    for _ in range(200):
        token = new_token()
        random_part = body(token)
        assert set(random_part) <= URLSAFE
        # 6 bits per base64 character: at least 128 bits of randomness.
        assert len(random_part) * 6 >= 128
        raw = base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))
        assert len(raw) >= 16


def test_tokens_are_unique_and_look_random() -> None:
    tokens = [new_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    assert len({body(t)[:8] for t in tokens}) == len(tokens)  # even short prefixes differ
    # Every character position varies across tokens.
    for position in range(len(body(tokens[0])) - 1):
        assert len({body(t)[position] for t in tokens}) > 30
    # The characters are spread over the alphabet, not bunched on a few.
    counts = Counter("".join(body(t) for t in tokens))
    assert len(counts) == 64
    expected = sum(counts.values()) / 64
    assert max(counts.values()) < 1.5 * expected
    # Shannon entropy per character close to the 6 bits of the alphabet.
    total = sum(counts.values())
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    assert entropy > 5.9


def test_the_hash_is_sha256_hex() -> None:
    token = new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(hash_token(token)) == 64


def test_only_the_hash_is_kept() -> None:
    token = new_token()
    account_id = uuid4()
    api_token = ApiToken(hash_token(token), account_id)
    assert api_token.token_hash == hash_token(token)
    assert api_token.account_id == account_id
    assert token not in repr(vars(api_token))
    (issued,) = api_token.collect_events()
    assert type(issued).__name__ == "TokenIssued"
    assert issued.token_hash == hash_token(token)  # type: ignore[attr-defined]
    assert token not in repr(vars(issued))
    assert body(token) not in repr(vars(issued))


def test_the_stored_events_hold_no_token() -> None:
    app = AutomationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    account_id, token = app.open_account("Acme", 10)
    second = app.issue_token(account_id)
    stored = app.recorder.select_notifications(start=None, limit=1000)
    assert stored
    for record in stored:
        for secret in (token, second):
            assert body(secret).encode() not in record.state
    assert any(hash_token(token).encode() in record.state for record in stored)


def test_authenticate_with_the_token_and_nothing_else() -> None:
    app = AutomationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    account_id, token = app.open_account("Acme")
    other_account, other_token = app.open_account("Globex")
    assert app.authenticate(token) == account_id
    assert app.authenticate(other_token) == other_account
    assert app.authenticate(new_token()) is None
    assert app.authenticate(token + "x") is None
    assert app.authenticate("") is None


def test_matches_the_token_only() -> None:
    token = new_token()
    api_token = ApiToken(hash_token(token), uuid4())
    assert api_token.matches(token)
    assert not api_token.matches(new_token())
    assert not api_token.matches(token[:-1])
    assert not api_token.matches(token + " ")
    assert not api_token.matches(token.upper())
    assert not api_token.matches(hash_token(token))
    assert not api_token.matches("")


@settings(max_examples=200, deadline=None)
@given(guess=st.text(max_size=80))
def test_matches_is_false_for_any_other_string(guess: str) -> None:
    token = new_token()
    assume(guess != token)
    assert not ApiToken(hash_token(token), uuid4()).matches(guess)


def test_the_id_is_derived_from_the_hash() -> None:
    token = new_token()
    first = ApiToken(hash_token(token), uuid4())
    second = ApiToken(hash_token(token), uuid4())
    assert first.id == second.id == ApiToken.id_for(token)
    assert ApiToken.id_for(token) == ApiToken.create_id(hash_token(token))
    assert ApiToken(hash_token(new_token()), uuid4()).id != first.id


def test_ids_of_different_tokens_differ() -> None:
    tokens = [new_token() for _ in range(500)]
    assert len({ApiToken.id_for(t) for t in tokens}) == len(tokens)
