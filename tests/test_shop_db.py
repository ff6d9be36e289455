"""The shop's SQLite store and ``peaksim shop --check-db``: clean databases pass, every kind of
damage is named, and files that are not shop databases are refused (exit 2)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_shop_support import run, write_scenario
from typer.testing import CliRunner

from loadtests.shop import ShopDbError, check_db
from loadtests.shop.store import OrderLine, PayStatus, Store
from sim.cli import app


async def _fill(path: Path) -> None:
    # Real: 3 orders of 100, 250 and 999 cents, the first two paid. Shadow: 2 orders, 1 paid.
    store = await Store.open(path)
    try:
        real = [await store.create_order(False, "u", [OrderLine(1, 1, c)]) for c in (100, 250)]
        await store.create_order(False, "u", [OrderLine(2, 3, 333)])
        for n, order in enumerate(real):
            result = await store.pay(False, order.order_id, order.amount, f"key-{n}")
            assert result.status is PayStatus.CHARGED
        shadow = [await store.create_order(True, "t", [OrderLine(3, 2, 50)]) for _ in range(2)]
        result = await store.pay(True, shadow[0].order_id, 100, "key-0")  # same key, other set
        assert result.status is PayStatus.CHARGED
    finally:
        await store.close()


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "shop.db"
    run(lambda: _fill(path))
    return path


@pytest.fixture
def db(clean_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "shop.db"
    shutil.copy(clean_db, copy)
    return copy


def test_clean_database_passes_with_counts(clean_db: Path, db: Path) -> None:
    assert not clean_db.with_name("shop.db-wal").exists()  # closed cleanly: WAL folded back
    result = check_db(db)
    assert result.ok, result.violations
    assert result.counts == {
        "orders": 3, "paid_orders": 2, "payments": 2, "charged_cents": 350,
        "shadow_orders": 2, "shadow_paid_orders": 1, "shadow_payments": 1,
        "shadow_charged_cents": 100,
    }


CORRUPTIONS = {
    "orphan payment": (
        ["INSERT INTO payments VALUES ('pay_x', 'ord_gone', 100, 'kx', 'succeeded', 0)"],
        "1 payments without an order in orders (pay_x)"),
    "amount changed": (
        ["UPDATE payments SET amount = amount + 1 WHERE amount = 250"],
        "1 payments whose amount differs from their order's"),
    "paid twice": (
        ["DROP INDEX payments_by_order",
         "INSERT INTO payments SELECT 'pay_2nd', order_id, amount, 'other', 'succeeded', 0 "
         "FROM payments WHERE amount = 100"],
        "1 orders paid more than once"),
    "index dropped": (
        ["DROP INDEX shadow_payments_by_key"],
        "unique index shadow_payments_by_key on shadow_payments is missing"),
    "shared id": (
        ["INSERT INTO shadow_orders SELECT * FROM orders WHERE amount = 999",
         "INSERT INTO shadow_order_items SELECT * FROM order_items WHERE price = 333"],
        "1 order ids present in both orders and shadow_orders"),
    "shadow pays real": (
        ["INSERT INTO shadow_payments SELECT 'spay_x', order_id, amount, 'kk', 'succeeded', 0 "
         "FROM orders WHERE amount = 999"],
        "1 shadow_payments pointing at a real order (spay_x)"),
    "status without payment": (
        ["UPDATE orders SET status = 'paid' WHERE amount = 999"],
        "1 orders marked paid without a payment, or paid but not marked"),
    "lines changed": (
        ["UPDATE shadow_order_items SET qty = qty + 1"],
        "2 shadow_orders whose amount differs from the sum of their lines"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_db_names_each_corruption(db: Path, name: str) -> None:
    statements, expected = CORRUPTIONS[name]
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    result = check_db(db)
    assert not result.ok
    assert any(v.startswith(expected) for v in result.violations), result.violations


def test_damaged_pages_are_a_violation(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'payments'").fetchone()[0]
    conn.close()
    with db.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\x55" * page_size)
    result = check_db(db)
    assert not result.ok
    assert any("integrity" in v or "cannot be read" in v for v in result.violations)


def test_a_failing_write_is_rolled_back_alone(tmp_path: Path) -> None:
    # Three concurrent orders share one group commit; the one with qty 0 breaks a CHECK
    # constraint and must vanish without taking the other two with it.
    path = tmp_path / "shop.db"

    async def main() -> list[object]:
        store = await Store.open(path)
        try:
            return await asyncio.gather(
                *(store.create_order(False, "u", [OrderLine(1, qty, 100)]) for qty in (1, 0, 2)),
                return_exceptions=True)
        finally:
            await store.close()

    results = run(main)
    assert isinstance(results[1], sqlite3.IntegrityError)
    with sqlite3.connect(path) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT amount FROM orders")) == [100, 200]
        assert conn.execute("SELECT COUNT(*) FROM order_items").fetchone() == (2,)
    conn.close()
    assert check_db(path).ok


def test_files_that_are_not_shop_databases_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    for path, message in ((tmp_path / "missing.db", "no such database file"),
                          (text, "not a peaksim shop database"),
                          (other, "not a peaksim shop database")):
        with pytest.raises(ShopDbError, match=message):
            check_db(path)

    async def reopen() -> None:
        with pytest.raises(ShopDbError, match="not a peaksim shop database"):
            await Store.open(other)

    run(reopen)


def test_cli_check_db_exit_codes(db: Path, tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["shop", "--check-db", str(db)])
    assert result.exit_code == 0, result.output
    assert "ok: no violations" in result.output and "charged_cents" in result.output
    assert runner.invoke(app, ["shop", "--check-db", str(tmp_path / "nope.db")]).exit_code == 2
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE payments SET amount = 1")
    conn.close()
    result = runner.invoke(app, ["shop", "--check-db", str(db)])
    assert result.exit_code == 1
    assert "violation: 2 payments whose amount differs" in result.output


def test_cli_refuses_a_foreign_database(tmp_path: Path, runner: CliRunner) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    scenario = write_scenario(tmp_path, {"browse": {"service_time": {
        "dist": "constant", "mean_ms": 1}, "workers": 1, "instances": 1}})
    result = runner.invoke(app, ["shop", str(scenario), "--port", "0", "--db", str(other)])
    assert result.exit_code == 2
    assert "not a peaksim shop database" in result.output
