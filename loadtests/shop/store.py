"""The shop's real data: orders and payments in SQLite (WAL), real and shadow tables.

Every write runs on one writer thread with one connection, so the event loop never blocks on
SQLite and writes never race: a payment's idempotency check, the order lookup and the insert
happen under one write lock. Writes are group-committed: the operations that arrive while a
batch is being written form the next batch, one ``BEGIN IMMEDIATE`` transaction with a
savepoint per operation (a failing operation is rolled back alone); each caller is answered
only after its batch committed. That keeps the number of commits and of thread hand-offs (each
of which waits for the event loop to release the GIL) far below the number of requests. Unique
indexes back the logic up in the schema itself (one payment per idempotency key, one per
order), so even a second process writing the same file cannot double-charge. Reads run on a
second thread with their own connection (WAL lets them proceed while a batch is written).

Tables come in two sets: ``orders``/``order_items``/``payments`` for real traffic and the same
names prefixed ``shadow_`` for requests tagged ``X-Shadow-Traffic: 1``; shadow ids carry an
``s`` prefix (``sord_...``, ``spay_...``) so real and shadow rows can never share an id.
Amounts are integer cents. ``synchronous=NORMAL``: a committed transaction survives the shop
process being killed (it is in the WAL); only an operating-system crash may lose the last ones.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sim.errors import PeaksimError

T = TypeVar("T")

APP_ID = "peaksim-shop"
SCHEMA_VERSION = "1"
PREFIXES = ("", "shadow_")
"""Table-name prefixes of the real and the shadow table sets."""


class ShopDbError(PeaksimError):
    """The database file is missing, unreadable or not a peaksim shop database."""


def _schema(p: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {p}orders (
    order_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    status     TEXT NOT NULL CHECK (status IN ('created', 'paid')),
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}order_items (
    order_id TEXT NOT NULL REFERENCES {p}orders (order_id),
    line     INTEGER NOT NULL,
    item_id  INTEGER NOT NULL,
    qty      INTEGER NOT NULL CHECK (qty > 0),
    price    INTEGER NOT NULL CHECK (price >= 0),
    PRIMARY KEY (order_id, line)
);
CREATE TABLE IF NOT EXISTS {p}payments (
    payment_id      TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS {p}payments_by_key ON {p}payments (idempotency_key);
CREATE UNIQUE INDEX IF NOT EXISTS {p}payments_by_order ON {p}payments (order_id);
"""


UNIQUE_INDEXES = tuple(
    (f"{p}payments", f"{p}payments_by_{what}") for p in PREFIXES for what in ("key", "order")
)
"""(table, index) pairs that make double charges impossible; ``check_db`` verifies them."""


@dataclass(frozen=True)
class OrderLine:
    """One line of an order; ``price`` in cents per unit."""

    item_id: int
    qty: int
    price: int


@dataclass(frozen=True)
class Order:
    """A stored order; ``amount`` in cents is the sum of ``qty * price`` over its lines."""

    order_id: str
    user_id: str
    amount: int
    status: str
    lines: tuple[OrderLine, ...]
    created_at: float


class PayStatus(enum.StrEnum):
    """What ``Store.pay`` did."""

    CHARGED = "charged"
    REPLAYED = "replayed"  # the idempotency key was seen with the same order and amount
    KEY_REUSED = "key_reused"  # the key was seen with a different order or amount
    UNKNOWN_ORDER = "unknown_order"
    WRONG_AMOUNT = "wrong_amount"
    ALREADY_PAID = "already_paid"  # the order was paid under another idempotency key


@dataclass(frozen=True)
class PayResult:
    """``payment_id`` and ``amount`` of the (original) payment for CHARGED, REPLAYED,
    KEY_REUSED and ALREADY_PAID; ``expected_amount`` is the order's amount for WRONG_AMOUNT."""

    status: PayStatus
    payment_id: str | None = None
    order_id: str | None = None
    amount: int | None = None
    expected_amount: int | None = None


def new_id(kind: str, shadow: bool) -> str:
    """A random id like ``ord_3f9a...`` (``sord_...`` for shadow rows)."""
    return f"{'s' if shadow else ''}{kind}_{secrets.token_hex(12)}"


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL settings."""
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def is_shop_db(conn: sqlite3.Connection) -> bool:
    """True when the database carries the shop's marker."""
    try:
        row = conn.execute("SELECT value FROM shop_meta WHERE key = 'app'").fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] == APP_ID


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and not is_shop_db(conn):
        raise ShopDbError(f"{path}: a SQLite database, but not a peaksim shop database")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS shop_meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT OR IGNORE INTO shop_meta VALUES ('app', ?)", (APP_ID,))
        conn.execute("INSERT OR IGNORE INTO shop_meta VALUES ('schema_version', ?)",
                     (SCHEMA_VERSION,))
        for prefix in PREFIXES:
            for statement in _schema(prefix).split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class Store:
    """Async facade over the SQLite file; create with ``await Store.open(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="shop-db-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="shop-db-reader")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (creating if needed) the shop database at ``path``.

        Raises ``ShopDbError`` when the file exists but is not a shop database.
        """
        store = cls(path)
        try:
            store._write_conn = await store._on(store._writer, store._open_writer)
            store._read_conn = await store._on(store._reader, lambda: connect(path))
        except BaseException:
            await store.close()
            raise
        return store

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = connect(self.path)
            _initialise(conn, self.path)
        except sqlite3.DatabaseError as exc:
            raise ShopDbError(f"{self.path}: cannot use as a shop database: {exc}") from None
        return conn

    async def _on(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    async def close(self) -> None:
        """Finish queued writes, then close both connections (the WAL is checkpointed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        for executor, attr in ((self._reader, "_read_conn"), (self._writer, "_write_conn")):
            conn = getattr(self, attr)
            if conn is not None:
                await self._on(executor, conn.close)
                setattr(self, attr, None)
            executor.shutdown(wait=True)

    # ------------------------------------------------------------------ operations

    async def create_order(self, shadow: bool, user_id: str, lines: Sequence[OrderLine]) -> Order:
        """Store a new order (status ``created``) and return it."""
        order = Order(
            order_id=new_id("ord", shadow),
            user_id=user_id,
            amount=sum(line.qty * line.price for line in lines),
            status="created",
            lines=tuple(lines),
            created_at=time.time(),
        )
        p = PREFIXES[shadow]

        def write(conn: sqlite3.Connection) -> Order:
            conn.execute(
                f"INSERT INTO {p}orders VALUES (?, ?, ?, ?, ?)",
                (order.order_id, order.user_id, order.amount, order.status, order.created_at),
            )
            conn.executemany(
                f"INSERT INTO {p}order_items VALUES (?, ?, ?, ?, ?)",
                [(order.order_id, n, li.item_id, li.qty, li.price) for n, li in enumerate(lines)],
            )
            return order

        return await self._write(write)

    async def pay(self, shadow: bool, order_id: str, amount: int, key: str) -> PayResult:
        """Charge ``amount`` cents for ``order_id`` once per idempotency ``key``."""
        p = PREFIXES[shadow]
        payment_id = new_id("pay", shadow)

        def write(conn: sqlite3.Connection) -> PayResult:
            return _pay_locked(conn, p, payment_id, order_id, amount, key)

        return await self._write(write)

    async def get_order(self, shadow: bool, order_id: str) -> Order | None:
        """The order with its lines, or None."""
        p = PREFIXES[shadow]

        def read() -> Order | None:
            conn = self._read_conn
            assert conn is not None, "store is closed"
            conn.execute("BEGIN")
            try:
                row = conn.execute(
                    f"SELECT user_id, amount, status, created_at FROM {p}orders "
                    "WHERE order_id = ?", (order_id,)).fetchone()
                lines = conn.execute(
                    f"SELECT item_id, qty, price FROM {p}order_items WHERE order_id = ? "
                    "ORDER BY line", (order_id,)).fetchall()
            finally:
                conn.execute("COMMIT")
            if row is None:
                return None
            return Order(order_id, row[0], row[1], row[2],
                         tuple(OrderLine(*line) for line in lines), row[3])

        return await self._on(self._reader, read)

    async def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` in the next group commit; return once that batch committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((operation, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return cast(T, await future)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await loop.run_in_executor(
                    self._writer, self._commit, [op for op, _ in batch])
            except BaseException as exc:  # the commit itself failed: nobody is acknowledged
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else
                                             RuntimeError("write batch interrupted"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue  # its request was cancelled; the row is committed regardless
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(
        self, operations: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        """On the writer thread: one transaction, one savepoint per operation."""
        conn = self._write_conn
        assert conn is not None, "store is closed"
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for operation in operations:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, operation(conn)))
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    results.append((False, exc))
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results


def _pay_locked(
    conn: sqlite3.Connection, p: str, payment_id: str, order_id: str, amount: int, key: str
) -> PayResult:
    """The payment decision, inside a write transaction (so nothing changes under it)."""
    seen = conn.execute(
        f"SELECT payment_id, order_id, amount FROM {p}payments WHERE idempotency_key = ?",
        (key,)).fetchone()
    if seen is not None:
        same = seen[1] == order_id and seen[2] == amount
        status = PayStatus.REPLAYED if same else PayStatus.KEY_REUSED
        return PayResult(status, seen[0], seen[1], seen[2])
    order = conn.execute(
        f"SELECT amount FROM {p}orders WHERE order_id = ?", (order_id,)).fetchone()
    if order is None:
        return PayResult(PayStatus.UNKNOWN_ORDER, order_id=order_id)
    if order[0] != amount:
        return PayResult(PayStatus.WRONG_AMOUNT, order_id=order_id, amount=amount,
                         expected_amount=order[0])
    paid = conn.execute(
        f"SELECT payment_id, amount FROM {p}payments WHERE order_id = ?", (order_id,)).fetchone()
    if paid is not None:
        return PayResult(PayStatus.ALREADY_PAID, paid[0], order_id, paid[1])
    conn.execute(
        f"INSERT INTO {p}payments VALUES (?, ?, ?, ?, 'succeeded', ?)",
        (payment_id, order_id, amount, key, time.time()))
    conn.execute(f"UPDATE {p}orders SET status = 'paid' WHERE order_id = ?", (order_id,))
    return PayResult(PayStatus.CHARGED, payment_id, order_id, amount)
