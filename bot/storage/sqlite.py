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
shared between threads. A store that keeps one connection instead (the job queue, whose single
thread owns it) takes it from `SqliteFile.connect()`, which opens it the same way, and runs its
transactions with `begin()`, the same transaction `SqliteFile.transaction()` runs. How each commit
is synced is the policy's `synchronous` (NORMAL, or FULL where an acknowledged write must survive
power loss too). Errors stay `sqlite3` errors: each store turns them into its own typed
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
from typing import Any, Literal

Schema = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class SqlitePolicy:
    """How long a call waits for another process's lock before SQLite says "database is locked",
    and how commits are synced to disk.

    `synchronous`: NORMAL is safe with WAL against a crash of the process (no commit is lost) but a
    power loss may lose the last commits; FULL syncs the WAL at every commit, so a write that was
    acknowledged survives power loss too (the job queue's accepted jobs), at the price of a sync each.
    """

    busy_timeout_s: float = 5.0
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    def __post_init__(self) -> None:
        if self.busy_timeout_s <= 0:
            raise ValueError("busy_timeout_s must be > 0")
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")


#: What every store uses unless `bot.wiring` (or a test) hands it another policy.
DEFAULT_SQLITE = SqlitePolicy()


class SqliteFile:
    """A store's SQLite file: `transaction()` for every read and write, `schema` run once per object.

    `schema` runs inside the first write transaction (after the switch to WAL), so processes
    starting together create the tables one after the other; it should use `IF NOT EXISTS`. The
    folder is created when missing. `row_factory` is set on every connection (before the schema
    runs), for a store that reads rows by column name (`sqlite3.Row`).
    """

    def __init__(
        self,
        path: Path,
        policy: SqlitePolicy = DEFAULT_SQLITE,
        schema: Schema | None = None,
        *,
        row_factory: Callable[[sqlite3.Cursor, tuple[Any, ...]], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.policy = policy
        self._schema = schema
        self._row_factory = row_factory
        self._ready = False
        self._ready_lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A fresh connection in autocommit mode (transactions are begun explicitly), schema in place.

        The caller owns it: closed by `transaction()`, or kept and closed by a store that keeps one.
        """
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self.policy.busy_timeout_s, isolation_level=None)
        if self._row_factory is not None:
            connection.row_factory = self._row_factory
        try:
            connection.execute(f"PRAGMA synchronous = {self.policy.synchronous}")  # validated: a name
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
            with begin(connection, write=write):
                yield connection
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        enable_wal(connection, self.policy.busy_timeout_s)
        if self._schema is None:
            return
        with begin(connection, write=True):
            self._schema(connection)


@contextmanager
def begin(connection: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """One transaction on `connection` (autocommit mode): committed when the block ends.

    A write takes the write lock first (`BEGIN IMMEDIATE`). An error in the block, or a failed
    COMMIT, rolls back, so a connection that is kept for the next call is never left in a
    transaction holding its locks.
    """
    connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
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
