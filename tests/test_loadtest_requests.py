"""End to end: a scenario's declared requests against a service that is not the shop.

The ledger service (``tests/ledger_service.py``) has its own paths, a bearer token read from
the environment, JSON, query and form bodies, and chained ids (a basket id captured from one
answer is settled by another request). Its own counters are held against peaksim's summary:
every request sent was received, none was refused for a bad body, and every settlement refers
to a basket peaksim captured (each once). The same with the user's own Locust class driving
one service (``--locustfile``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from tests.ledger_service import ledger_service

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token"
SCENARIO = """
name: ledger
seed: 3
duration_s: 4
traffic: {kind: constant, rps: {products: 40, basket: 20, settle: 12}}
services:
  products: {service_time: {dist: constant, mean_ms: 1}, workers: 8, instances: 1}
  basket: {service_time: {dist: constant, mean_ms: 1}, workers: 8, instances: 1}
  settle: {service_time: {dist: constant, mean_ms: 1}, workers: 8, instances: 1}
slo:
  products: {error_rate: 0}
  basket: {error_rate: 0}
loadtest:
  headers: {Authorization: "Bearer {{ env.LEDGER_TOKEN }}"}
  data: {customers: customers.csv}
  requests:
    products:
      path: /v1/products
      query: {sku: "{{ zipf(5000, 1.1) }}"}
      expect: {json: "items[0].price_cents > `0`"}
    basket:
      method: POST
      path: /v1/baskets
      json:
        owner: {email: "{{ customers.email }}"}
        lines: [{sku: "{{ randint(1, 5000) }}", count: "{{ choice([1, 2, 3]) }}"}]
      success: [201]
      capture: {id: basket.id, total: basket.total_cents}
    settle:
      method: POST
      path: "/v1/baskets/{{ basket.id }}/settle"
      form: {method: card, amount: "{{ basket.total }}"}
      expect: {json: "state == 'settled'"}
"""
CUSTOMERS = "email,name\nada@example.org,Ada\ngrace@example.org,Grace\nkatherine@example.org,K\n"
MY_LOCUSTFILE = '''
from locust import FastHttpUser, task


class Shopper(FastHttpUser):
    """A closed-model user, adapted: peaksim_service names the service it sends for."""

    peaksim_service = "basket"

    @task
    def open_basket(self):
        body = {"owner": {"email": "ada@example.org"}, "lines": [{"sku": 7, "count": 2}]}
        with self.client.post("/v1/baskets", json=body, catch_response=True,
                              headers={"Authorization": "Bearer s3cret-token"}) as response:
            if response.status_code != 201:
                response.failure(f"status {response.status_code}")
                return None
            basket = response.json()["basket"]
        return {"id": basket["id"], "total": basket["total_cents"]}  # captured, as declared
'''


def _write(tmp_path: Path) -> Path:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    path = tmp_path / "ledger.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def _run(tmp_path: Path, url: str, *extra: str) -> dict:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "loadtest", str(_write(tmp_path)), "--host", url, "--arrivals", "paced",
        "--lag-threshold-ms", "250", "--out", str(out), *extra],
        env={"LEDGER_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert f"target: {url} (products, basket, settle)" in result.output
    return json.loads((out / "summary.json").read_text())["services"]


def test_declared_requests_drive_a_service_unlike_the_shop(tmp_path: Path) -> None:
    with ledger_service(TOKEN) as (url, ledger):
        services = _run(tmp_path, url)
    sent = {name: s["requests"] + s["retries"] for name, s in services.items()}
    assert sent == {"products": ledger.received["products"], "basket": ledger.received["baskets"],
                    "settle": ledger.received["settle"]}
    assert sent["products"] == 160 and sent["basket"] == 80  # paced: exactly rate x 4 s
    assert ledger.client_errors() == {}
    assert services["basket"]["completed"] == len(ledger.created)
    assert services["settle"]["completed"] == len(ledger.settled)
    # every settlement names a basket the service issued, each one once
    assert set(ledger.settled) <= set(ledger.created)
    assert len(set(ledger.settled)) == len(ledger.settled)
    settle = services["settle"]
    assert settle["completed"] + settle["no_data"] == settle["load"]["intended"] == 48
    assert settle["failure_reasons"] == {}
    assert ledger.emails <= {"ada@example.org", "grace@example.org", "katherine@example.org"}


def test_the_users_own_locust_class_drives_its_service(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(MY_LOCUSTFILE, encoding="utf-8")
    with ledger_service(TOKEN) as (url, ledger):
        services = _run(tmp_path, url, "--locustfile", str(tmp_path / "mine.py"))
    basket = services["basket"]
    assert basket["requests"] == ledger.received["baskets"] == 80
    assert basket["completed"] == len(ledger.created) == 80
    assert ledger.client_errors() == {}
    assert services["products"]["requests"] == ledger.received["products"] == 160
    # what the class returned was captured: declared settlements refer to its baskets
    settle = services["settle"]
    assert settle["completed"] == len(ledger.settled) > 0
    assert set(ledger.settled) <= set(ledger.created)
    assert settle["completed"] + settle["no_data"] == 48
