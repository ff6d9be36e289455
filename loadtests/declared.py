"""Declared requests, compiled once and rendered per send (no Locust, no gevent).

``compile_requests`` turns the scenario's ``loadtest.requests`` (``sim.model``'s schema) into
one ``CompiledRequest`` per service: every template compiled once with Jinja2, every capture
and check compiled once with JMESPath. Per send a user calls ``render`` with the context
``loadtests.send_context`` builds (seeded functions, the captured record and data rows the
request needs); ``judge`` turns the answer into an outcome, a failure reason and the values to
capture. ``effective_loadtest`` gives the reference shop's declaration to scenarios without
one.

Native types: a JSON/query/form value that is one ``{{ expression }}`` and nothing else keeps
the expression's own type (``{{ randint(1, 9) }}`` is a number, ``{{ [1, 2] }}`` a list), as
``jinja2.nativetypes`` does for a single node; unlike it, a string value stays a string (an id
``"00123"`` is not turned into the number 123). Anything else renders to text.
"""

from __future__ import annotations

import json
import os
import random
import re
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import orjson
import yaml
from jinja2 import meta, nodes
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jmespath.visitor import TreeInterpreter

from loadtests.send_context import CaptureStore, DataTables, batch_key
from sim.errors import LoadTestError
from sim.model import (
    ENV_NAME,
    TRUSTED,
    LoadTest,
    RequestSpec,
    Scenario,
    env_references,
    missing_env,
    references,
    template_environment,
    template_strings,
)

Render = Callable[[dict[str, Any]], Any]
_EMIT = "peaksim_emit"
_SINGLE = re.compile(r"^\{\{(?!-)(.*?)(?<!-)\}\}$", re.DOTALL)


class _Slots:
    """The template strings of one request, compiled into ONE Jinja2 template whose top-level
    ``set`` statements hold each string's value: one render per send, whatever the number of
    templated fields (a render's fixed cost dominates small templates).

    Strings that read neither captures nor data rows nor the clock (``uuid()``, ``randint()``,
    ``zipf()``, ... : the same draws whenever they are made) are rendered ``BATCH`` sends at a
    time by a second template, one loop for all of them; a send takes the next row. A template
    that reads nothing but ``env`` is rendered once, at compile time.
    """

    PREFIX = "peaksim_v"
    BATCH = 32

    def __init__(self, env_values: Mapping[str, str], per_send_names: set[str]) -> None:
        self.parts: list[tuple[str, str, bool]] = []
        """(Jinja statement setting the slot, the slot's variable name, batched)."""
        self.env_values = dict(env_values)
        self.per_send_names = per_send_names
        """Variables whose value belongs to one send (captures, data tables, ``now_ms``)."""

    def add(self, env: ImmutableSandboxedEnvironment, text: str) -> Render:
        """A function of the slot values that gives ``text`` rendered."""
        if "{" not in text:
            return _constant(text)
        index = len(self.parts)
        name = f"{self.PREFIX}{index}"
        match = _SINGLE.match(text)
        single = match is not None and _single_expression(env, text)
        free = meta.find_undeclared_variables(env.parse(text))
        if free <= {ENV_NAME}:
            context = {ENV_NAME: self.env_values}
            value = (env.compile_expression(match.group(1), undefined_to_none=False)(**context)
                     if single and match is not None else env.from_string(text).render(context))
            return _constant(value)
        if single and match is not None:
            statement = f"{{% set {name} = ({match.group(1)}) %}}"
        else:
            statement = f"{{% set {name} %}}{text}{{% endset %}}"
        self.parts.append((statement, name, not (free & self.per_send_names)))
        return lambda values: values[index]

    def compile(self, env: ImmutableSandboxedEnvironment,
                queue_key: str) -> Callable[[dict[str, Any]], list[Any]]:
        """``values(ctx)``: every slot's value for one send. ``ctx[queue_key]`` is the user's
        own queue of batched rows (``base_context`` makes it)."""
        if not self.parts:
            return lambda _ctx: []
        every = _assigner(env, [(s, n) for s, n, _ in self.parts])
        batched = [(i, s, n) for i, (s, n, b) in enumerate(self.parts) if b]
        if not batched:
            return every
        per_send = [(i, s, n) for i, (s, n, b) in enumerate(self.parts) if not b]
        one = _assigner(env, [(s, n) for _, s, n in per_send])
        names = ", ".join(n for _, _, n in batched)
        # each row's values go straight to the user's queue (no text in between)
        loop = env.from_string(
            f"{{% for peaksim_row in range({self.BATCH}) %}}"
            + "".join(s for _, s, _ in batched)
            + f"{{% set peaksim_done = {_EMIT}([{names}]) %}}{{% endfor %}}")
        size = len(self.parts)

        def values(ctx: dict[str, Any]) -> list[Any]:
            queue: deque[list[Any]] = ctx[queue_key]
            if not queue:
                loop.render({**ctx, _EMIT: _trusted(queue.append)})
            row = queue.popleft()
            out: list[Any] = [None] * size
            for (i, _, _), value in zip(batched, row, strict=True):
                out[i] = value
            if per_send:
                for (i, _, _), value in zip(per_send, one(ctx), strict=True):
                    out[i] = value
            return out

        return values


def _trusted(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a template may call it without the sandbox's checks (see
    ``sim.model.RequestEnvironment``): for peaksim's own callables only."""

    def call(*args: Any) -> Any:
        return function(*args)

    setattr(call, TRUSTED, True)
    return call


def _assigner(env: ImmutableSandboxedEnvironment,
              parts: list[tuple[str, str]]) -> Callable[[dict[str, Any]], list[Any]]:
    """One render of the ``set`` statements ``parts``: their values, in order."""
    if not parts:
        return lambda _ctx: []
    template = env.from_string("".join(s for s, _ in parts))
    names = [n for _, n in parts]
    root = template.root_render_func
    name, blocks = template.name, template.blocks

    def values(ctx: dict[str, Any]) -> list[Any]:
        # ``shared``: the context is this send's own dict (made by ``context_for`` from
        # ``base_context``, which holds the environment's globals), so Jinja need not copy
        # it, nor list the globals again. The template only assigns: running its render
        # function fills ``context.vars`` (what ``make_module`` does, without a module).
        context = new_context(env, name, blocks, ctx, True, None)
        for _ in root(context):
            pass
        found = context.vars
        return [found[name] for name in names]

    return values


def _single_expression(env: ImmutableSandboxedEnvironment, text: str) -> bool:
    body = env.parse(text).body
    return (len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1
            and not isinstance(body[0].nodes[0], nodes.TemplateData))


def _compile_value(env: ImmutableSandboxedEnvironment, slots: _Slots, value: Any) -> Render:
    """A function of the slot values that rebuilds ``value`` with its templates rendered."""
    if isinstance(value, str):
        return slots.add(env, value)
    if isinstance(value, dict):
        parts = [(str(k), _compile_value(env, slots, v)) for k, v in value.items()]
        if all(getattr(r, "constant", False) for _, r in parts):
            return _constant(value)
        return lambda values: {k: r(values) for k, r in parts}
    if isinstance(value, list):
        items = [_compile_value(env, slots, v) for v in value]
        if all(getattr(r, "constant", False) for r in items):
            return _constant(value)
        return lambda values: [r(values) for r in items]
    return _constant(value)


def _constant(value: Any) -> Render:
    def render(_values: Any) -> Any:
        return value

    render.constant = True  # type: ignore[attr-defined]
    return render


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
    values: Callable[[dict[str, Any]], list[Any]]
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
        values = self.values(ctx)
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
        slots = _Slots(env_values, {*loadtest.requests, *loadtest.data, "now_ms"})
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
        query = _compile_value(env, slots, spec.query) if spec.query else None
        body = _compile_value(env, slots, body_value) if body_value is not None else None
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
