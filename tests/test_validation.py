"""Bad scenario files through `peaksim validate`: exit 2, one line per problem naming the file,
the line, the field path and what was expected; never a traceback.

Every bad file is the valid BASE file with a few lines changed, so the line numbers asserted
below are those of the text written here (read them off BASE).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.model import Scenario, TrafficModel, load_scenario, parse_scenario, sampler_for

BASE = """\
name: shop
seed: 1
duration_s: 600
start_clock: "23:00"
traffic:
  kind: constant
  rps: {order: 50, payment: 40}
services:
  order:
    service_time: {dist: exponential, mean_ms: 50}
    workers: 8
    instances: {min: 1, max: 10, initial: 2}
    timeout_ms: 2000
  payment:
    service_time: {dist: lognormal, mean_ms: 80, p99_ms: 400}
    workers: 8
    instances: 2
slo:
  order: {p99_ms: 800}
faults:
  - {at: 120, service: payment, kill: 1}
"""
# line numbers in BASE:  3 duration_s, 4 start_clock, 6 kind, 7 rps, 10 order.service_time,
# 11 order.workers, 12 order.instances, 13 timeout_ms, 15 payment.service_time, 19 slo.order,
# 21 faults[0]


MMC = """\
name: mmc-check
seed: 7
duration_s: 3600
traffic: {kind: constant, rps: {browse: 80}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 100}, workers: 10, instances: 1}
slo: {browse: {p99_ms: 500}}
"""


def edit(*changes: tuple[str, str]) -> str:
    """BASE with each (old, new) line replaced once; fails loudly if `old` is not there."""
    text = BASE
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in BASE"
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Expect:
    """One expected error line: ``error: FILE:LINE: PATH: ...TEXT...``."""

    line: int | None
    path: str
    text: str


def run_validate(runner: CliRunner, file: Path) -> list[str]:
    """Validate ``file``; assert the failure contract; return the error lines."""
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""  # nothing reported as ok
    return result.stderr.strip().splitlines()


def check_lines(lines: list[str], file: Path, expected: list[Expect]) -> None:
    assert len(lines) == len(expected), "\n".join(lines)
    for got, want in zip(lines, expected, strict=True):
        where = f"{file}:{want.line}" if want.line is not None else str(file)
        prefix = f"error: {where}: {want.path}: " if want.path else f"error: {where}: "
        assert got.startswith(prefix), f"{got!r} should start with {prefix!r}"
        assert want.text in got, f"{got!r} should say {want.text!r}"


CASES: dict[str, tuple[str, list[Expect]]] = {
    "yaml-syntax": (
        edit(("  rps: {order: 50, payment: 40}", "  rps: {order: 50, payment: 40")),
        [Expect(8, "", "YAML syntax error: expected ',' or '}'")],
    ),
    "top-level-list": ("- name: shop\n- seed: 1\n", [Expect(1, "", "expected a mapping")]),
    "unknown-top-level-key": (
        edit(("seed: 1", "sede: 1")),
        [Expect(2, "sede", "unknown key 'sede' (did you mean 'seed'?)")],
    ),
    "unknown-nested-key": (
        edit(("    timeout_ms: 2000", "    timeout: 2000")),
        [Expect(13, "services.order.timeout",
                "unknown key 'timeout' (did you mean 'timeout_ms'?)")],
    ),
    "wrong-type-int": (
        edit(("    workers: 8\n    instances: {min: 1",
              "    workers: eight\n    instances: {min: 1")),
        [Expect(11, "services.order.workers", "expected a whole number, got 'eight'")],
    ),
    "wrong-type-mapping": (
        edit(("  rps: {order: 50, payment: 40}", "  rps: [50, 40]")),
        [Expect(7, "traffic.rps", "expected a mapping (key: value), got a list")],
    ),
    "boolean-for-number": (
        edit(("    timeout_ms: 2000", "    timeout_ms: true")),
        [Expect(13, "services.order.timeout_ms", "expected a number, got true")],
    ),
    "negative-rate": (
        edit(("{order: 50, payment: 40}", "{order: -5, payment: 40}")),
        [Expect(7, "traffic.rps.order", "expected a value > 0, got -5")],
    ),
    "zero-rate": (
        edit(("{order: 50, payment: 40}", "{order: 50, payment: 0}")),
        [Expect(7, "traffic.rps.payment", "expected a value > 0, got 0")],
    ),
    "zero-duration": (
        edit(("duration_s: 600", "duration_s: 0")),
        [Expect(3, "duration_s", "expected a duration > 0, got 0")],
    ),
    "negative-duration": (
        edit(("duration_s: 600", "duration: -10m")),
        [Expect(3, "duration", "expected a duration > 0, got '-10m'")],
    ),
    "unreadable-duration": (
        edit(("duration_s: 600", "duration: 2 hours")),
        [Expect(3, "duration",
                "expected a duration such as 90, '90s', '15m' or '2h', got '2 hours'")],
    ),
    "duration-twice": (
        edit(("duration_s: 600", "duration_s: 600\nduration: 10m")),
        [Expect(4, "duration", "give duration or duration_s, not both")],
    ),
    "min-above-max": (
        edit(("{min: 1, max: 10, initial: 2}", "{min: 12, max: 10}")),
        [Expect(12, "services.order.instances.min", "min (12) must not exceed max (10)")],
    ),
    "initial-out-of-bounds": (
        edit(("{min: 1, max: 10, initial: 2}", "{min: 1, max: 10, initial: 11}")),
        [Expect(12, "services.order.instances.initial", "initial (11) must lie within min..max")],
    ),
    "instances-zero": (
        edit(("    instances: 2", "    instances: 0")),
        [Expect(17, "services.payment.instances", "expected a fixed count (an integer >= 1)")],
    ),
    "constant-unknown-service": (
        edit(("{order: 50, payment: 40}", "{order: 50, paymnt: 40}")),
        [Expect(7, "traffic.rps.paymnt", "names service 'paymnt' (did you mean 'payment'?), "
                "which is not under 'services' (order, payment)")],
    ),
    "keyframes-unknown-service": (
        edit(("  kind: constant\n  rps: {order: 50, payment: 40}",
              "  kind: keyframes\n  keyframes:\n    - {at: 0, rps: {order: 5}}\n"
              "    - {at: 60, rps: {browse: 5}}")),
        [Expect(9, "traffic.keyframes[1].rps.browse", "names service 'browse'")],
    ),
    "singles-day-unknown-service": (
        edit(("  kind: constant\n  rps: {order: 50, payment: 40}",
              "  kind: singles_day\n  peak_rps: {order: 500, checkout: 400}")),
        [Expect(7, "traffic.peak_rps.checkout", "names service 'checkout'")],
    ),
    "flash-sale-unknown-service": (
        edit(("  rps: {order: 50, payment: 40}",
              "  rps: {order: 50, payment: 40}\n  flash_sales:\n"
              "    - {at: 60, duration_s: 30, multiplier: 4, services: [order, cart]}")),
        [Expect(9, "traffic.flash_sales[0].services[1]", "names service 'cart'")],
    ),
    "slo-unknown-service": (
        edit(("  order: {p99_ms: 800}", "  ordr: {p99_ms: 800}")),
        [Expect(19, "slo.ordr", "names service 'ordr' (did you mean 'order'?)")],
    ),
    "fault-unknown-service": (
        edit(("service: payment, kill: 1", "service: pay, kill: 1")),
        [Expect(21, "faults[0].service", "names service 'pay'")],
    ),
    "unknown-traffic-kind": (
        edit(("  kind: constant", "  kind: constnat")),
        [Expect(6, "traffic.kind", "unknown kind 'constnat' (did you mean 'constant'?); "
                "expected one of: constant, keyframes, singles_day, trace")],
    ),
    "missing-traffic-kind": (
        edit(("  kind: constant\n", "")),
        [Expect(5, "traffic.kind", "required field is missing; expected one of: constant")],
    ),
    "unknown-dist": (
        edit(("{dist: exponential, mean_ms: 50}", "{dist: exponental, mean_ms: 50}")),
        [Expect(10, "services.order.service_time.dist",
                "unknown value 'exponental' (did you mean 'exponential'?)")],
    ),
    "lognormal-without-spread": (
        edit(("{dist: lognormal, mean_ms: 80, p99_ms: 400}", "{dist: lognormal, mean_ms: 80}")),
        [Expect(15, "services.payment.service_time.p99_ms", "needs p99_ms (or sigma)")],
    ),
    "lognormal-p99-below-mean": (
        edit(("{dist: lognormal, mean_ms: 80, p99_ms: 400}",
              "{dist: lognormal, mean_ms: 80, p99_ms: 60}")),
        [Expect(15, "services.payment.service_time.p99_ms", "p99_ms/mean_ms must be between 1")],
    ),
    "uniform-min-not-below-max": (
        edit(("{dist: exponential, mean_ms: 50}", "{dist: uniform, min_ms: 50, max_ms: 50}")),
        [Expect(10, "services.order.service_time.min_ms", "min_ms (50) must be below max_ms (50)")],
    ),
    "parameter-of-another-dist": (
        edit(("{dist: exponential, mean_ms: 50}", "{dist: exponential, mean_ms: 50, sigma: 1}")),
        [Expect(10, "services.order.service_time.sigma", "does not apply to dist 'exponential'")],
    ),
    "keyframes-out-of-order": (
        edit(("  kind: constant\n  rps: {order: 50, payment: 40}",
              "  kind: keyframes\n  keyframes:\n    - {at: 0, rps: {order: 5}}\n"
              "    - {at: 5m, rps: {order: 9}}\n    - {at: 60, rps: {order: 7}}")),
        [Expect(10, "traffic.keyframes[2].at", "60 s is not after the previous keyframe (300 s)")],
    ),
    "clock-time-without-start-clock": (
        edit(('start_clock: "23:00"\n', ""), ("{at: 120, service", "{at: '23:05', service")),
        [Expect(20, "faults[0].at", "clock time '23:05' needs a top-level 'start_clock'")],
    ),
    "bad-start-clock": (
        edit(('start_clock: "23:00"', 'start_clock: "24:30"')),
        [Expect(4, "start_clock", "expected a clock time between 00:00 and 23:59:59")],
    ),
    "fault-after-end-of-run": (
        edit(("{at: 120, service", "{at: '22:59', service")),
        [Expect(21, "faults[0].at", "at or after the end of the run (10m)")],
    ),
    "fault-kill-and-fraction": (
        edit(("service: payment, kill: 1", "service: payment, kill: 1, kill_fraction: 0.5")),
        [Expect(21, "faults[0].kill_fraction", "give kill or kill_fraction, not both")],
    ),
    "duplicate-key": (
        edit(("    workers: 8\n    instances: 2",
              "    workers: 8\n    workers: 4\n    instances: 2")),
        [Expect(17, "services.payment.workers",
                "duplicate key 'workers' (first given on line 16)")],
    ),
    "several-problems": (
        edit(("seed: 1", "seed: -1"), ("mean_ms: 50}", "mean_ms: 0}"),
             ("    timeout_ms: 2000", "    timeout_ms: 2000\n    boot: 30s"),
             ("  order: {p99_ms: 800}",
              "  order: {p99_ms: 800, error_rate: 2}\n  pay: {p99_ms: 9}")),
        [
            Expect(2, "seed", "expected a value >= 0, got -1"),
            Expect(10, "services.order.service_time.mean_ms", "expected a value >= 0.001, got 0"),
            Expect(14, "services.order.boot", "unknown key 'boot' (did you mean 'boot_s'?)"),
            Expect(20, "slo.order.error_rate", "expected a value <= 1, got 2"),
            # Unknown services are reported in the same pass as the other problems.
            Expect(21, "slo.pay", "names service 'pay'"),
        ],
    ),
}


def test_base_file_is_valid(tmp_path: Path, runner: CliRunner) -> None:
    file = tmp_path / "base.yaml"
    file.write_text(BASE)
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_reported_line_by_line(case: str, tmp_path: Path, runner: CliRunner) -> None:
    text, expected = CASES[case]
    file = tmp_path / f"{case}.yaml"
    file.write_text(text)
    check_lines(run_validate(runner, file), file, expected)


def test_missing_empty_and_directory(tmp_path: Path, runner: CliRunner) -> None:
    missing, empty, comments = tmp_path / "nope.yaml", tmp_path / "empty.yaml", tmp_path / "c.yaml"
    empty.write_text("")
    comments.write_text("# only a comment\n")
    files = [str(missing), str(empty), str(comments), str(tmp_path)]
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {missing}: file not found",
        f"error: {empty}: file is empty, expected a scenario mapping",
        f"error: {comments}: file is empty, expected a scenario mapping",
        f"error: {tmp_path}: is a directory, expected a YAML file",
    ]


def test_valid_and_invalid_files_together(tmp_path: Path, runner: CliRunner) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BASE)
    bad.write_text(edit(("seed: 1", "seed: x")))
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.stdout.strip() == f"ok: {good} (shop, 2 services)"
    assert result.stderr.strip() == f"error: {bad}:2: seed: expected a whole number, got 'x'"


TRACE_SCENARIO = """\
name: replay
seed: 3
duration_s: 120
traffic: {kind: trace, path: rates.csv}
services:
  order: {service_time: {dist: constant, mean_ms: 5}, workers: 1, instances: 1}
"""


@pytest.mark.parametrize(
    ("csv_text", "texts"),
    [
        (None, ["cannot read trace"]),
        ("t_s,order_rps,cart_rps\n0,5,1\n60,6,2\n", ["column 'cart_rps' is not '<service>_rps'"]),
        ("time,order_rps\n0,5\n", ["expected a 't_s' column", "column 'time' is not"]),
        ("t_s,order_rps\n0,5\n60,6\n60,7\n", ["t_s must be strictly increasing"]),
        ("t_s,order_rps\n0,5\n60,lots\n", ["expected numbers"]),
        ("t_s,order_rps\n", ["expected a header and at least one row"]),
    ],
    ids=["missing", "bad-column", "no-t_s", "non-increasing", "not-a-number", "no-rows"],
)
def test_bad_trace_csv(
    csv_text: str | None, texts: list[str], tmp_path: Path, runner: CliRunner
) -> None:
    file = tmp_path / "replay.yaml"
    file.write_text(TRACE_SCENARIO)
    if csv_text is not None:
        (tmp_path / "rates.csv").write_text(csv_text)
    lines = run_validate(runner, file)
    check_lines(lines, file, [Expect(4, "traffic.path", text) for text in texts])


def test_unquoted_clock_times_stay_clock_times() -> None:
    # YAML 1.1 reads a bare 23:00 as the base-60 integer 1380; scenario files must not.
    text = edit(('start_clock: "23:00"', "start_clock: 23:00"),
                ("{at: 120, service", "{at: 23:05, service"))
    scenario = parse_scenario(text)
    assert scenario.start_clock == "23:00"
    assert scenario.faults[0].at == 300.0  # five minutes after t=0


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("600", 600.0), ("'600'", 600.0), ("10m", 600.0), ("0.5h", 1800.0), ("1h30m", 5400.0),
     ("'90s'", 90.0), ("2d", 172800.0), ("1500ms", 1.5)],
)
def test_duration_forms(written: str, seconds: float) -> None:
    scenario = parse_scenario(MMC.replace("duration_s: 3600", f"duration: {written}"))
    assert scenario.duration_s == seconds


def test_model_validate_resolves_clock_times_on_its_own() -> None:
    # Code that builds scenarios from dicts (not through the loader) gets the same times.
    data = yaml.safe_load(BASE)
    data["faults"][0]["at"] = "23:05"
    assert Scenario.model_validate(data).faults[0].at == 300.0


def test_time_forms_resolve_against_start_clock() -> None:
    # start 23:00: "23:05" is 300 s in, "00:05" the next day is 3900 s in; "4m" is 240 s.
    text = edit(("duration_s: 600", "duration: 2h"), ("{at: 120, service: payment, kill: 1}",
                "{at: '00:05', service: payment, kill: 1}\n  - {at: 4m, service: order, kill: 1}"
                "\n  - {at: '23:05', service: order, kill_fraction: 0.5}"))
    assert [f.at for f in parse_scenario(text).faults] == [3900.0, 240.0, 300.0]


def test_minimal_mmc_file_means_m_m_10(tmp_path: Path, runner: CliRunner) -> None:
    file = tmp_path / "mmc.yaml"
    file.write_text(MMC)
    assert runner.invoke(app, ["validate", str(file)]).exit_code == 0
    scenario = load_scenario(file)
    browse = scenario.services["browse"]
    assert (browse.workers, browse.instances.min, browse.instances.max) == (10, 1, 1)
    assert browse.instances.start == 1
    assert browse.timeout_ms == 0 and browse.boot_s == 0  # no timeout, ready at once
    sampler = sampler_for(browse.service_time)
    # Exponential with mean 100 ms: E[S] = 100, E[S^2] = 2 * 100^2.
    assert sampler.mean_ms == 100.0 and sampler.second_moment_ms2 == 20_000.0
    model = TrafficModel(scenario)
    times = [0.0, 1.5, 1800.0, 3599.9]
    assert [model.rate_rps("browse", t) for t in times] == [80.0] * 4
    assert model.expected_count("browse", 0.0, 3600.0) == pytest.approx(80 * 3600, rel=1e-12)
    assert scenario.slo["browse"].items() == [("p99_ms", 500.0)]
    # rho = lambda / (c mu) = 80 / (10 * 10) = 0.8: a stable queue.
    assert 80 / (browse.workers * 1000 / sampler.mean_ms) == pytest.approx(0.8)


def test_schema_command_prints_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["type"] == "object" and document["additionalProperties"] is False
    assert {"services", "traffic", "slo", "duration", "duration_s"} <= set(document["properties"])
    defs = document["$defs"]
    service_ref = document["properties"]["services"]["additionalProperties"]["$ref"]
    service = defs[service_ref.split("/")[-1]]
    assert {"service_time", "workers", "instances"} <= set(service["required"])
    kinds = set(document["properties"]["traffic"]["discriminator"]["mapping"])
    assert kinds == {"constant", "keyframes", "singles_day", "trace"}


def test_shipped_scenarios_conform_to_the_json_schema(
    runner: CliRunner, scenarios_dir: Path
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = json.loads(runner.invoke(app, ["schema"]).stdout)
    validator = jsonschema.Draft202012Validator(document)
    validator.check_schema(document)
    for file in sorted(scenarios_dir.glob("*.yaml")):
        data = yaml.safe_load(file.read_text())
        assert list(validator.iter_errors(data)) == [], file
    bad = yaml.safe_load(edit(("seed: 1", "sede: 1")))
    assert any(re.search("sede", e.message) for e in validator.iter_errors(bad))
    # a variant with a misspelt parameter is caught by the schema too (editors flag it)
    typo = yaml.safe_load((scenarios_dir / "singles-day.yaml").read_text())
    typo["autoscaling"]["variants"]["hpa"]["targt"] = 0.6
    assert list(validator.iter_errors(typo)) != []


# ------------------------------------------------------------------ property: never a traceback

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["15m", "-1h", "00:05", "23:61", "1h30m", "constant", "lognormal", "order",
                     "payment", "kind", "linear", "log"]),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["order", "payment", "min", "max", "at", "rps", "x"]),
                    _SCALARS, max_size=3),
)


def _node_paths(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    paths = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _node_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += _node_paths(value, (*path, i))
    return paths


def _mutate(data: dict, choice: int, op: str, value: object) -> None:
    paths = _node_paths(data)
    path = paths[choice % len(paths)]
    parent = data
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "add" and isinstance(parent, dict):
        parent[f"extra_{choice % 3}"] = value
    else:
        parent[path[-1]] = value  # type: ignore[index]


def _shipped(name: str) -> dict:
    return yaml.safe_load((Path(__file__).resolve().parent.parent / "scenarios" / name).read_text())


_BASES = [yaml.safe_load(BASE), _shipped("singles-day.yaml"), _shipped("flash-sale.yaml")]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    base=st.sampled_from(range(len(_BASES))),
    mutations=st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["replace", "delete", "add"]), _VALUES),
        min_size=1, max_size=3,
    ),
)
def test_mutated_scenarios_never_crash(base: int, mutations: list, tmp_path_factory) -> None:
    data = copy.deepcopy(_BASES[base])
    for choice, op, value in mutations:
        _mutate(data, choice, op, value)
    file = tmp_path_factory.mktemp("fuzz") / "mutated.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(file)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert lines and all(line.startswith(f"error: {file}") for line in lines), lines
