"""One SQLite file opened the one way every store needs: WAL, a busy timeout, SQLITE_BUSY waited out.

Several processes (the workers of one host) open the same files. Three things make that safe, and
a store that forgets one fails only under load, so they live here once:

- WAL mode, so readers never wait for the writer. Switching a file to WAL needs a moment alone with
  it, and SQLite answers SQLITE_BUSY *at once* when another process has the file open (the busy
  handler is not consulted for that pragma): two processes starting together on a new file saw
  "database is locked". The switch is therefore retried here until the busy timeout.
- A busy timeout, so a writer queues behind another writer instead of failing.
- `BEGIN IMMEDIATE` for writes: the write lock is taken before the first read, so a
  read-decide-write cannot act on a stale read or fail half way when upgrading its lock.

Each call gets a connection of its own, opened and closed within it, so connections are never
shared between threads. Errors stay `sqlite3` errors: each store turns them into its own typed
"unavailable" answer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

Schema = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class SqlitePolicy:
    """How long a call waits for another process's lock before SQLite says "database is locked"."""

    busy_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.busy_timeout_s <= 0:
            raise ValueError("busy_timeout_s must be > 0")


#: What every store uses unless `bot.wiring` (or a test) hands it another policy.
DEFAULT_SQLITE = SqlitePolicy()


class SqliteFile:
    """A store's SQLite file: `transaction()` for every read and write, `schema` run once per object.

    `schema` runs inside the first write transaction (after the switch to WAL), so processes
    starting together create the tables one after the other; it should use `IF NOT EXISTS`. The
    folder is created when missing.
    """

    def __init__(
        self, path: Path, policy: SqlitePolicy = DEFAULT_SQLITE, schema: Schema | None = None
    ) -> None:
        self.path = Path(path)
        self.policy = policy
        self._schema = schema
        self._ready = False
        self._ready_lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A fresh connection in autocommit mode (transactions are begun explicitly), schema in place."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self.policy.busy_timeout_s, isolation_level=None)
        try:
            connection.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses no commit
            if not self._ready:
                with self._ready_lock:
                    if not self._ready:
                        self._prepare(connection)
                        self._ready = True
        except BaseException:
            connection.close()
            raise
        return connection

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction on its own connection: committed when the block ends, rolled back on error."""
        connection = self.connect()
        try:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        enable_wal(connection, self.policy.busy_timeout_s)
        if self._schema is None:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            self._schema(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise


def enable_wal(connection: sqlite3.Connection, timeout_s: float) -> None:
    """`PRAGMA journal_mode = WAL`, retried while another connection holds the file (see above).

    WAL is a property of the file: once one process has set it, later opens find it set.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
