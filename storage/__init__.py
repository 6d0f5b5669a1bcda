"""SQLite persistence: connection and migrations, repositories per aggregate, the FSM storage.

SQL lives only in this package.
"""

SQLITE_INTEGER = range(-(2**63), 2**63)


def storable(row_id: int) -> bool:
    """Whether SQLite can hold this integer. An id from outside (callback data can be forged)
    that it cannot hold names no row, and would make the query fail."""
    return row_id in SQLITE_INTEGER
