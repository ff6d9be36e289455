"""Declared requests, compiled once and rendered per send (no Locust, no gevent).

``compile_requests`` turns the scenario's ``loadtest.requests`` (``sim.model``'s schema) into
one ``CompiledRequest`` per service: every template compiled once with Jinja2, every capture
and check compiled once with JMESPath. Per send a user calls ``render`` with the context
``loadtests.send_context`` builds (seeded functions, the captured record and data rows the
request needs); ``judge`` turns the answer into an outcome, a failure reason and the values to
capture. ``effective_loadtest`` gives the reference shop's declaration to scenarios without
one.

How templates become values (one render per send, native types) is
``loadtests.request_templates``.
"""

from __future__ import annotations

import json
import os
import random
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import orjson
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jmespath.visitor import TreeInterpreter

from loadtests.request_templates import Render, Slots, SlotValues, compile_value
from loadtests.send_context import CaptureStore, DataTables, batch_key
from sim.errors import LoadTestError
from sim.model import (
    LoadTest,
    RequestSpec,
    Scenario,
    env_references,
    missing_env,
    references,
    template_environment,
    template_strings,
)


class _Search:
    """A compiled JMESPath expression with one interpreter for all its searches
    (``ParsedResult.search`` builds a new interpreter per call)."""

    def __init__(self, expression: str) -> None:
        self._tree = jmespath.compile(expression).parsed
        self._interpreter = TreeInterpreter()

    def search(self, data: Any) -> Any:
        return self._interpreter.visit(self._tree, data)


@dataclass
class Rendered:
    """One send's request, rendered (kept for its retries: ids and bodies do not change)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None


@dataclass
class CompiledRequest:
    """One service's declared request, ready to render."""

    service: str
    spec: RequestSpec
    values: SlotValues
    """Every templated field's value for one render context (one Jinja2 render)."""
    path: Render
    headers: list[tuple[str, Render]]
    query: Render | None
    body: Render | None
    content_type: str | None
    needs: tuple[str, ...]
    """Services whose captured records this request consumes (one record each per send)."""
    tables: tuple[str, ...]
    captures: list[tuple[str, Any]] = field(default_factory=list)
    expect: Any = None
    expect_text: str = ""

    @property
    def wants_json(self) -> bool:
        return bool(self.captures) or self.expect is not None

    def render(self, ctx: dict[str, Any]) -> Rendered:
        values = self.values.values(ctx)
        path = str(self.path(values))
        if self.query is not None:
            query = self.query(values)
            if query:
                path += ("&" if "?" in path else "?") + urllib.parse.urlencode(
                    {k: _text(v) for k, v in query.items()})
        headers = {name: str(render(values)) for name, render in self.headers}
        body: bytes | None = None
        if self.body is not None:
            value = self.body(values)
            if self.spec.json_body is not None:
                body = _json_bytes(value)
            elif self.spec.form is not None:
                body = urllib.parse.urlencode({k: _text(v) for k, v in value.items()}).encode()
            else:
                body = str(value).encode()
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return Rendered(self.spec.method, path, headers, body)

    def ok_status(self, status: int) -> bool:
        success = self.spec.success
        return 200 <= status < 300 if success is None else status in success

    def judge(self, status: int, content: bytes) -> tuple[bool, str | None, dict[str, Any] | None]:
        """(completed, failure reason, captured record) of an answer with ``status``."""
        if not self.ok_status(status):
            return False, f"status {status}", None
        if not self.wants_json:
            return True, None, None
        try:
            data = _json_value(content) if content else None
        except (ValueError, UnicodeDecodeError):
            return False, "answer is not JSON", None
        if self.expect is not None and not _truthy(self.expect.search(data)):
            return False, f"expect: {self.expect_text}", None
        record: dict[str, Any] = {}
        for name, expression in self.captures:
            value = expression.search(data)
            if value is None:
                return False, f"capture {name}: no value", None
            record[name] = value
        return True, None, record or None


def _json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON: orjson (a tenth of the standard module's time per body),
    the standard module for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _json_value(content: bytes) -> Any:
    """An answer's JSON (orjson; the standard module for NaN, Infinity and huge integers,
    which orjson refuses and servers do send)."""
    try:
        return orjson.loads(content)
    except ValueError:
        return json.loads(content)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(
        value, (dict, list)) else str(value)


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, empty strings, lists and objects are false."""
    return value not in (None, False, "", [], {})


def compile_requests(loadtest: LoadTest, services: tuple[str, ...],
                     env_values: Mapping[str, str]) -> dict[str, CompiledRequest]:
    """``CompiledRequest`` per service of ``services`` that has a declared request;
    ``env_values``: the ``env`` namespace (see ``environment_values``)."""
    env = template_environment()
    out: dict[str, CompiledRequest] = {}
    for name in services:
        spec = loadtest.requests.get(name)
        if spec is None:
            continue
        slots = Slots(env_values, {*loadtest.requests, *loadtest.data, "now_ms"})
        merged = {**loadtest.headers, **spec.headers}
        headers = {k: slots.add(env, v) for k, v in merged.items()}
        body_value, content_type = None, None
        if spec.json_body is not None:
            body_value, content_type = spec.json_body, "application/json"
        elif spec.form is not None:
            body_value, content_type = spec.form, "application/x-www-form-urlencoded"
        elif spec.body is not None:
            body_value = spec.body
        needs, tables = _uses(env, spec, set(loadtest.requests), set(loadtest.data))
        path = slots.add(env, spec.path)
        query = compile_value(env, slots, spec.query) if spec.query else None
        body = compile_value(env, slots, body_value) if body_value is not None else None
        out[name] = CompiledRequest(
            service=name, spec=spec, values=slots.compile(env, batch_key(name)), path=path,
            headers=list(headers.items()), query=query, body=body,
            content_type=(None if any(h.lower() == "content-type" for h in merged)
                          else content_type), needs=needs, tables=tables,
            captures=[(k, _Search(v)) for k, v in spec.capture.items()],
            expect=_Search(spec.expect.json_check) if spec.expect else None,
            expect_text=spec.expect.json_check if spec.expect else "")
    return out


def _uses(env: ImmutableSandboxedEnvironment, spec: RequestSpec, requests: set[str],
          tables: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    needs: set[str] = set()
    used: set[str] = set()
    for _loc, text in template_strings(spec):
        ast = env.parse(text)
        needs.update(name for name, _ in references(ast, requests))
        used.update(name for name, _ in references(ast, tables))
    return tuple(sorted(needs)), tuple(sorted(used))


def environment_values(loadtest: LoadTest, file: str,
                       environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The ``env`` namespace of the templates; ``LoadTestError`` naming every variable that
    is missing (before anything is sent)."""
    missing = missing_env(loadtest, environ)
    if missing:
        lines = [f"{file}: loadtest.{'.'.join(map(str, loc))}: {message}"
                 for loc, message in missing]
        raise LoadTestError("\n".join(lines))
    return {name: environ[name] for _, name in env_references(loadtest)}


SHOP_REQUESTS = Path(__file__).resolve().parent / "shop" / "requests.yaml"
"""The reference shop's API as declared requests (the default of scenarios that declare none)."""


def shop_requests() -> LoadTest:
    """The reference shop's ``headers`` and ``requests`` (``loadtests/shop/requests.yaml``)."""
    data = yaml.safe_load(SHOP_REQUESTS.read_text(encoding="utf-8"))
    return LoadTest.model_validate(data)


def effective_loadtest(scenario: Scenario) -> LoadTest:
    """The scenario's ``loadtest`` section; when it declares no requests, with the reference
    shop's requests for the services the scenario has (and their headers)."""
    loadtest = scenario.loadtest
    if loadtest.requests:
        return loadtest
    shop = shop_requests()
    requests = {name: spec for name, spec in shop.requests.items() if name in scenario.services}
    return loadtest.model_copy(update={"requests": requests,
                                       "headers": {**shop.headers, **loadtest.headers}})


def context_for(request: CompiledRequest, base: dict[str, Any], store: CaptureStore,
                tables: DataTables | None, rng: random.Random) -> dict[str, Any] | None:
    """The render context of one send, or None when a captured record it needs is missing."""
    ctx = dict(base)
    for producer in request.needs:
        record = store.take(producer, request.spec.reuse, rng)
        if record is None:
            if not request.spec.reuse:  # put back what this send took: it will not be sent
                for taken in request.needs:
                    if taken in ctx:
                        store.give_back(taken, ctx[taken])
            return None
        ctx[producer] = record
    if request.tables and tables is not None:
        ctx.update(tables.draw(request.tables, rng))
    return ctx
