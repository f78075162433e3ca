"""A per-model lock, so jobs on one model run one at a time and versions form a chain.

It is a PostgreSQL session advisory lock held on its own connection, outside any
transaction. PostgreSQL releases it when that connection closes, so a worker that dies
does not leave the model locked.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine


def lock_key(model_id: uuid.UUID) -> int:
    """Return the advisory lock key: the model id's first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(model_id.bytes[:8], "big", signed=True)


@contextmanager
def model_lock(engine: Engine, model_id: uuid.UUID) -> Iterator[bool]:
    """Try to take the model's lock; yield whether it was taken, and release it on exit."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        key = lock_key(model_id)
        acquired = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
