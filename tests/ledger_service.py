"""A small HTTP service whose API is unlike the reference shop's, for end-to-end load tests.

Paths, names and body shapes of its own, a bearer token, chained ids:

- ``GET /v1/products?sku=N`` (1 <= N <= 5000) -> ``{"items": [{"sku": N, "price_cents": P}]}``
- ``POST /v1/baskets`` JSON ``{"owner": {"email": str}, "lines": [{"sku": int, "count": int}]}``
  -> 201 ``{"basket": {"id": "bk-000001", "total_cents": T}}`` (types are checked strictly:
  a number sent as text is a 422)
- ``POST /v1/baskets/{id}/settle`` form ``method=card&amount=T`` -> 200
  ``{"state": "settled"}``; 404 for an id it never issued, 409 for one already settled, 422
  for a wrong amount.

Every request needs ``Authorization: Bearer <token>`` (401 otherwise). The service counts
what it received and answered per endpoint, and which baskets were created and settled, so
that a test can hold a load test's summary against it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loopback_server import serve_in_thread

PRICE_CENTS = 250


@dataclass
class Ledger:
    """What the service saw (read it after the load test ended)."""

    token: str
    received: Counter[str] = field(default_factory=Counter)
    answered: Counter[tuple[str, int]] = field(default_factory=Counter)
    created: dict[str, int] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)

    def client_errors(self) -> dict[tuple[str, int], int]:
        return {k: v for k, v in self.answered.items() if 400 <= k[1] < 500}


def _app(ledger: Ledger) -> web.Application:
    def answer(endpoint: str, status: int, body: dict[str, Any]) -> web.Response:
        ledger.answered[(endpoint, status)] += 1
        return web.json_response(body, status=status)

    def authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {ledger.token}"

    async def products(request: web.Request) -> web.Response:
        ledger.received["products"] += 1
        if not authorized(request):
            return answer("products", 401, {"error": "unauthorized"})
        sku = request.query.get("sku", "")
        if not sku.isdigit() or not 1 <= int(sku) <= 5000:
            return answer("products", 422, {"error": "sku"})
        return answer("products", 200, {"items": [{"sku": int(sku),
                                                   "price_cents": PRICE_CENTS}]})

    async def baskets(request: web.Request) -> web.Response:
        ledger.received["baskets"] += 1
        if not authorized(request):
            return answer("baskets", 401, {"error": "unauthorized"})
        try:
            data = await request.json()
            email = data["owner"]["email"]
            lines = data["lines"]
            ok = (isinstance(email, str) and "@" in email and isinstance(lines, list) and lines
                  and all(type(x.get("sku")) is int and type(x.get("count")) is int
                          and x["count"] >= 1 for x in lines))
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            return answer("baskets", 422, {"error": "body"})
        basket_id = f"bk-{len(ledger.created) + 1:06d}"
        total = sum(x["count"] for x in lines) * PRICE_CENTS
        ledger.created[basket_id] = total
        ledger.emails.add(email)
        return answer("baskets", 201, {"basket": {"id": basket_id, "total_cents": total}})

    async def settle(request: web.Request) -> web.Response:
        ledger.received["settle"] += 1
        if not authorized(request):
            return answer("settle", 401, {"error": "unauthorized"})
        basket_id = request.match_info["basket_id"]
        form = await request.post()
        if basket_id not in ledger.created:
            return answer("settle", 404, {"error": "no such basket"})
        if basket_id in ledger.settled:
            return answer("settle", 409, {"error": "already settled"})
        if form.get("method") != "card" or form.get("amount") != str(ledger.created[basket_id]):
            return answer("settle", 422, {"error": "form"})
        ledger.settled.append(basket_id)
        return answer("settle", 200, {"state": "settled", "basket": basket_id})

    async def root(_request: web.Request) -> web.Response:
        return web.json_response({"service": "ledger"})

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/v1/products", products)
    app.router.add_post("/v1/baskets", baskets)
    app.router.add_post("/v1/baskets/{basket_id}/settle", settle)
    return app


@contextmanager
def ledger_service(token: str) -> Iterator[tuple[str, Ledger]]:
    """The service on an ephemeral loopback port, in a thread: (base URL, its counters)."""
    ledger = Ledger(token)
    with serve_in_thread(lambda: _app(ledger)) as url:
        yield url, ledger
