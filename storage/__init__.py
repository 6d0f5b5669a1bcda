"""SQLite persistence: connection and migrations, repositories per aggregate, the FSM storage.

SQL lives only in this package.
"""
