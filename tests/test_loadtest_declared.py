"""Declared requests without a load test: validation, rendering, captures, host safety."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests.declared import (
    compile_requests,
    context_for,
    effective_loadtest,
    environment_values,
)
from loadtests.hosts import check_target, custom_services, is_loopback
from loadtests.request_templates import Slots
from loadtests.send_context import CaptureStore, TemplateFunctions, base_context, batch_key
from sim.cli import app
from sim.errors import LoadTestError
from sim.model import check_requests, parse_scenario

HEAD = """name: api
seed: 1
duration_s: 10
traffic: {kind: constant, rps: {catalog: 10, checkout: 5, pay: 4}}
services:
  catalog: {service_time: {dist: constant, mean_ms: 1}, workers: 4, instances: 1}
  checkout: {service_time: {dist: constant, mean_ms: 1}, workers: 4, instances: 1}
  pay: {service_time: {dist: constant, mean_ms: 1}, workers: 4, instances: 1}
"""
# The issue's own example, verbatim.
ISSUE = HEAD + """loadtest:
  headers: {X-Api-Key: "{{ env.SHOP_API_KEY }}"}   # every request; secrets come from env only
  requests:
    catalog:
      method: GET
      path: "/api/v2/catalog/{{ randint(1, 5000) }}"
    checkout:
      method: POST
      path: /api/v2/carts/checkout
      json: {customer: "{{ uuid() }}", lines: [{sku: "{{ randint(1, 5000) }}", quantity: 1}]}
      capture: {order_ref: data.orderRef}           # JMESPath into the JSON response
    pay:
      method: POST
      path: "/api/v2/orders/{{ checkout.order_ref }}/payment"
      headers: {Idempotency-Key: "{{ uuid() }}"}
      json: {method: card}
      success: [200, 201]                           # default: any 2xx
"""


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, result.output


def test_the_issue_syntax_validates_and_renders_with_native_types() -> None:
    scenario = parse_scenario(ISSUE)
    requests = compile_requests(scenario.loadtest, ("catalog", "checkout", "pay"),
                                {"SHOP_API_KEY": "k-1"})
    functions = TemplateFunctions(random.Random(7))
    base = base_context(functions, {"SHOP_API_KEY": "k-1"}, requests)
    store = CaptureStore()
    checkout = requests["checkout"]
    sent = checkout.render(context_for(checkout, base, store, None, functions.rng))
    assert sent.headers == {"X-Api-Key": "k-1", "Content-Type": "application/json"}
    body = json.loads(sent.body or b"")
    assert isinstance(body["lines"][0]["sku"], int) and 1 <= body["lines"][0]["sku"] <= 5000
    assert body["lines"][0]["quantity"] == 1 and len(body["customer"]) == 36
    # pay needs a captured order_ref: none yet -> no context (counted as no_data)
    pay = requests["pay"]
    assert context_for(pay, base, store, None, functions.rng) is None
    ok, reason, record = checkout.judge(201, b'{"data": {"orderRef": "00123"}}')
    assert (ok, reason, record) == (True, None, {"order_ref": "00123"})
    store.put("checkout", record)
    sent = pay.render(context_for(pay, base, store, None, functions.rng))
    assert sent.path == "/api/v2/orders/00123/payment"  # a string id stays a string
    assert context_for(pay, base, store, None, functions.rng) is None  # used once
    assert pay.judge(404, b"")[:2] == (False, "status 404")


def test_expect_and_missing_captures_are_failures_with_reasons() -> None:
    scenario = parse_scenario(ISSUE.replace("      capture: {order_ref: data.orderRef}",
                                            "      capture: {order_ref: data.orderRef}\n"
                                            "      expect: {json: \"status == 'ok'\"}"))
    checkout = compile_requests(scenario.loadtest, ("checkout",), {"SHOP_API_KEY": "k"})[
        "checkout"]
    assert checkout.judge(200, b'{"status": "busy"}')[:2] == (False, "expect: status == 'ok'")
    assert checkout.judge(200, b'{"status": "ok"}')[:2] == (False, "capture order_ref: no value")
    assert checkout.judge(200, b"<html>")[:2] == (False, "answer is not JSON")


@pytest.mark.parametrize(("change", "expected"), [
    (("randint(1, 5000) }}\"\n    checkout", "randint(1, 5000 }}\"\n    checkout"),
     ":14: loadtest.requests.catalog.path: template does not compile"),
    (("checkout.order_ref", "checkout.order_id"),
     ":22: loadtest.requests.pay.path: 'checkout' has no capture 'order_id'"),
    (("checkout.order_ref", "basket.order_ref"),
     ":22: loadtest.requests.pay.path: unknown variable 'basket'"),
    (("success: [200, 201]", "succes: [200, 201]"),
     ":25: loadtest.requests.pay.succes: unknown key 'succes' (did you mean 'success'?)"),
    (("data.orderRef}", "\"data.orderRef[\"}"),
     ":19: loadtest.requests.checkout.capture.order_ref: JMESPath expression"),
    (("path: /api/v2/carts/checkout", "path: /api/v2/carts/{{ pay.x }}"),
     ":17: loadtest.requests.checkout.path: 'pay' has no capture 'x'"),
])
def test_bad_declarations_are_one_line_with_file_line_and_field(
        tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    code, output = _validate(tmp_path, ISSUE.replace(*change))
    assert code == 2 and "Traceback" not in output
    assert f"s.yaml{expected}" in output, output


def test_a_cycle_of_captures_is_refused(tmp_path: Path) -> None:
    text = HEAD + """loadtest:
  requests:
    catalog: {path: "/c/{{ pay.receipt }}", capture: {item: id}}
    checkout: {path: "/o/{{ catalog.item }}", capture: {order: id}}
    pay: {path: "/p/{{ checkout.order }}", capture: {receipt: id}}
"""
    code, output = _validate(tmp_path, text)
    assert code == 2
    assert "loadtest.requests.catalog: captures form a cycle: catalog -> pay -> checkout" \
           " -> catalog" in output


def test_a_missing_secret_is_named_before_the_run() -> None:
    scenario = parse_scenario(ISSUE, "api.yaml")
    with pytest.raises(LoadTestError, match=r"api.yaml: loadtest.headers.X-Api-Key: "
                                            r"environment variable SHOP_API_KEY is not set"):
        environment_values(scenario.loadtest, "api.yaml", environ={})
    assert environment_values(scenario.loadtest, "api.yaml",
                              environ={"SHOP_API_KEY": "x", "OTHER": "y"}) == {"SHOP_API_KEY": "x"}


def test_the_shop_is_a_declaration_of_its_own() -> None:
    scenario = parse_scenario(HEAD.replace("catalog", "browse").replace("checkout", "order")
                              .replace("pay:", "payment:").replace("pay: 4", "payment: 4"))
    loadtest = effective_loadtest(scenario)
    assert set(loadtest.requests) == {"browse", "order", "payment"}
    assert check_requests(loadtest, scenario.services, ".") == []
    assert loadtest.requests["payment"].path == "/pay"


def test_zipf_draws_follow_the_power_law() -> None:
    functions = TemplateFunctions(random.Random(11))
    n, s, draws = 100, 1.2, 40_000
    counts = [0] * (n + 1)
    for _ in range(draws):
        counts[functions.zipf(n, s)] += 1
    harmonic = sum(1.0 / k ** s for k in range(1, n + 1))
    for rank in (1, 2, 10):
        p = 1.0 / rank ** s / harmonic
        sigma = (draws * p * (1 - p)) ** 0.5
        assert abs(counts[rank] - draws * p) < 4 * sigma, rank
    second = TemplateFunctions(random.Random(3), itertools.count(2, 3))  # process 1 of 3
    assert [second.seq() for _ in range(3)] == [2, 5, 8]


def test_only_loopback_targets_unless_allowed(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.1.2.3")
    assert check_target("http://127.0.0.1:8089/", False) == "http://127.0.0.1:8089"
    with pytest.raises(LoadTestError, match="not a loopback address.*--allow-remote"):
        check_target("https://10.1.2.3", False)
    assert check_target("https://10.1.2.3", True) == "https://10.1.2.3"
    with pytest.raises(LoadTestError, match="expected an http"):
        check_target("ftp://127.0.0.1", True)
    mine = tmp_path / "mine.py"
    mine.write_text("class A:\n    peaksim_service = 'checkout'\n", encoding="utf-8")
    assert custom_services(mine) == {"checkout"}


def test_a_remote_host_is_refused_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(ISSUE, encoding="utf-8")
    result = CliRunner().invoke(app, ["loadtest", str(path), "--host", "http://10.9.8.7"],
                                env={"SHOP_API_KEY": "x"})
    assert result.exit_code == 2 and "10.9.8.7 is not a loopback address" in result.output
    no_env = CliRunner().invoke(app, ["loadtest", str(path), "--host", "http://127.0.0.1:9"])
    assert no_env.exit_code == 2 and "SHOP_API_KEY is not set" in no_env.output


def test_a_rate_profile_becomes_step_traffic_of_those_services_only(tmp_path: Path) -> None:
    from loadtests.profile import profile_scenario

    path = tmp_path / "api.yaml"
    path.write_text(ISSUE.replace("    pay:\n", "    pay:\n      reuse: true\n"), "utf-8")
    data = profile_scenario(path, {"checkout": [(0, 5), (10, 20)], "pay": [(5, 3)]}, 15.0)
    assert data["duration_s"] == 15.0 and set(data["services"]) == {"checkout", "pay"}
    assert data["traffic"]["interpolation"] == "step"
    assert [(k["at"], k["rps"]) for k in data["traffic"]["keyframes"]] == [
        (0.0, {"checkout": 5.0, "pay": 0.0}), (5.0, {"checkout": 5.0, "pay": 3.0}),
        (10.0, {"checkout": 20.0, "pay": 3.0})]
    assert set(data["loadtest"]["requests"]) == {"checkout", "pay"}
    with pytest.raises(LoadTestError, match="profile services basket"):
        profile_scenario(path, {"basket": [(0, 1)]}, 5.0)


def test_the_sandbox_still_guards_everything_but_peaksims_own_functions() -> None:
    from jinja2.exceptions import SecurityError

    from sim.model import template_environment

    env = template_environment()
    ctx = base_context(TemplateFunctions(random.Random(1)), {}, ())
    assert len(env.from_string("{{ uuid() }}").render(ctx)) == 36
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(1) }}").render({**ctx, "items": []})

    def alters() -> None:
        raise AssertionError("the sandbox let a data-altering callable run")

    alters.alters_data = True  # type: ignore[attr-defined]
    with pytest.raises(SecurityError):
        env.from_string("{{ f() }}").render({**ctx, "f": alters})
    # a record from an answer cannot make itself trusted
    with pytest.raises(SecurityError):
        env.from_string("{{ r.pop('k') }}").render({**ctx, "r": {"k": 1, "peaksim_trusted": 1}})


def test_users_first_batches_differ_so_their_refills_spread() -> None:
    # Users spawn together: with equal first batches, all of a process's users would render
    # their next batch at the same moment every BATCH sends (a burst that made sends late).
    scenario = parse_scenario(ISSUE)
    requests = compile_requests(scenario.loadtest, ("catalog",), {"SHOP_API_KEY": "k"})
    catalog = requests["catalog"]
    batch = Slots.BATCH
    contexts = [base_context(TemplateFunctions(random.Random(i)), {}, requests)
                for i in range(2 * batch)]
    queue_key = batch_key("catalog")
    for ctx in contexts:
        catalog.values.prime(ctx)
    first = [len(ctx[queue_key]) for ctx in contexts]
    assert sorted(first[:batch]) == list(range(1, batch + 1))  # every size once per BATCH users
    assert sorted(first[batch:]) == list(range(1, batch + 1))
    # sends take the primed rows, then a whole batch at a time
    ctx = contexts[0]
    for _ in range(first[0]):
        assert 1 <= int(catalog.render(ctx).path.rsplit("/", 1)[1]) <= 5000
    assert len(ctx[queue_key]) == 0
    catalog.render(ctx)
    assert len(ctx[queue_key]) == batch - 1
