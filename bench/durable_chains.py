"""The pipeline benchmark's second baseline: textbook durable chains of seven steps.

What "every step is durable" costs at the least, on the same RabbitMQ and PostgreSQL:
each step of a chain is a persistent message on a durable queue, taken by a worker that
commits one row to PostgreSQL (the step's record), publishes the next step (a persistent
message, confirmed by the broker) and only then acks. A crash at any point loses nothing;
a redelivery would write the row again (a real service also has to make that idempotent).

Run ``python -m bench.durable_chains worker --amqp URL --postgres DSN --table T --queue Q``
in each worker process (``bench.pipeline`` starts as many as Celery has pool processes);
the submitting side calls ``run_chains``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import aio_pika
import orjson
import psycopg
from psycopg import sql

CHAIN_LENGTH = 7
PREFETCH = 10


def done_queue(queue: str) -> str:
    return queue + ".done"


def create_table(dsn: str, table: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (chain bigint, step int, PRIMARY KEY (chain, step))"
            ).format(sql.Identifier(table))
        )


def drop_table(dsn: str, table: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


async def work(amqp_url: str, dsn: str, table: str, queue_name: str) -> None:
    """Take steps one at a time, as a Celery pool process does, until killed."""
    insert = sql.SQL("INSERT INTO {} (chain, step) VALUES (%s, %s)").format(sql.Identifier(table))
    async with await psycopg.AsyncConnection.connect(dsn) as db:
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=PREFETCH)
            queue = await channel.declare_queue(queue_name, durable=True)
            await channel.declare_queue(done_queue(queue_name), durable=True)
            async with queue.iterator() as messages:
                async for message in messages:
                    chain, step = orjson.loads(message.body)
                    async with db.transaction():
                        await db.execute(insert, (chain, step))
                    last = step == CHAIN_LENGTH
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            orjson.dumps([chain, step + 1]),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=done_queue(queue_name) if last else queue_name,
                    )
                    await message.ack()


@dataclass(frozen=True)
class ChainsResult:
    chains: int
    seconds: float
    missing: int  # chains that did not come back, or came back wrong

    @property
    def chains_per_s(self) -> float:
        return self.chains / self.seconds if self.seconds > 0 else 0.0


async def run_chains(
    amqp_url: str, queue_name: str, count: int, first: int, timeout_s: float
) -> ChainsResult:
    """Submit ``count`` chains at once; time until every chain's last step is back."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True)
        done = await channel.declare_queue(done_queue(queue_name), durable=True)
        wanted = set(range(first, first + count))
        started = time.perf_counter()
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        orjson.dumps([chain, 1]), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=queue_name,
                )
                for chain in sorted(wanted)
            )
        )
        try:
            async with asyncio.timeout(timeout_s), done.iterator() as messages:
                async for message in messages:
                    chain, step = orjson.loads(message.body)
                    await message.ack()
                    if step == CHAIN_LENGTH + 1:
                        wanted.discard(chain)
                    if not wanted:
                        break
        except TimeoutError:
            pass
        return ChainsResult(count, time.perf_counter() - started, len(wanted))


def main() -> None:
    parser = argparse.ArgumentParser(description="A worker of the durable-chains baseline.")
    parser.add_argument("role", choices=["worker"])
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--queue", required=True)
    args = parser.parse_args()
    asyncio.run(work(args.amqp, args.postgres, args.table, args.queue))


if __name__ == "__main__":
    main()
