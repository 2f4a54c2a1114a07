"""Use cases: one method per command, over ports. Knows no HTTP, AMQP or SQL."""
