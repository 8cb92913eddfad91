"""The metadata database itself: SQLite in WAL mode, one connection per thread, transactions.

``<data-root>/metadata.db``. Concurrency: one connection per thread (WAL lets readers run
beside one writer); every write is a ``BEGIN IMMEDIATE`` transaction, so it takes the write
lock up front and never fails half-way on a lock upgrade. :meth:`Database.transaction`
lets a caller hold that lock across several calls (the GC sweep does), and calls made
inside it join it. Opening the database applies the migrations of :mod:`schema` that it
lacks.

Subscribers registered with :meth:`Database.subscribe` run after every committed change to
images or names (the daemon rewrites the content store's ``index.json`` there); a table
marks such a change with :meth:`Database._changed`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator

from declarun.daemon.metadata.schema import MIGRATIONS, SCHEMA_VERSION
from declarun.errors import DaemonError

__all__ = ["Database", "MetadataError"]

_BUSY_TIMEOUT_MS = 60_000


class MetadataError(DaemonError):
    """The metadata database refused an operation or cannot be used."""


class Database:
    """The SQLite database at ``path`` (created and migrated on first open); the tables of
    :mod:`declarun.daemon.metadata` build on it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []
        self._notify_lock = threading.Lock()
        self._migrate()

    # -- connections and transactions -------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                    check_same_thread=False,  # only close() crosses threads
                )
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.Error as err:
                raise MetadataError(f"cannot open metadata database {self.path}: {err}") from err
            if mode != "wal":
                raise MetadataError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            # FULL: a committed container or image survives a power cut, not only a crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            self._local.dirty = False
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (of every thread); the object is unusable afterwards."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the database's write lock; metadata calls on this thread inside join it.

        Commits when the block ends, rolls back if it raises. Subscribers are told about
        name changes after the commit.
        """
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.dirty = False
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            self._local.dirty = False
            raise
        conn.execute("COMMIT")
        if self._local.dirty:
            self._local.dirty = False
            self._notify()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read across several queries (WAL: never blocks the writer)."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        conn = self._conn()
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MetadataError(
                    f"{self.path} has schema version {version}, newer than this declarun "
                    f"({SCHEMA_VERSION}); refusing to touch it"
                )
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for step in steps:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn)
                conn.execute(f"PRAGMA user_version={number}")

    def schema_version(self) -> int:
        """The ``PRAGMA user_version`` of the open database."""
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def journal_mode(self) -> str:
        """The SQLite journal mode (always ``wal`` once open)."""
        return str(self._conn().execute("PRAGMA journal_mode").fetchone()[0])

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every committed change to images or their names."""
        self._subscribers.append(callback)

    def _notify(self) -> None:
        # Serialised, and each callback reads the state afresh: the last one to run always
        # sees the latest commit, so concurrent taggers cannot leave a stale index behind.
        with self._notify_lock:
            for callback in self._subscribers:
                callback()

    def _changed(self) -> None:
        self._local.dirty = True
