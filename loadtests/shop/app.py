"""The reference shop: HTTP routes over the capacity emulation and the SQLite store.

``Shop`` owns one ``ServicePool`` per scenario service, the ``Store`` and the ``ShopMetrics``.
Endpoints map to services through ``ShopConfig.endpoint_services`` (``/browse`` -> ``browse``,
``/order`` -> ``order``, ``/pay`` -> ``payment``; ``/orders/{id}`` is not emulated by default);
an endpoint whose service the scenario lacks is served without capacity emulation.

Scaling has one path: ``Shop.scale`` (used by ``POST /admin/scale`` and meant for the live
autoscaler); ``Shop.observe`` is what an autoscaler sees. Both must be called on the event
loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType

from aiohttp import web

from loadtests.shop import api
from loadtests.shop.api import ApiError, json_response
from loadtests.shop.capacity import ServicePool
from loadtests.shop.metrics import ServiceSnapshot, ShopMetrics
from loadtests.shop.outcomes import Outcome, PoolState, ScaleError
from loadtests.shop.protocol import ServerLimits
from loadtests.shop.store import Order, OrderLine, PayResult, PayStatus, Store
from sim.model import Scenario, sampler_for

log = logging.getLogger("peaksim.shop")

DEFAULT_ENDPOINT_SERVICES: Mapping[str, str | None] = MappingProxyType(
    {"browse": "browse", "order": "order", "pay": "payment", "orders": None}
)
"""Which scenario service each endpoint's requests go through (None: no emulation)."""

_RETRY_AFTER = {"Retry-After": "1"}


@dataclass
class _Call:
    """What the middleware learnt about the request being handled."""

    arrival_s: float
    shadow: bool = False


_CALL: ContextVar[_Call] = ContextVar("peaksim_shop_call")


@dataclass(frozen=True)
class ShopConfig:
    """Knobs of a shop process that are not in the scenario."""

    endpoint_services: Mapping[str, str | None] = field(
        default_factory=lambda: DEFAULT_ENDPOINT_SERVICES
    )
    shutdown_timeout_s: float = 10.0
    """How long a stopping shop lets in-flight requests finish before cancelling them."""
    limits: ServerLimits = field(default_factory=ServerLimits)
    """Read deadlines and the connection cap of the HTTP server."""

    def __post_init__(self) -> None:
        unknown = set(self.endpoint_services) - set(DEFAULT_ENDPOINT_SERVICES)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; the shop's endpoints are "
                             f"{sorted(DEFAULT_ENDPOINT_SERVICES)}")


class Shop:
    """One shop: pools per scenario service, the store and the metrics.

    Construct inside a running event loop (timers and the metrics clock use its time).
    """

    def __init__(self, scenario: Scenario, store: Store, config: ShopConfig | None = None):
        self.scenario = scenario
        self.store = store
        self.config = config or ShopConfig()
        self._loop = asyncio.get_running_loop()
        self.pools = {
            name: ServicePool.for_service(
                name, svc, sampler_for(svc.service_time, scenario.base_dir), scenario.seed
            )
            for name, svc in scenario.services.items()
        }
        self._routes = {
            endpoint: self.pools.get(service) if service is not None else None
            for endpoint, service in self.config.endpoint_services.items()
        }
        self.metrics = ShopMetrics(
            self.pools,
            self._loop.time(),
            {e: p.name for e, p in self._routes.items() if p is not None},
        )

    # ------------------------------------------------------------------ control plane

    def scale(self, service: str, instances: int) -> PoolState:
        """Set ``service``'s desired instance count (the only scaling path of the shop).

        New instances take work after the service's ``boot_s``; removed ones drain (or fail
        their work when the scenario says ``on_remove: fail``). Raises ``ScaleError`` for an
        unknown service or a count outside ``0..instances.max``.
        """
        pool = self.pools.get(service)
        if pool is None:
            known = ", ".join(sorted(self.pools))
            raise ScaleError(f"unknown service {service!r} (the scenario has: {known})")
        return pool.scale(instances)

    def observe(self, window_s: float = 10.0) -> dict[str, ServiceSnapshot]:
        """Per-service snapshots: pool state now, rates and percentiles over ``window_s``."""
        now_s = self._loop.time()
        return {
            name: self.metrics.snapshot(pool.state(), now_s, window_s)
            for name, pool in self.pools.items()
        }

    def close(self) -> None:
        """Cancel pending instance boots."""
        for pool in self.pools.values():
            pool.close()

    # ------------------------------------------------------------------ HTTP

    def application(self) -> web.Application:
        """The aiohttp application serving this shop."""
        app = web.Application(middlewares=[self._middleware], client_max_size=api.MAX_BODY_BYTES)
        app.router.add_get("/browse/{item_id}", self._browse, name="browse")
        app.router.add_post("/order", self._order, name="order")
        app.router.add_post("/pay", self._pay, name="pay")
        app.router.add_get("/orders/{order_id}", self._get_order, name="orders")
        app.router.add_get("/healthz", self._healthz, name="healthz")
        app.router.add_get("/metrics", self._metrics, name="metrics")
        app.router.add_post("/admin/scale", self._admin_scale, name="admin_scale")
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        call = _Call(self._loop.time())
        _CALL.set(call)  # each request runs in its own task context
        endpoint = request.match_info.route.name or "unmatched"
        self.metrics.in_flight[endpoint] += 1
        try:
            call.shadow = api.is_shadow(request)
            if request.body_exists:  # every body is read here, within the body deadline
                await api.read_body(request, self.config.limits.body_timeout_s)
            response = await handler(request)
        except ApiError as exc:
            if exc.code == "body_timeout":
                self.metrics.connections.events["body_timeout"] += 1
            response = exc.response()
        except web.HTTPException as exc:  # unknown route, wrong method, body too large
            response = api.http_error_response(exc)
        except ConnectionError:
            raise  # the client went away mid-request: nobody to answer, aiohttp closes it
        except Exception:  # a bug: answer it, log it, keep serving
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = ApiError(500, "internal_error", "internal error").response()
        finally:
            self.metrics.in_flight[endpoint] -= 1
        self.metrics.response(endpoint, call.shadow, response.status)
        return response

    async def _serve(
        self, endpoint: str, work: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        """Run ``work`` through the capacity emulation of ``endpoint``'s service."""
        pool = self._routes.get(endpoint)
        if pool is None:
            return await work()
        call = _CALL.get()
        arrival_s = call.arrival_s
        self.metrics.arrival(pool.name, arrival_s)
        served = await pool.run(arrival_s, work)
        now_s = self._loop.time()
        latency_ms = (now_s - arrival_s) * 1000.0
        self.metrics.outcome(pool.name, call.shadow, served.outcome, latency_ms, now_s)
        if served.outcome is Outcome.COMPLETED:
            assert served.value is not None
            return served.value
        if served.outcome is Outcome.TIMED_OUT:
            raise ApiError(504, "timeout", f"{pool.name}: no response within "
                           f"{pool.timeout_s * 1000.0 if pool.timeout_s else 0:g} ms")
        reason = served.reason or "overloaded"
        raise _Unavailable(f"{pool.name}: {reason.replace('_', ' ')}", reason)

    async def _browse(self, request: web.Request) -> web.Response:
        page = api.product_page(api.parse_item_id(request.match_info["item_id"]))

        async def work() -> web.Response:
            return json_response(page)

        return await self._serve("browse", work)

    async def _order(self, request: web.Request) -> web.Response:
        body = api.validate(api.OrderIn, await api.read_json(request))
        lines = [OrderLine(li.item_id, li.qty, api.price_cents(li.item_id)) for li in body.items]
        shadow = _CALL.get().shadow

        async def work() -> web.Response:
            order = await self.store.create_order(shadow, str(body.user_id), lines)
            self.metrics.count("orders", shadow)
            return json_response(
                {"order_id": order.order_id, "amount": order.amount, "currency": "CNY",
                 "status": order.status}, 201)

        return await self._serve("order", work)

    async def _pay(self, request: web.Request) -> web.Response:
        key = api.idempotency_key(request)
        body = api.validate(api.PayIn, await api.read_json(request))
        shadow = _CALL.get().shadow

        async def work() -> web.Response:
            result = await self.store.pay(shadow, body.order_id, body.amount, key)
            return self._pay_response(result, shadow)

        return await self._serve("pay", work)

    def _pay_response(self, result: PayResult, shadow: bool) -> web.Response:
        # Business refusals are returned, not raised: the request still held its slot.
        status = result.status
        if status in (PayStatus.CHARGED, PayStatus.REPLAYED):
            replayed = status is PayStatus.REPLAYED
            self.metrics.count("payments_replayed" if replayed else "payments_charged", shadow)
            if not replayed:
                self.metrics.count("charged_cents", shadow, result.amount or 0)
            body = {"payment_id": result.payment_id, "status": "succeeded",
                    "order_id": result.order_id, "amount": result.amount}
            return json_response(body, 201, {"Idempotent-Replayed": str(replayed).lower()})
        if status is PayStatus.UNKNOWN_ORDER:
            error = ApiError(404, "unknown_order", f"no order {result.order_id!r}")
        elif status is PayStatus.WRONG_AMOUNT:
            error = ApiError(422, "wrong_amount", f"order {result.order_id} costs "
                             f"{result.expected_amount} cents, got {result.amount}")
        elif status is PayStatus.ALREADY_PAID:
            error = ApiError(409, "already_paid", f"order {result.order_id} was already paid "
                             f"by {result.payment_id} under another idempotency key")
        else:
            error = ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for "
                             f"order {result.order_id} with amount {result.amount}")
        return error.response()

    async def _get_order(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        if len(order_id) > 128:
            raise ApiError(404, "unknown_order", "no such order")
        shadow = _CALL.get().shadow

        async def work() -> web.Response:
            order = await self.store.get_order(shadow, order_id)
            if order is None:
                return ApiError(404, "unknown_order", f"no order {order_id!r}").response()
            return json_response(_order_json(order))

        return await self._serve("orders", work)

    async def _healthz(self, request: web.Request) -> web.Response:
        services = {
            name: {"desired": s.desired, "ready": s.ready, "booting": s.booting,
                   "draining": s.draining, "busy_workers": s.busy_workers, "queued": s.queued}
            for name, s in ((n, p.state()) for n, p in self.pools.items())
        }
        return json_response({"status": "ok", "scenario": self.scenario.name,
                              "services": services})

    async def _metrics(self, request: web.Request) -> web.Response:
        text = self.metrics.render((p.state() for p in self.pools.values()), self._loop.time())
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def _admin_scale(self, request: web.Request) -> web.Response:
        body = api.validate(api.ScaleIn, await api.read_json(request))
        if body.service not in self.pools:
            raise ApiError(404, "unknown_service", f"unknown service {body.service!r}; the "
                           f"scenario has: {', '.join(sorted(self.pools))}")
        try:
            state = self.scale(body.service, body.instances)
        except ScaleError as exc:
            raise ApiError(422, "invalid_instances", str(exc)) from None
        return json_response({"service": state.service, "desired": state.desired,
                              "ready": state.ready, "booting": state.booting,
                              "draining": state.draining}, 202)


class _Unavailable(ApiError):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(503, reason, message)

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return super().response(headers or _RETRY_AFTER)


def _order_json(order: Order) -> dict[str, object]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "amount": order.amount,
        "currency": "CNY",
        "status": order.status,
        "items": [{"item_id": li.item_id, "qty": li.qty, "price": li.price}
                  for li in order.lines],
        "created_at": order.created_at,
    }
