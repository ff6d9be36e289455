"""What one send's templates see: the seeded functions, captured records, data rows.

``TemplateFunctions`` binds ``uuid()``, ``randint()``, ``choice()``, ``zipf()``, ``now_ms()``
and ``seq()`` to one user's seeded generator; ``CaptureStore`` holds the records captured from
successful answers (bounded, used once unless ``reuse``); ``DataTables`` the ``data`` CSVs;
``base_context`` is what every render of one user starts from (``declared.context_for`` adds
one send's records and rows). No Locust, no gevent.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid as uuid_module
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from sim.model import ENV_NAME, TRUSTED, LoadTest, read_table, template_environment

MAX_ZIPF_N = 10_000_000
CAPTURE_POOL = 10_000
"""Captured records kept per service; older ones are forgotten (memory stays bounded)."""
REUSE_SPAN = 64
"""A ``reuse: true`` request picks one of this many newest records of its producer."""


class TemplateFunctions:
    """The functions a template may call, bound to one seeded generator.

    ``sequence`` gives ``seq()``: process i of n counts i+1, i+1+n, ... (unique across
    generator processes).
    """

    def __init__(self, rng: random.Random, sequence: Iterator[int] | None = None,
                 zipf_tables: dict[tuple[int, float], np.ndarray] | None = None) -> None:
        self.rng = rng
        self._sequence = sequence if sequence is not None else itertools.count(1)
        """``seq()`` values, shared by the users of a process."""
        self._zipf = zipf_tables if zipf_tables is not None else {}
        """Cumulative distributions of ``zipf(n, s)``, shared by the users of a process."""

    def uuid(self) -> str:
        """A random (version 4) UUID from the seeded generator."""
        return str(uuid_module.UUID(int=self.rng.getrandbits(128), version=4))

    def randint(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]`` (both included)."""
        return self.rng.randint(int(low), int(high))

    def choice(self, options: Any) -> Any:
        return self.rng.choice(list(options))

    def zipf(self, n: int, s: float = 1.0) -> int:
        """A rank in ``1..n`` with probability proportional to ``1 / rank**s`` (hot items)."""
        key = (int(n), float(s))
        cdf = self._zipf.get(key)
        if cdf is None:
            if not 1 <= key[0] <= MAX_ZIPF_N or key[1] < 0:
                raise ValueError(f"zipf(n, s): n must be 1..{MAX_ZIPF_N:,} and s >= 0, "
                                 f"got {n}, {s}")
            weights = 1.0 / np.arange(1, key[0] + 1, dtype=float) ** key[1]
            cdf = np.cumsum(weights / weights.sum())
            cdf[-1] = 1.0
            self._zipf[key] = cdf
        return min(key[0], int(cdf.searchsorted(self.rng.random(), side="right")) + 1)

    @staticmethod
    def now_ms() -> int:
        """Wall-clock time in milliseconds since the epoch."""
        return int(time.time() * 1000)

    def seq(self) -> int:
        """The next number of the process's sequence (unique across processes)."""
        return next(self._sequence)

    for _function in (uuid, randint, choice, zipf, now_ms, seq):
        setattr(getattr(_function, "__func__", _function), TRUSTED, True)
    del _function

    def namespace(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "randint": self.randint, "choice": self.choice,
                "zipf": self.zipf, "now_ms": self.now_ms, "seq": self.seq}



class DataTables:
    """The ``data`` CSV tables of a scenario, read once; one row per table per send."""

    def __init__(self, loadtest: LoadTest, base_dir: str) -> None:
        self.rows = {name: read_table(file, base_dir)[1] for name, file in loadtest.data.items()}

    def draw(self, tables: tuple[str, ...], rng: random.Random) -> dict[str, dict[str, str]]:
        return {name: rng.choice(self.rows[name]) for name in tables}


class CaptureStore:
    """Records captured from successful answers, per producing service (bounded, FIFO)."""

    def __init__(self, maxlen: int = CAPTURE_POOL) -> None:
        self.maxlen = maxlen
        self.pools: dict[str, deque[dict[str, Any]]] = {}

    def put(self, service: str, record: dict[str, Any]) -> None:
        pool = self.pools.get(service)
        if pool is None:
            pool = self.pools[service] = deque(maxlen=self.maxlen)
        pool.append(record)

    def take(self, service: str, reuse: bool, rng: random.Random) -> dict[str, Any] | None:
        """The oldest record (used once), or with ``reuse`` one of the newest (kept)."""
        pool = self.pools.get(service)
        if not pool:
            return None
        if reuse:
            return pool[-1 - rng.randrange(min(len(pool), REUSE_SPAN))]
        return pool.popleft()

    def give_back(self, service: str, record: dict[str, Any]) -> None:
        """Return a record taken for a send that did not happen (it is the oldest again)."""
        self.pools.setdefault(service, deque(maxlen=self.maxlen)).appendleft(record)

    def clear(self) -> None:
        self.pools.clear()


def batch_key(service: str) -> str:
    """The render-context key of a user's queue of pre-rendered rows for ``service``."""
    return f"peaksim_batch_{service}"


def base_context(functions: TemplateFunctions, env_values: Mapping[str, str],
                 services: Iterable[str]) -> dict[str, Any]:
    """What every render of one user sees: Jinja's globals, the functions, ``env``, and the
    user's own queues of pre-rendered rows for ``services``."""
    return {**template_environment().globals, **functions.namespace(),
            ENV_NAME: dict(env_values), **{batch_key(s): deque() for s in services}}
