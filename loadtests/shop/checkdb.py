"""``peaksim shop --check-db``: is a shop database consistent after a load test?

Checks, for the real and the shadow table sets alike: SQLite's own integrity check; every
payment belongs to an order of the same set; no order is paid twice and no idempotency key
charged twice; each payment's amount equals its order's amount; each order's amount equals the
sum of its lines; an order is ``paid`` exactly when it has a payment; the unique indexes that
prevent double charges exist. Across the sets: no order or payment id appears in both, and no
shadow payment points at a real order (test traffic never touched real data).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.shop.store import PREFIXES, UNIQUE_INDEXES, ShopDbError, connect, is_shop_db

_EXAMPLES = 3
"""Offending ids shown per violation."""


@dataclass(frozen=True)
class DbCheck:
    """Row counts (``orders``, ``paid_orders``, ``payments``, ``charged_cents``, each also with
    a ``shadow_`` prefix) and one message per violated rule (empty when consistent)."""

    path: Path
    counts: dict[str, int]
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no rule is violated."""
        return not self.violations


def _rules(p: str) -> list[tuple[str, str]]:
    """(message, query returning offending ids) per rule of one table set."""
    return [
        (f"{p}payments without an order in {p}orders",
         f"SELECT pay.payment_id FROM {p}payments pay LEFT JOIN {p}orders o "
         "ON o.order_id = pay.order_id WHERE o.order_id IS NULL"),
        (f"{p}orders paid more than once",
         f"SELECT order_id FROM {p}payments GROUP BY order_id HAVING COUNT(*) > 1"),
        (f"{p}payments sharing an idempotency key",
         f"SELECT idempotency_key FROM {p}payments GROUP BY idempotency_key "
         "HAVING COUNT(*) > 1"),
        (f"{p}payments whose amount differs from their order's",
         f"SELECT pay.payment_id FROM {p}payments pay JOIN {p}orders o "
         "ON o.order_id = pay.order_id WHERE pay.amount != o.amount"),
        (f"{p}orders whose amount differs from the sum of their lines",
         f"SELECT o.order_id FROM {p}orders o LEFT JOIN {p}order_items i "
         "ON i.order_id = o.order_id GROUP BY o.order_id "
         "HAVING o.amount != COALESCE(SUM(i.qty * i.price), -1)"),
        (f"{p}orders marked paid without a payment, or paid but not marked",
         f"SELECT o.order_id FROM {p}orders o LEFT JOIN {p}payments pay "
         "ON pay.order_id = o.order_id "
         "WHERE (o.status = 'paid') != (pay.payment_id IS NOT NULL)"),
        (f"{p}order_items without an order",
         f"SELECT i.order_id FROM {p}order_items i LEFT JOIN {p}orders o "
         "ON o.order_id = i.order_id WHERE o.order_id IS NULL"),
    ]


_CROSS_RULES = [
    ("order ids present in both orders and shadow_orders",
     "SELECT order_id FROM orders INTERSECT SELECT order_id FROM shadow_orders"),
    ("payment ids present in both payments and shadow_payments",
     "SELECT payment_id FROM payments INTERSECT SELECT payment_id FROM shadow_payments"),
    ("shadow_payments pointing at a real order",
     "SELECT pay.payment_id FROM shadow_payments pay JOIN orders o "
     "ON o.order_id = pay.order_id"),
    ("payments pointing at a shadow order",
     "SELECT pay.payment_id FROM payments pay JOIN shadow_orders o "
     "ON o.order_id = pay.order_id"),
]


def check_db(path: Path) -> DbCheck:
    """Check the shop database at ``path`` read-only.

    Raises ``ShopDbError`` when the file is missing or not a shop database; a shop database
    whose pages are damaged is reported as a violation.
    """
    if not path.is_file():
        raise ShopDbError(f"{path}: no such database file")
    try:
        conn = connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise ShopDbError(f"{path}: cannot open: {exc}") from None
    try:
        if not is_shop_db(conn):
            raise ShopDbError(f"{path}: not a peaksim shop database")
        violations: list[str] = []
        counts: dict[str, int] = {}
        try:
            _check(conn, counts, violations)
        except sqlite3.DatabaseError as exc:
            violations.append(f"database cannot be read completely: {exc}")
        return DbCheck(path, counts, violations)
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, counts: dict[str, int], violations: list[str]) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        violations.append("SQLite integrity check failed: " + "; ".join(problems))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [f"{p}{t}" for p in PREFIXES for t in ("orders", "order_items", "payments")
               if f"{p}{t}" not in tables]
    if missing:
        violations.append("missing tables: " + ", ".join(missing))
        return
    conn.execute("BEGIN")  # one snapshot for every query
    try:
        for p in PREFIXES:
            counts[f"{p}orders"] = _scalar(conn, f"SELECT COUNT(*) FROM {p}orders")
            counts[f"{p}paid_orders"] = _scalar(
                conn, f"SELECT COUNT(*) FROM {p}orders WHERE status = 'paid'")
            counts[f"{p}payments"] = _scalar(conn, f"SELECT COUNT(*) FROM {p}payments")
            counts[f"{p}charged_cents"] = _scalar(
                conn, f"SELECT COALESCE(SUM(amount), 0) FROM {p}payments")
            for message, query in _rules(p):
                _apply(conn, message, query, violations)
        for message, query in _CROSS_RULES:
            _apply(conn, message, query, violations)
        for table, index in UNIQUE_INDEXES:
            if not _has_unique_index(conn, table, index):
                violations.append(f"unique index {index} on {table} is missing: "
                                  "double charges are no longer prevented by the schema")
    finally:
        conn.execute("COMMIT")


def _apply(conn: sqlite3.Connection, message: str, query: str, violations: list[str]) -> None:
    ids = [str(row[0]) for row in conn.execute(query)]
    if ids:
        shown = ", ".join(ids[:_EXAMPLES]) + (", ..." if len(ids) > _EXAMPLES else "")
        violations.append(f"{len(ids)} {message} ({shown})")


def _scalar(conn: sqlite3.Connection, query: str) -> int:
    return int(conn.execute(query).fetchone()[0])


def _has_unique_index(conn: sqlite3.Connection, table: str, index: str) -> bool:
    return any(row[1] == index and row[2] for row in conn.execute(f"PRAGMA index_list({table})"))
