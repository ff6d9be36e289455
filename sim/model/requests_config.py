"""The ``loadtest`` section of a scenario: replay defaults and the declared requests.

A scenario says, per service, the HTTP request a load test sends for it::

    loadtest:
      host: http://127.0.0.1:8099          # or --host
      headers: {X-Api-Key: "{{ env.SHOP_API_KEY }}"}
      requests:
        checkout:
          method: POST
          path: /api/v2/carts/checkout
          json: {customer: "{{ uuid() }}", lines: [{sku: "{{ randint(1, 5000) }}"}]}
          capture: {order_ref: data.orderRef}     # JMESPath into the JSON answer
        pay:
          method: POST
          path: "/api/v2/orders/{{ checkout.order_ref }}/payment"

Strings of ``path``, ``headers``, ``query``, ``json``, ``form`` and ``body`` are Jinja2
templates (compiled once, rendered per send, in Jinja's sandbox with undefined variables as
errors). ``capture`` and ``expect.json`` are JMESPath expressions. The names a template may use
are listed in ``TEMPLATE_FUNCTIONS`` plus ``env``, the ``data`` tables and ``SERVICE.CAPTURE``.

``check_requests`` finds every problem a declaration can have before anything is sent: a
template or JMESPath expression that does not compile, an unknown variable, a capture of an
unknown service or capture name, and a cycle of captures. Imports no Locust and no gevent.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import jmespath
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jmespath.exceptions import JMESPathError
from pydantic import Field, field_validator

from sim.schema import MAX_RATE_SCALE, MAX_TIME_SCALE, MIN_SCALE, Loc, PositiveDuration, Strict

TEMPLATE_FUNCTIONS = ("uuid", "randint", "choice", "zipf", "now_ms", "seq")
"""Functions every template may call (bound per generator user; see loadtests.declared)."""
ENV_NAME = "env"
RESERVED = frozenset((*TEMPLATE_FUNCTIONS, ENV_NAME, "row", "loop", "range", "true", "false"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_DATA_ROWS = 1_000_000
"""Most rows a ``data`` CSV may hold (they are kept in memory by every generator process)."""


TRUSTED = "peaksim_trusted"
"""Attribute that marks peaksim's own template functions (``uuid()``, ``zipf()``, ...)."""


class RequestEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, calling peaksim's own template functions (marked ``TRUSTED``) directly:
    they are not the scenario's code, and the sandbox's checks per call cost a tenth of a
    send's CPU in the load generator. Everything else is checked as by the sandbox."""

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805 (Jinja's own form)
             **kwargs: Any) -> Any:
        if getattr(__obj, TRUSTED, False):
            if kwargs:  # Jinja's own bookkeeping of loop and block variables
                kwargs.pop("_loop_vars", None)
                kwargs.pop("_block_vars", None)
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def template_environment() -> ImmutableSandboxedEnvironment:
    """The one Jinja2 environment of declared requests: sandboxed (a scenario file cannot reach
    Python internals), undefined variables are errors, no autoescaping (not HTML)."""
    return RequestEnvironment(undefined=StrictUndefined, autoescape=False,
                              keep_trailing_newline=True)


class Expect(Strict):
    """A check of a successful answer: ``json`` is a JMESPath expression over the JSON body
    that must be true (JMESPath truthiness: not false, null, empty)."""

    json_check: str = Field(alias="json", min_length=1)


class RequestSpec(Strict):
    """The request one service sends per intended send time.

    ``timeout_s``: client timeout per attempt (default: the run's ``--request-timeout``).
    ``success``: status codes counted as completed (default: any 2xx). ``reuse``: captured
    values this request consumes may be used again (default: each is used once).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    body: str | None = None
    capture: dict[str, str] = Field(default_factory=dict)
    reuse: bool = False
    success: tuple[int, ...] | None = Field(default=None, min_length=1)
    expect: Expect | None = None
    timeout_s: PositiveDuration | None = None

    @field_validator("success")
    @classmethod
    def _codes(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and any(not 100 <= code <= 599 for code in value):
            raise ValueError("status codes are 100..599")
        return value

    @field_validator("capture")
    @classmethod
    def _capture_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"capture name {name!r} must be an identifier "
                                 f"(letters, digits, _), used as SERVICE.{name}")
        return value

    def body_count(self) -> int:
        return sum(x is not None for x in (self.json_body, self.form, self.body))


class LoadTest(Strict):
    """Defaults for replaying this scenario with Locust (CLI flags override them), and the
    requests a load test sends per service (``RequestSpec``).

    ``data`` maps a table name to a CSV file (relative to the scenario); each send that uses
    ``NAME.COLUMN`` draws one row of that table at random.
    """

    time_scale: float = Field(default=1.0, ge=MIN_SCALE, le=MAX_TIME_SCALE)
    rate_scale: float = Field(default=1.0, ge=MIN_SCALE, le=MAX_RATE_SCALE)
    duration_s: PositiveDuration | None = None
    window_s: float = Field(default=10.0, gt=0, le=60)
    host: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    requests: dict[str, RequestSpec] = Field(default_factory=dict)
    data: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------------- template analysis
def template_strings(spec: RequestSpec) -> Iterator[tuple[Loc, str]]:
    """Every template string of a request, with its path inside the request."""
    yield ("path",), spec.path
    for key, value in spec.headers.items():
        yield ("headers", key), value
    yield from _strings(("query",), spec.query)
    if spec.json_body is not None:
        yield from _strings(("json",), spec.json_body)
    if spec.form is not None:
        yield from _strings(("form",), spec.form)
    if spec.body is not None:
        yield ("body",), spec.body


def _strings(loc: Loc, value: Any) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings((*loc, str(key)), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings((*loc, index), item)


def references(ast: nodes.Template, names: set[str]) -> Iterator[tuple[str, str | None]]:
    """``(name, attribute)`` of each use of one of ``names`` in ``ast``: ``svc.cap`` and
    ``svc['cap']`` give the attribute, a bare ``svc`` gives None."""
    parents: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        inner = node.node
        if isinstance(inner, nodes.Name) and inner.name in names:
            parents.add(id(inner))
            if isinstance(node, nodes.Getattr):
                yield inner.name, node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                yield inner.name, node.arg.value
            else:
                yield inner.name, None
    for name_node in ast.find_all(nodes.Name):
        if name_node.name in names and id(name_node) not in parents and name_node.ctx == "load":
            yield name_node.name, None


def check_requests(loadtest: LoadTest, services: Mapping[str, Any],
                   base_dir: str) -> list[tuple[Loc, str]]:
    """Every problem of ``loadtest`` (paths relative to the section), [] if none."""
    problems: list[tuple[Loc, str]] = []
    requests = loadtest.requests
    known = sorted(services)
    for name in requests:
        if name not in services:
            problems.append((("requests", name), f"names service '{name}', which is not under "
                                                 f"'services' ({', '.join(known)})"))
    tables: dict[str, set[str]] = {}
    for table, file in loadtest.data.items():
        loc: Loc = ("data", table)
        if not _NAME.match(table) or table in RESERVED or table in services:
            problems.append((loc, f"table name {table!r} must be an identifier other than a "
                                  f"service name and {', '.join(sorted(RESERVED))}"))
            continue
        try:
            tables[table] = set(read_table(file, base_dir)[0])
        except ValueError as exc:
            problems.append((loc, str(exc)))
    env = template_environment()
    uses: dict[str, set[str]] = {}
    for loc, text in _all_templates(loadtest):
        service = str(loc[1]) if loc[0] == "requests" else None
        try:
            ast = env.parse(text)
        except TemplateSyntaxError as exc:
            problems.append((loc, f"template does not compile: {exc.message} (in {text!r})"))
            continue
        problems += _check_names(ast, loc, requests, tables)
        for target, capture in references(ast, set(requests)):
            if capture is not None and capture in requests[target].capture and service:
                uses.setdefault(service, set()).add(target)
    for name, spec in requests.items():
        for capture, expression in spec.capture.items():
            problems += _jmespath_problem(("requests", name, "capture", capture), expression)
        if spec.expect is not None:
            problems += _jmespath_problem(("requests", name, "expect", "json"),
                                          spec.expect.json_check)
        if spec.body_count() > 1:
            problems.append((("requests", name), "give at most one of json, form, body"))
        if not spec.path.startswith(("/", "{{")):
            problems.append((("requests", name, "path"), "expected a path starting with '/'"))
    cycle = _cycle(uses)
    if cycle:
        problems.append((("requests", cycle[0]), "captures form a cycle: "
                                                  + " -> ".join([*cycle, cycle[0]])
                                                  + " (no request of it could ever be sent)"))
    return problems


def _all_templates(loadtest: LoadTest) -> Iterator[tuple[Loc, str]]:
    for key, value in loadtest.headers.items():
        yield ("headers", key), value
    for name, spec in loadtest.requests.items():
        for loc, text in template_strings(spec):
            yield ("requests", name, *loc), text


def _check_names(ast: nodes.Template, loc: Loc, requests: Mapping[str, RequestSpec],
                 tables: Mapping[str, set[str]]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    allowed = {*TEMPLATE_FUNCTIONS, ENV_NAME, *requests, *tables}
    for name in sorted(meta.find_undeclared_variables(ast)):
        if name not in allowed:
            problems.append((loc, f"unknown variable '{name}'; known: "
                                  f"{', '.join(sorted(allowed))}"))
    for target, attribute in references(ast, set(requests)):
        captures = sorted(requests[target].capture)
        if attribute is None:
            problems.append((loc, f"use a capture of '{target}' as {target}.NAME"))
        elif attribute not in requests[target].capture:
            have = ", ".join(captures) if captures else "none"
            problems.append((loc, f"'{target}' has no capture '{attribute}' (its captures: "
                                  f"{have})"))
    for table, column in references(ast, set(tables)):
        if column is None or column not in tables[table]:
            problems.append((loc, f"data table '{table}' has no column {column!r} (columns: "
                                  f"{', '.join(sorted(tables[table]))})"))
    for _name, attribute in references(ast, {ENV_NAME}):
        if attribute is None:
            problems.append((loc, "use an environment variable as env.NAME"))
    return problems


def _jmespath_problem(loc: Loc, expression: str) -> list[tuple[Loc, str]]:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        first = str(exc).splitlines()[0]
        return [(loc, f"JMESPath expression {expression!r} does not compile: {first}")]
    return []


def _cycle(uses: Mapping[str, set[str]]) -> list[str]:
    """One cycle of the graph ``service -> services whose captures it uses``, or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(uses.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(uses):
        if start not in state and (found := visit(start)):
            return found
    return []


def env_references(loadtest: LoadTest) -> list[tuple[Loc, str]]:
    """``(path, NAME)`` of every ``env.NAME`` the section's templates use."""
    env = template_environment()
    found: list[tuple[Loc, str]] = []
    for loc, text in _all_templates(loadtest):
        try:
            ast = env.parse(text)
        except TemplateSyntaxError:
            continue  # reported by check_requests
        found += [(loc, attr) for _, attr in references(ast, {ENV_NAME}) if attr is not None]
    return found


def missing_env(loadtest: LoadTest, environ: Mapping[str, str] = os.environ,
                ) -> list[tuple[Loc, str]]:
    """``(path, message)`` per ``env.NAME`` that ``environ`` lacks."""
    return [(loc, f"environment variable {name} is not set (templates read secrets from the "
                  f"environment only)")
            for loc, name in env_references(loadtest) if name not in environ]


def read_table(file: str, base_dir: str) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a ``data`` CSV with a header row; ``ValueError`` if unusable."""
    path = Path(file) if Path(file).is_absolute() else Path(base_dir) / file
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = []
            for row in reader:
                rows.append(row)
                if len(rows) > MAX_DATA_ROWS:
                    raise ValueError(f"{file}: more than {MAX_DATA_ROWS:,} rows")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read CSV {file}: {exc}") from None
    if not columns or not rows:
        raise ValueError(f"{file}: expected a header row and at least one data row")
    bad = [c for c in columns if not _NAME.match(c)]
    if bad:
        raise ValueError(f"{file}: column names must be identifiers, got {', '.join(bad)}")
    return columns, rows
