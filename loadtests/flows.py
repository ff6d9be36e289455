"""Locust users: one class per service flow of the reference shop, open-model paced.

A user does not loop on its own rhythm: it takes the next intended send time of its service
from the process's shared schedule (``Replay.claim``), sleeps until then, sends, records, and
takes the next one. How many users exist is the shape's business (``loadtests.sizing``).

- ``BrowseUser``: ``GET /browse/{item_id}``.
- ``OrderUser``: ``POST /order``; created orders go to a bounded pool for payment users.
- ``PaymentUser``: ``POST /pay`` (with an ``Idempotency-Key``, kept across its retries) for an
  order created earlier in the run; with none left it creates one while it waits for the send
  time (that request is named ``payment: create order`` and is not an ``order`` send; it makes
  the payment late only when there is no time to spare, and then counts as generator lag).

Requests are named by service so Locust's statistics group per service. Locust's own response
times are the raw latencies; the corrected ones are in the peaksim results. Failed attempts are
retried as the scenario's ``retries`` of the service says (the simulator's client model).
"""

from __future__ import annotations

import uuid
from typing import Any

import gevent
from gevent import GreenletExit
from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import FastResponse

from loadtests.recorder import Outcome, Recorder, classify
from loadtests.replay import Replay, backoff_s, retryable

REPLAY_ATTRIBUTE = "peaksim_replay"
SHADOW_HEADERS = {"X-Shadow-Traffic": "1"}
CATALOG_ITEMS = 100_000
IDLE_S = 0.5
"""How long a user with nothing to send sleeps before looking again."""


def replay_of(environment: Any) -> Replay:
    """The ``Replay`` the locustfile attached to the Locust environment."""
    replay = getattr(environment, REPLAY_ATTRIBUTE, None)
    if not isinstance(replay, Replay):
        raise RuntimeError("no peaksim replay on this Locust environment (is the locustfile's "
                           "init listener registered?)")
    return replay


class ServiceUser(FastHttpUser):
    """Base of the per-service users: claim, sleep, send, record, retry."""

    abstract = True
    service = ""
    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        replay = replay_of(environment)
        # FastHttpSession reads its timeouts at construction: set them per instance first.
        self.network_timeout = replay.options.request_timeout_s
        self.connection_timeout = replay.options.request_timeout_s
        super().__init__(environment)
        self.replay = replay
        self.rng = replay.user_rng(self.service)
        self.headers = dict(SHADOW_HEADERS) if replay.options.shadow else {}

    @task
    def replay_next(self) -> None:
        replay = self.replay
        intended = replay.claim(self.service)
        if intended is None:
            gevent.sleep(IDLE_S)
            return
        try:
            self.prepare()
            delay = intended - replay.now()
            if delay > 0:
                gevent.sleep(delay)
        except GreenletExit:
            replay.give_back(self.service, intended)
            raise
        self.send(intended)

    def prepare(self) -> None:
        """Work a flow needs before its request, done while waiting for the intended time
        (so it delays the send only when there is no time to spare)."""

    def send(self, intended_s: float) -> None:
        """One request with its retries; every attempt is recorded."""
        replay = self.replay
        recorder = replay.recorder
        if recorder is None:
            return
        replay.begin_send(self.service)
        try:
            self._attempts(intended_s, recorder)
        finally:
            replay.end_send(self.service)

    def _attempts(self, intended_s: float, recorder: Recorder) -> None:
        replay = self.replay
        retries = replay.retries(self.service)
        key = uuid.uuid4().hex  # an identifier, not a random draw of the replay
        attempt = 0
        while True:
            sent_s = replay.now()
            recorder.sent(self.service, intended_s, sent_s, retry=attempt > 0)
            status, timed_out = self.attempt(key)
            done_s = replay.now()
            outcome = classify(status, timed_out)
            last = (outcome is Outcome.COMPLETED or retries is None
                    or attempt >= retries.max or not retryable(status))
            recorder.finished(self.service, outcome, intended_s, sent_s, done_s,
                              final_failure=last and outcome is not Outcome.COMPLETED)
            if last:
                return
            attempt += 1
            assert retries is not None
            wait_s = backoff_s(retries, attempt, self.rng)
            intended_s = done_s + wait_s  # a retry is due after its backoff, not before
            gevent.sleep(wait_s)

    def attempt(self, idempotency_key: str) -> tuple[int, bool]:
        """Send one attempt; (HTTP status or 0, whether the client timed out)."""
        raise NotImplementedError

    def item_id(self) -> int:
        return int(self.rng.integers(1, CATALOG_ITEMS + 1))


def _status(response: FastResponse) -> tuple[int, bool]:
    error = getattr(response, "error", None)
    timed_out = isinstance(error, TimeoutError | gevent.Timeout)
    return int(response.status_code or 0), timed_out


def _json(response: FastResponse) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


class BrowseUser(ServiceUser):
    """Product pages."""

    service = "browse"

    def attempt(self, idempotency_key: str) -> tuple[int, bool]:
        response = self.client.get(f"/browse/{self.item_id()}", name=self.service,
                                   headers=self.headers)
        return _status(response)


class OrderUser(ServiceUser):
    """Create orders of one to three lines; remember them for payment users."""

    service = "order"

    def attempt(self, idempotency_key: str) -> tuple[int, bool]:
        response = create_order(self, self.service)
        status, timed_out = _status(response)
        if 200 <= status < 300:
            data = _json(response)
            if isinstance(data.get("order_id"), str) and isinstance(data.get("amount"), int):
                self.replay.orders.append((data["order_id"], data["amount"]))
        return status, timed_out


class PaymentUser(ServiceUser):
    """Pay an order created earlier in the run (the oldest one waiting)."""

    service = "payment"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.order: tuple[str, int] | None = None

    def prepare(self) -> None:
        self.order = self.take_order()

    def send(self, intended_s: float) -> None:
        if self.order is None and self.replay.recorder is not None:
            # No order could be created: the payment flow failed before it could pay.
            now_s = self.replay.now()
            self.replay.recorder.sent(self.service, intended_s, now_s)
            self.replay.recorder.finished(self.service, Outcome.FAILED, intended_s, now_s, now_s,
                                          final_failure=True)
            return
        super().send(intended_s)
        self.order = None

    def take_order(self) -> tuple[str, int] | None:
        if self.replay.orders:
            return self.replay.orders.popleft()
        response = create_order(self, "payment: create order")
        data = _json(response)
        if isinstance(data.get("order_id"), str) and isinstance(data.get("amount"), int):
            return data["order_id"], data["amount"]
        return None

    def attempt(self, idempotency_key: str) -> tuple[int, bool]:
        assert self.order is not None
        order_id, amount = self.order
        headers = {**self.headers, "Idempotency-Key": idempotency_key}
        response = self.client.post("/pay", json={"order_id": order_id, "amount": amount},
                                    name=self.service, headers=headers)
        return _status(response)


def create_order(user: ServiceUser, name: str) -> FastResponse:
    lines = int(user.rng.integers(1, 4))
    items = [{"item_id": user.item_id(), "qty": int(user.rng.integers(1, 4))}
             for _ in range(lines)]
    user_id = int(user.rng.integers(1, 1_000_000))
    return user.client.post("/order", json={"user_id": user_id, "items": items}, name=name,
                            headers=user.headers)
