"""Alembic environment: each migration in a transaction of its own, on the connection
the caller hands over (online), or as SQL text (offline: tests read what each
migration's transaction runs)."""

from alembic import context

if context.is_offline_mode():
    context.configure(
        dialect_name="postgresql",
        transactional_ddl=True,
        transaction_per_migration=True,
        output_buffer=context.config.output_buffer,
    )
else:
    context.configure(
        connection=context.config.attributes["connection"],
        transactional_ddl=True,
        transaction_per_migration=True,
    )
with context.begin_transaction():
    context.run_migrations()
