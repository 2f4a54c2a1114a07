"""A small SQL database handle over SQLite or PostgreSQL, for read models and content.

Statements are written once with ``?`` placeholders and portable types; the PostgreSQL
handle rewrites the placeholders for psycopg. Writers get one transaction per ``write()``
block; readers get a connection of their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool

from automation.adapters.pg_pool import install_check

Row = tuple[Any, ...]


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert many rows into one table, the fastest way the database loads them (COPY on
        PostgreSQL); returns how many were inserted."""
        ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: Literal["sqlite", "postgres"]

    def write(self) -> AbstractContextManager[Tx]:
        """A Tx inside one transaction, committed when the block ends without an error."""
        ...

    def read(self) -> AbstractContextManager[Tx]:
        """A Tx for reads."""
        ...

    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        marks = ", ".join("?" * len(columns))
        cursor = self.conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )
        return max(cursor.rowcount, 0)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, params).fetchall())


class SqliteDatabase:
    """One SQLite file in WAL mode: writers take turns, readers never wait for them."""

    dialect: Literal["sqlite", "postgres"] = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._writer)
                self._writer.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    def _roll_back(self) -> None:
        """Undo a failed write, the COMMIT included (a full disk fails it), so the writer
        never stays inside a transaction that fails every later BEGIN. SQLite may already
        have rolled back by itself; a connection that cannot roll back is replaced."""
        try:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()
            self._writer = self._connect()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield _SqliteTx(conn)

    def close(self) -> None:
        self._writer.close()


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx:
    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.cursor.execute(_pg(sql), params)
        return self.cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cursor.executemany(_pg(sql), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        # COPY streams the rows in one statement: several times faster than even a
        # pipelined executemany of INSERTs, which matters when a rebuild writes a whole view.
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
        )
        count = 0
        with self.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.cursor.execute(_pg(sql), params)
        return self.cursor.fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.cursor.execute(_pg(sql), params)
        return self.cursor.fetchall()


class PostgresDatabase:
    """A psycopg connection pool; ``schema`` keeps one deployment's tables apart."""

    dialect: Literal["sqlite", "postgres"] = "postgres"

    def __init__(self, url: str, schema: str | None = None, pool_size: int = 10) -> None:
        kwargs: dict[str, Any] = {"autocommit": True}
        if schema:
            kwargs["options"] = f"-c search_path={schema}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=kwargs, open=False
        )
        install_check(self.pool)  # no connection the server has ended is handed out
        self.pool.open()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PostgresTx(cursor)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.cursor() as cursor:
            yield _PostgresTx(cursor)

    def close(self) -> None:
        self.pool.close()


def advisory_lock_key(*names: str) -> int:
    """A PostgreSQL advisory lock's key for what ``names`` name (a schema and a table, a
    schema and a role): a stable signed 64-bit number derived from them."""
    digest = hashlib.sha256(".".join(names).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def schema_lock(url: str | None) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while tables are created: processes starting at the
    same moment would otherwise race on the catalog ("tuple concurrently updated")."""
    if not url:
        yield
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('automation-schema'))")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('automation-schema'))")
