"""Declared requests' templates, compiled once and rendered once per send.

``compile_value`` turns one field of a request (a string, or JSON/query/form values holding
strings) into a function of the slot values; ``Slots`` collects every templated string of one
request into ONE Jinja2 template, so that a send costs one render whatever its number of
fields (see ``Slots``). Native types: a value that is one ``{{ expression }}`` and nothing else
keeps the expression's own type, as ``jinja2.nativetypes`` does for a single node; unlike it,
a string value stays a string (an id ``"00123"`` is not turned into the number 123).
No Locust, no gevent.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import meta, nodes
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sim.model import ENV_NAME, TRUSTED

Render = Callable[[dict[str, Any]], Any]
_EMIT = "peaksim_emit"
_ROWS = "peaksim_rows"
_STRIDE = 13
"""Steps through first-batch sizes (coprime to ``Slots.BATCH``)."""
_SINGLE = re.compile(r"^\{\{(?!-)(.*?)(?<!-)\}\}$", re.DOTALL)


class Slots:
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

    def compile(self, env: ImmutableSandboxedEnvironment, queue_key: str) -> SlotValues:
        """``values(ctx)``: every slot's value for one send. ``ctx[queue_key]`` is the user's
        own queue of batched rows (``base_context`` makes it)."""
        if not self.parts:
            return SlotValues(lambda _ctx: [])
        every = _assigner(env, [(s, n) for s, n, _ in self.parts])
        batched = [(i, s, n) for i, (s, n, b) in enumerate(self.parts) if b]
        if not batched:
            return SlotValues(every)
        per_send = [(i, s, n) for i, (s, n, b) in enumerate(self.parts) if not b]
        one = _assigner(env, [(s, n) for _, s, n in per_send])
        names = ", ".join(n for _, _, n in batched)
        # each row's values go straight to the user's queue (no text in between)
        loop = env.from_string(
            f"{{% for peaksim_row in range({_ROWS}) %}}"
            + "".join(s for _, s, _ in batched)
            + f"{{% set peaksim_done = {_EMIT}([{names}]) %}}{{% endfor %}}")
        size = len(self.parts)
        primed = itertools.count()
        batch = self.BATCH

        def refill(ctx: dict[str, Any], rows: int = batch) -> None:
            queue: deque[list[Any]] = ctx[queue_key]
            if not queue:
                loop.render({**ctx, _ROWS: rows, _EMIT: _trusted(queue.append)})

        def prime(ctx: dict[str, Any]) -> None:
            # Users of a process spawn together: primed with full batches, they would all
            # run out, and render their next batch, at the same moment, again and again (a
            # burst of work every BATCH sends per user that made sends late). First batches
            # of 1..BATCH rows (a permutation over every BATCH users) spread the refills.
            refill(ctx, 1 + (next(primed) * _STRIDE) % batch)

        def values(ctx: dict[str, Any]) -> list[Any]:
            queue: deque[list[Any]] = ctx[queue_key]
            if not queue:
                refill(ctx)
            row = queue.popleft()
            out: list[Any] = [None] * size
            for (i, _, _), value in zip(batched, row, strict=True):
                out[i] = value
            if per_send:
                for (i, _, _), value in zip(per_send, one(ctx), strict=True):
                    out[i] = value
            return out

        return SlotValues(values, prime)


class SlotValues:
    """``values(ctx)``: the slot values of one send; ``prime(ctx)``: draw a user's first
    batch of rows now (while its users spawn, before t=0) rather than at its first send,
    when every user of a process would draw one at once."""

    def __init__(self, values: Callable[[dict[str, Any]], list[Any]],
                 prime: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.values = values
        self.prime = prime if prime is not None else (lambda _ctx: None)


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


def compile_value(env: ImmutableSandboxedEnvironment, slots: Slots, value: Any) -> Render:
    """A function of the slot values that rebuilds ``value`` with its templates rendered."""
    if isinstance(value, str):
        return slots.add(env, value)
    if isinstance(value, dict):
        parts = [(str(k), compile_value(env, slots, v)) for k, v in value.items()]
        if all(getattr(r, "constant", False) for _, r in parts):
            return _constant(value)
        return lambda values: {k: r(values) for k, r in parts}
    if isinstance(value, list):
        items = [compile_value(env, slots, v) for v in value]
        if all(getattr(r, "constant", False) for r in items):
            return _constant(value)
        return lambda values: [r(values) for r in items]
    return _constant(value)


def _constant(value: Any) -> Render:
    def render(_values: Any) -> Any:
        return value

    render.constant = True  # type: ignore[attr-defined]
    return render
