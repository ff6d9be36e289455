"""A corpus of malformed and extreme scenario files: every input must end in a result or in
one-line refusals naming file, line and field, never a traceback, a hang or a memory blow-up.

Inputs: the classes of the hardening issue as fixed cases, plus a hypothesis strategy that
mutates the shipped scenarios and small runnable ones (values replaced by hostile numbers,
strings, lists and nesting; keys deleted or misspelt; sections replaced; the YAML text cut,
doubled or sprinkled with control characters). Each input is validated; those that validate
are simulated with small run limits (so each run is short) and their files written and read
back. Run as a script it prints the counts as JSON (``tests/test_scenario_corpus.py`` runs it
in a fresh process so that its peak memory is its own):

    PYTHONPATH=$PWD python tests/scenario_corpus.py --examples 1000
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim.engine import RunLimits, simulate
from sim.errors import PeaksimError, ScenarioError
from sim.model import parse_scenario
from sim.report import load_run

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
FILE = "corpus.yaml"
HANG_S = 60
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
RUN_LIMITS = RunLimits(max_requests=20_000, max_tick_rows=2_000, max_control_events=2_000,
                       max_memory_bytes=200_000_000)

SMALL = """\
name: small
seed: 3
duration_s: 60
tick_s: 5
start_clock: "23:59"
traffic:
  kind: keyframes
  keyframes:
    - {at: 0, rps: {a: 5, b: 2}}
    - {at: "00:00:30", rps: {a: 40, b: 10}}
  flash_sales: [{at: 40, duration_s: 10, multiplier: 2}]
services:
  a: {service_time: {dist: lognormal, mean_ms: 30, p99_ms: 150}, workers: 2,
      instances: {min: 1, max: 4, initial: 1}, timeout_ms: 500, max_queue: 20, boot_s: 5,
      retries: {max: 2, backoff_ms: 50, jitter: 0.5}}
  b: {service_time: {dist: empirical, samples_ms: [1, 5, 20]}, workers: 1, instances: 2,
      balancer: round_robin}
slo:
  a: {p95_ms: 300, mean_ms: 80, error_rate: 0.01}
  b: {p99_ms: 100}
autoscaling:
  default: hpa
  interval_s: 5
  scrape_s: 5
  window_s: 10
  variants:
    hpa: {policy: target_tracking, metric: utilization, target: 0.6}
faults:
  - {at: 20, service: a, kill_fraction: 1.0, replace_after_s: 5}
  - {at: 30, service: b, kill: 1, mode: drain, replace: false}
"""

CONSTANT = """\
name: constant
seed: 1
duration_s: 30
traffic: {kind: constant, rps: {s: 20}}
services:
  s: {service_time: {dist: exponential, mean_ms: 50}, workers: 2, instances: 1}
slo: {s: {p95_ms: 400, mean_ms: 120}}
faults: [{at: 10, service: s, kill_fraction: 1.0, replace: false}]
"""

HOSTILE: list[Any] = [
    0, -1, 1, 2**70, -(2**70), 1e308, -1e308, 1e-300, -1e-300, 0.5, float("nan"),
    float("inf"), "1e308", "31d", "400d", "0s", "-5m", "00:05", "25:61", "23:00", "1h", "",
    "x" * 5000, "a/b", "..", "\u00e9\u00e8", None, True, False, [], {}, [1, 2], {"a": 1},
    [[[[[]]]]], {"kind": "constant"}, "constant", "empirical", "least_outstanding",
]


@dataclass
class Counts:
    """What the corpus did."""

    inputs: int = 0
    refused: int = 0
    validated: int = 0
    ran: int = 0
    run_refused: int = 0
    tracebacks: int = 0
    hangs: int = 0
    bad_lines: int = 0
    slowest_run_s: float = 0.0
    examples: list[str] = field(default_factory=list)
    keep: Path | None = None
    """Where to write the inputs that crashed, hung or ran slowest (``--keep DIR``)."""

    def kept(self, kind: str, text: str) -> None:
        if self.keep is not None:
            self.keep.mkdir(parents=True, exist_ok=True)
            (self.keep / f"{kind}-{self.inputs}.yaml").write_text(text, encoding="utf-8")


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("no result within the hang limit")


def _check_refusal(exc: ScenarioError, counts: Counts) -> None:
    for problem in exc.problems:
        text = str(problem)
        ok = "\n" not in text and text.startswith(FILE) and bool(problem.message)
        ok = ok and (not problem.path or problem.line is not None)
        if not ok:
            counts.bad_lines += 1
            if len(counts.examples) < 20:
                counts.examples.append(f"bad refusal: {text[:300]!r}")


def check_text(text: str, counts: Counts, base_dir: str, work: Path) -> None:
    """Validate ``text``; run what validates; count the outcome."""
    counts.inputs += 1
    signal.alarm(HANG_S)
    stage = "validate"
    try:
        try:
            scenario = parse_scenario(text, FILE, base_dir=base_dir)
        except ScenarioError as exc:
            counts.refused += 1
            _check_refusal(exc, counts)
            return
        counts.validated += 1
        stage = "run"
        started = time.perf_counter()
        try:
            result = simulate(scenario, limits=RUN_LIMITS)
        except ScenarioError as exc:
            counts.run_refused += 1
            _check_refusal(exc, counts)
            return
        run_dir = work / f"run{counts.inputs}"
        run_dir.mkdir()
        result.write(run_dir)
        load_run(run_dir)
        counts.ran += 1
        took = time.perf_counter() - started
        if took > 2.0:
            counts.kept("slow", text)
        counts.slowest_run_s = max(counts.slowest_run_s, took)
    except TimeoutError:
        counts.hangs += 1
        counts.kept("hang", text)
        counts.examples.append(f"hang in {stage}: {text[:300]!r}")
    except PeaksimError as exc:  # a typed error other than a scenario problem: still no crash
        if "\n" in str(exc):
            counts.bad_lines += 1
    except Exception:  # noqa: BLE001 - the corpus counts every crash
        counts.tracebacks += 1
        counts.kept("traceback", text)
        if len(counts.examples) < 20:
            counts.examples.append(f"{stage}: {traceback.format_exc(limit=3)[-600:]}\n"
                                   f"input: {text[:400]!r}")
    finally:
        signal.alarm(0)


def fixed_cases() -> list[str]:
    """The classes the issue lists, each as one input."""
    base = CONSTANT
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(8))
    swaps = [
        ("rps: {s: 20}", "rps: {s: 1e308}"), ("rps: {s: 20}", "rps: {s: 1e9}"),
        ("rps: {s: 20}", "rps: {s: 1e6}"), ("rps: {s: 20}}", "rps: {s: 20}, rate_scale: 1e308}"),
        ("rps: {s: 20}}", "rps: {s: 20}, time_scale: 1e308}"),
        ("rps: {s: 20}}", "rps: {s: 20}, time_scale: 1e-308}"),
        ("duration_s: 30", "duration_s: 30\ntick_s: 1e-300"),
        ("mean_ms: 50", "mean_ms: 1e308"),
        ("instances: 1}", "instances: 1, retries: {max: 3, multiplier: 1e308}}"),
        ("duration_s: 30", "duration: 31d\ntick_s: 0.001"),
        ("duration_s: 30", "duration: 1d\ntick_s: 0.01"),
        ("instances: 1}", "instances: 10000000}"),
        ("workers: 2, instances: 1}", "workers: 100000, instances: 100000}"),
        ("name: constant", "name: " + "n" * 5000),
        ("{dist: exponential, mean_ms: 50}", "{dist: empirical, samples_ms: [0]}"),
        ("{dist: exponential, mean_ms: 50}", "{dist: empirical, csv: /dev/zero}"),
        ("{kind: constant, rps: {s: 20}}", "{kind: trace, path: /dev/zero}"),
        ("{kind: constant, rps: {s: 20}}",
         "\n  kind: keyframes\n  keyframes:\n    - {at: \"00:00\", rps: {s: 1}}\n"
         "    - {at: \"00:05\", rps: {s: 2}}"),
    ]
    cases = ["name: " + "[" * 500 + "]" * 500, base + "foo: &f [*f]\n",
             base.replace("name: constant", "name: c\x01"),
             base.replace("seed: 1", "seed: " + "9" * 5000), bomb,
             base + "".join(f"# {i}\n" for i in range(92)) + "bogus: 1\n"]
    colocation = (SCENARIOS / "colocation.yaml").read_text(encoding="utf-8").replace(
        "  policy: {name: colocated, preemption: checkpoint, checkpoint_interval_s: 300}\n"
        "  placement", "  policy: {name: colocated, preemption: bogus}\n  placement")
    return [*cases, colocation, *(base.replace(old, new) for old, new in swaps)]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], op: int, value: Any) -> Any:
    value = copy.deepcopy(value)  # hostile values are shared: never alias them into a document
    if not path:
        return value if op == 0 else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == 0:
        parent[last] = value
    elif op == 1:
        del parent[last]
    elif op == 2 and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)  # a misspelt key
    elif op == 3:
        parent[last] = [parent[last]]
    elif op == 4:
        parent[last] = {"nested": parent[last], "more": value}
    elif isinstance(parent[last], int | float) and not isinstance(parent[last], bool):
        # a number that stays a number: scaled towards (or past) its limits
        factor = value if isinstance(value, int | float) and not isinstance(value, bool) else 10
        parent[last] = parent[last] * factor
    return doc


def _bases() -> list[tuple[str, str]]:
    """The small runnable scenarios (twice: they are the cheap ones) and the shipped ones but
    colocation (its batch CSV makes each validation cost 0.2 s; a fixed case covers it)."""
    shipped = [(p.read_text(encoding="utf-8"), str(SCENARIOS))
               for p in sorted(SCENARIOS.glob("*.yaml")) if p.stem != "colocation"]
    small = [(SMALL, str(SCENARIOS)), (CONSTANT, str(SCENARIOS))]
    return [*small, *small, *shipped]


def _text_mutation(text: str, op: int, position: int, value: str) -> str:
    cut = position % max(1, len(text))
    if op == 0:
        return text[:cut]
    if op == 1:
        return text[:cut] + value + text[cut:]
    lines = text.splitlines(keepends=True)
    line = lines[cut % len(lines)] if lines else ""
    return text[:cut] + line + text[cut:]


def generated(examples: int, emit: Callable[[str, str], None]) -> None:
    """``examples`` inputs drawn by hypothesis (deterministically), each given to ``emit``."""
    bases = _bases()
    docs = [(yaml.safe_load(text), text, base_dir) for text, base_dir in bases]
    mutation = st.tuples(st.integers(0, 10_000), st.integers(0, 6),
                         st.one_of(st.sampled_from(HOSTILE), st.integers(),
                                   st.floats(allow_nan=True, allow_infinity=True),
                                   st.text(max_size=30)))
    text_op = st.tuples(st.integers(0, 2), st.integers(0, 100_000),
                        st.sampled_from(["\x00", "\x01", "\t", ": :", "- [", "&a *a", "!!binary",
                                         "{", "]", "\n  bad: 1\n", "\ufeff", "%YAML 1.1\n"]))

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(st.integers(0, len(docs) - 1), st.lists(mutation, min_size=1, max_size=3),
           st.one_of(st.none(), text_op))
    def draw(which: int, mutations: list[tuple[int, int, Any]],
             raw: tuple[int, int, str] | None) -> None:
        doc, text, base_dir = docs[which]
        doc = copy.deepcopy(doc)
        for index, op, value in mutations:
            paths = _paths(doc)
            doc = _mutate(doc, paths[index % len(paths)], op, value)
        with contextlib.suppress(yaml.YAMLError):  # unwritable: mutate the original text
            text = yaml.dump(doc, Dumper=DUMPER, allow_unicode=True, sort_keys=False)
        if raw is not None:
            text = _text_mutation(text, *raw)
        emit(text, base_dir)

    draw()


def run_corpus(examples: int, keep: Path | None = None) -> dict[str, Any]:
    """Run the fixed cases and ``examples`` generated inputs; the counts as a dict."""
    counts = Counts(keep=keep)
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for text in fixed_cases():
            check_text(text, counts, str(SCENARIOS), work)
        fixed = counts.inputs
        generated(examples, lambda text, base_dir: check_text(text, counts, base_dir, work))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    figures = {k: v for k, v in vars(counts).items() if k != "keep"}
    return {**figures, "fixed": fixed, "peak_rss_mb": round(peak_mb, 1),
            "wall_s": round(time.perf_counter() - started, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None,
                        help="write inputs that crashed, hung or ran over 2 s into this directory")
    args = parser.parse_args(argv)
    print(json.dumps(run_corpus(args.examples, args.keep), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
