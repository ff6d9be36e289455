"""Every endpoint of the reference shop over real HTTP on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from test_shop_support import (
    call,
    prometheus_value,
    run,
    service,
    shop_session,
    zero_time,
)

from loadtests.shop import ShopConfig

TRIO = {"browse": zero_time(), "order": zero_time(), "payment": zero_time()}
SHADOW = {"X-Shadow-Traffic": "1"}


def test_browse_order_pay_and_read_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop_session(tmp_path, TRIO) as (_, s):
            status, page, _ = await call(s, "GET", "/browse/42")
            assert status == 200 and page["item_id"] == 42 and page["price"] > 0
            assert (await call(s, "GET", "/browse/0"))[0] == 404
            assert (await call(s, "GET", "/browse/abc"))[0] == 400
            prices = {i: (await call(s, "GET", f"/browse/{i}"))[1]["price"] for i in (7, 9)}
            items = [{"item_id": 7, "qty": 3}, {"item_id": 9, "qty": 1}]
            status, order, _ = await call(s, "POST", "/order", {"user_id": "u1", "items": items})
            assert status == 201 and order["status"] == "created"
            # The order total is what the product pages say, times the quantities.
            assert order["amount"] == 3 * prices[7] + prices[9]

            status, stored, _ = await call(s, "GET", f"/orders/{order['order_id']}")
            assert status == 200 and stored["user_id"] == "u1"
            assert [(i["item_id"], i["qty"]) for i in stored["items"]] == [(7, 3), (9, 1)]
            assert (await call(s, "GET", "/orders/ord_nope"))[0] == 404

            pay = {"order_id": order["order_id"], "amount": order["amount"]}
            status, paid, headers = await call(s, "POST", "/pay", pay, {"Idempotency-Key": "a"})
            assert status == 201 and paid["status"] == "succeeded"
            assert headers["Idempotent-Replayed"] == "false"
            status, again, headers = await call(s, "POST", "/pay", pay, {"Idempotency-Key": "a"})
            assert status == 201 and again["payment_id"] == paid["payment_id"]
            assert headers["Idempotent-Replayed"] == "true"
            status, err, _ = await call(s, "POST", "/pay", pay, {"Idempotency-Key": "b"})
            assert status == 409 and err["error"]["code"] == "already_paid"
            assert (await call(s, "GET", f"/orders/{order['order_id']}"))[1]["status"] == "paid"

    run(main)


def test_payment_refusals_are_4xx(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop_session(tmp_path, TRIO) as (_, s):
            body = {"user_id": 5, "items": [{"item_id": 1, "qty": 1}]}
            order = (await call(s, "POST", "/order", body))[1]
            cases = [
                ({"order_id": "ord_missing", "amount": 1}, {"Idempotency-Key": "k1"}, 404,
                 "unknown_order"),
                ({"order_id": order["order_id"], "amount": order["amount"] + 1},
                 {"Idempotency-Key": "k2"}, 422, "wrong_amount"),
                ({"order_id": order["order_id"], "amount": order["amount"]}, {}, 400,
                 "missing_idempotency_key"),
                ({"order_id": order["order_id"], "amount": str(order["amount"])},
                 {"Idempotency-Key": "k3"}, 422, "invalid_body"),
            ]
            for pay, headers, want_status, want_code in cases:
                status, err, _ = await call(s, "POST", "/pay", pay, headers)
                assert (status, err["error"]["code"]) == (want_status, want_code), pay
            # A key that charged one order cannot be replayed for another one.
            other = (await call(s, "POST", "/order", body))[1]
            ok = {"order_id": order["order_id"], "amount": order["amount"]}
            assert (await call(s, "POST", "/pay", ok, {"Idempotency-Key": "k4"}))[0] == 201
            reuse = {"order_id": other["order_id"], "amount": other["amount"]}
            status, err, _ = await call(s, "POST", "/pay", reuse, {"Idempotency-Key": "k4"})
            assert (status, err["error"]["code"]) == (422, "idempotency_key_reused")

    run(main)


def test_concurrent_duplicate_payments_charge_exactly_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop_session(tmp_path, TRIO) as (handle, s):
            body = {"user_id": "u", "items": [{"item_id": 3, "qty": 2}]}
            first = (await call(s, "POST", "/order", body))[1]
            second = (await call(s, "POST", "/order", body))[1]
            pay1 = {"order_id": first["order_id"], "amount": first["amount"]}
            same_key = [call(s, "POST", "/pay", pay1, {"Idempotency-Key": "dup"})
                        for _ in range(40)]
            pay2 = {"order_id": second["order_id"], "amount": second["amount"]}
            other_keys = [call(s, "POST", "/pay", pay2, {"Idempotency-Key": f"k{i}"})
                          for i in range(20)]
            results = await asyncio.gather(*same_key, *other_keys)
            dup, distinct = results[:40], results[40:]
            assert {r[0] for r in dup} == {201}
            assert len({r[1]["payment_id"] for r in dup}) == 1
            assert sorted(r[0] for r in distinct) == [201] + [409] * 19
            metrics = (await call(s, "GET", "/metrics"))[1]
            assert prometheus_value(metrics, "peaksim_shop_business_total",
                                    what="payments_charged", traffic="real") == 2
            db = handle.db_path
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT order_id, COUNT(*) FROM payments GROUP BY order_id")
            assert sorted(n for _, n in rows) == [1, 1]

    run(main)


def test_shadow_traffic_never_touches_real_tables(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop_session(tmp_path, TRIO) as (handle, s):
            body = {"user_id": "load-test", "items": [{"item_id": 11, "qty": 1}]}
            status, order, _ = await call(s, "POST", "/order", body, SHADOW)
            assert status == 201 and order["order_id"].startswith("sord_")
            oid = order["order_id"]
            assert (await call(s, "GET", f"/orders/{oid}"))[0] == 404  # not a real order
            assert (await call(s, "GET", f"/orders/{oid}", headers=SHADOW))[0] == 200
            pay = {"order_id": oid, "amount": order["amount"]}
            assert (await call(s, "POST", "/pay", pay, {"Idempotency-Key": "x"}))[0] == 404
            status, paid, _ = await call(s, "POST", "/pay", pay,
                                         {"Idempotency-Key": "x", **SHADOW})
            assert status == 201 and paid["payment_id"].startswith("spay_")
            real = (await call(s, "POST", "/order", body))[1]
            await call(s, "GET", "/browse/1", headers=SHADOW)
            bad = await call(s, "GET", "/browse/1", headers={"X-Shadow-Traffic": "yes"})
            assert bad[0] == 400  # an ambiguous tag is refused, never taken as real traffic
            metrics = (await call(s, "GET", "/metrics"))[1]
            db = handle.db_path

        def value(name: str, **labels: str) -> float:
            return prometheus_value(metrics, name, **labels)

        assert value("peaksim_shop_business_total", what="orders", traffic="shadow") == 1
        assert value("peaksim_shop_business_total", what="orders", traffic="real") == 1
        assert value("peaksim_shop_business_total", what="payments_charged",
                     traffic="shadow") == 1
        assert value("peaksim_shop_business_total", what="payments_charged", traffic="real") == 0
        assert value("peaksim_shop_requests_total", endpoint="browse", traffic="shadow",
                     code="200") == 1
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT order_id FROM orders").fetchall() == [(real["order_id"],)]
            assert conn.execute("SELECT COUNT(*) FROM payments").fetchone() == (0,)
            assert conn.execute("SELECT order_id FROM shadow_orders").fetchall() == [(oid,)]
            assert conn.execute("SELECT COUNT(*) FROM shadow_payments").fetchone() == (1,)

    run(main)


def test_small_capacity_sheds_with_503_and_times_out_with_504(tmp_path: Path) -> None:
    # browse: 1 x 1 worker, 400 ms, max_queue 1 -> of 5 at once, 2 served and 3 shed.
    # order: 1 x 1 worker, 400 ms, timeout 600 ms -> of 3 at once, 1 served and 2 time out.
    services = {
        "browse": service(400.0, workers=1, max_queue=1),
        "order": service(400.0, workers=1, timeout_ms=600, max_queue=10),
    }

    async def main() -> None:
        async with shop_session(tmp_path, services) as (_, s):
            browse = await asyncio.gather(*(call(s, "GET", "/browse/1") for _ in range(5)))
            assert sorted(r[0] for r in browse) == [200, 200, 503, 503, 503]
            shed = next(r for r in browse if r[0] == 503)
            assert shed[1]["error"]["code"] == "queue_full" and shed[2]["Retry-After"] == "1"
            body = {"user_id": "u", "items": [{"item_id": 1, "qty": 1}]}
            orders = await asyncio.gather(*(call(s, "POST", "/order", body) for _ in range(3)))
            assert sorted(r[0] for r in orders) == [201, 504, 504]
            metrics = (await call(s, "GET", "/metrics"))[1]
            status, health, _ = await call(s, "GET", "/healthz")
        assert prometheus_value(metrics, "peaksim_shop_outcomes_total", service="browse",
                                outcome="shed") == 3
        assert prometheus_value(metrics, "peaksim_shop_requests_total", endpoint="order",
                                service="order", traffic="real", code="504") == 2
        assert prometheus_value(metrics, "peaksim_shop_outcomes_total", service="order",
                                outcome="timed_out") == 2
        assert prometheus_value(metrics, "peaksim_shop_latency_seconds_count",
                                service="browse", traffic="real") == 2
        assert prometheus_value(metrics, "peaksim_shop_business_total", what="orders",
                                traffic="real") == 1  # timed-out requests did no work
        assert status == 200 and health["services"]["browse"]["ready"] == 1

    run(main)


def test_admin_scale_and_observe(tmp_path: Path) -> None:
    services = {"browse": service(1.0, workers=4,
                                  instances={"min": 1, "max": 3}, boot_s=0.2)}

    async def main() -> None:
        async with shop_session(tmp_path, services) as (handle, s):
            status, state, _ = await call(s, "POST", "/admin/scale",
                                          {"service": "browse", "instances": 3})
            assert status == 202 and (state["ready"], state["booting"]) == (1, 2)
            pool = handle.shop.pools["browse"]
            await asyncio.wait_for(pool.wait_until(lambda st: st.ready == 3), 20)
            snapshot = handle.shop.observe()["browse"]
            assert (snapshot.ready, snapshot.booting, snapshot.workers_per_instance) == (3, 0, 4)
            for bad, code in (({"service": "nope", "instances": 1}, 404),
                              ({"service": "browse", "instances": 4}, 422),
                              ({"service": "browse", "instances": -1}, 422),
                              ({"service": "browse"}, 422)):
                assert (await call(s, "POST", "/admin/scale", bad))[0] == code, bad
            status, state, _ = await call(s, "POST", "/admin/scale",
                                          {"service": "browse", "instances": 1})
            assert (state["desired"], state["ready"]) == (1, 1)
            metrics = (await call(s, "GET", "/metrics"))[1]
        assert prometheus_value(metrics, "peaksim_shop_instances", service="browse",
                                state="ready") == 1
        assert prometheus_value(metrics, "peaksim_shop_workers", service="browse") == 4

    run(main)


def test_endpoint_without_a_scenario_service_is_served_without_emulation(
    tmp_path: Path,
) -> None:
    services = {"browse": service(400.0, workers=1, max_queue=0)}

    async def main() -> None:
        async with shop_session(tmp_path, services) as (_, s):
            body = {"user_id": "u", "items": [{"item_id": 1, "qty": 1}]}
            orders = await asyncio.gather(*(call(s, "POST", "/order", body) for _ in range(5)))
            assert [r[0] for r in orders] == [201] * 5
            metrics = (await call(s, "GET", "/metrics"))[1]
        assert "service=\"order\"" not in metrics

    run(main)


def test_endpoint_mapping_is_configurable(tmp_path: Path) -> None:
    # /orders/{id} reads go through the tiny "order" pool when mapped to it.
    services = {"order": service(400.0, workers=1, max_queue=0)}
    config = ShopConfig(endpoint_services={"order": None, "orders": "order"})

    async def main() -> None:
        async with shop_session(tmp_path, services, config) as (_, s):
            reads = await asyncio.gather(*(call(s, "GET", "/orders/x") for _ in range(3)))
            assert sorted(r[0] for r in reads) == [404, 503, 503]

    run(main)
    with pytest.raises(ValueError, match="unknown endpoints"):
        ShopConfig(endpoint_services={"brwose": "browse"})


def test_observe_counts_requests(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop_session(tmp_path, {"browse": service(5.0, workers=8)}) as (h, s):
            await asyncio.gather(*(call(s, "GET", "/browse/2") for _ in range(20)))
            snap = h.shop.observe(window_s=5)["browse"]
        assert snap.arrivals_total == 20 and snap.completed_total == 20
        assert snap.busy_workers == 0 and snap.queued == 0 and snap.utilization == 0.0
        assert (snap.ready, snap.min_instances, snap.max_instances) == (1, 1, 1)

    run(main)
