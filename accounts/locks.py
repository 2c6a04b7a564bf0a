"""A lock held for the rest of the current transaction, for check-then-write sequences."""

from __future__ import annotations

from django.db import connection


def transaction_lock(key: str) -> None:
    """Hold ``key`` until the current transaction ends.

    PostgreSQL: an advisory lock on the key's hash (a rare collision only makes two unrelated
    requests wait for each other). SQLite needs nothing: the settings begin every transaction
    IMMEDIATE, so writing transactions already run one at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
