"""Synthetic run directories for the report tests, and what ``load_run`` says about bad ones.

``write_synthetic_run`` writes a small 2-service run by hand (no engine): ticks of 10 s from
23:59:00 for 10 minutes. ``browse`` (4 workers per instance, mean service 50 ms, so 80 requests/s
per instance) is offered up to 400 requests/s with only 4 instances ready at first; its per-tick
p99 is above its 300 ms target exactly in the ticks starting at t = 90 .. 300 s, i.e. between
00:00:30 and 00:04:10, worst 2,100 ms at t = 150 s. ``order`` stays well inside its SLO.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import RunDirError
from sim.report import REQUIRED_COLUMNS, load_run

TICK_S = 10.0
TICKS = 60
MISS_FIRST_T_S, MISS_LAST_T_S, WORST_T_S, WORST_P99_MS = 90.0, 300.0, 150.0, 2100.0
BROWSE_WORKERS, BROWSE_MEAN_MS = 4, 50.0


def _browse_rows(t_s: np.ndarray) -> dict[str, np.ndarray]:
    offered = np.where((t_s >= 60) & (t_s < 310), 400.0, 100.0)
    ready = np.where(t_s >= 120, 8.0, 4.0)
    booting = np.where((t_s >= 90) & (t_s < 120), 4.0, 0.0)
    desired = np.where(t_s >= 90, 8.0, 4.0)
    capacity = ready * BROWSE_WORKERS * 1000.0 / BROWSE_MEAN_MS
    utilization = np.minimum(offered / capacity, 1.0)
    p99 = np.full_like(t_s, 120.0)
    miss = (t_s >= MISS_FIRST_T_S) & (t_s <= MISS_LAST_T_S)
    # A tent peaking at WORST_P99_MS at WORST_T_S; at least 400 ms anywhere in the window.
    rise = 1.0 - np.abs(t_s - WORST_T_S) / (MISS_LAST_T_S - WORST_T_S + 10.0)
    p99[miss] = 400.0 + (WORST_P99_MS - 400.0) * rise[miss]
    timed_out = np.where(miss, 3.0, 0.0)
    return {
        "arrivals": offered * TICK_S, "retries": np.zeros_like(t_s),
        "completed": np.minimum(offered, capacity) * TICK_S - timed_out,
        "timed_out": timed_out, "shed": np.where(t_s == WORST_T_S, 5.0, 0.0),
        "failed": np.zeros_like(t_s), "in_queue": np.where(miss, 30.0, 0.2),
        "busy_workers": utilization * ready * BROWSE_WORKERS,
        "instances_desired": desired, "instances_booting": booting, "instances_ready": ready,
        "utilization": utilization, "offered_rps": offered,
        "p50_ms": p99 / 4, "p95_ms": p99 / 1.5, "p99_ms": p99,
    }


def _order_rows(t_s: np.ndarray) -> dict[str, np.ndarray]:
    offered = np.where((t_s >= 60) & (t_s < 300), 40.0, 10.0)
    ready = np.full_like(t_s, 2.0)
    utilization = offered / (ready * 8 * 1000.0 / 60.0)
    p99 = np.full_like(t_s, 250.0)
    return {
        "arrivals": offered * TICK_S, "retries": np.zeros_like(t_s), "completed": offered * TICK_S,
        "timed_out": np.zeros_like(t_s), "shed": np.zeros_like(t_s), "failed": np.zeros_like(t_s),
        "in_queue": np.zeros_like(t_s), "busy_workers": utilization * ready * 8,
        "instances_desired": ready, "instances_booting": np.zeros_like(t_s),
        "instances_ready": ready, "utilization": utilization, "offered_rps": offered,
        "p50_ms": p99 / 5, "p95_ms": p99 / 2, "p99_ms": p99,
    }


def synthetic_summary(policy: str = "static") -> dict[str, Any]:
    """The summary.json of the synthetic run (numbers chosen by hand, see the module doc)."""
    return {
        "peaksim_version": "0.1.0", "kind": "simulation", "scenario": "synthetic",
        "scenario_file": "scenarios/synthetic.yaml", "description": "two services, one miss",
        "seed": 7, "duration_s": TICKS * TICK_S, "tick_s": TICK_S, "start_clock": "23:59",
        "policy": policy, "traffic": {"kind": "keyframes", "rate_scale": 0.001},
        "started_at": "2026-11-10T23:59:00Z", "wall_s": 0.5, "sim_requests": 120000,
        "sim_requests_per_s": 240000.0, "slo_met": False,
        "cost": {"total": 0.5, "currency": "USD"},
        "services": {
            "browse": {
                "requests": 108000, "retries": 0, "completed": 107900, "timed_out": 48,
                "shed": 5, "failed": 0, "final_failures": 43, "error_rate": 0.0004,
                "latency_ms": {"mean": 90.0, "p50": 30.0, "p95": 200.0, "p99": 450.0,
                               "max": 2600.0},
                "offered_peak_rps": 400.0, "instances": {"min": 4, "max": 8, "mean": 7.0},
                "instance_seconds": 4200.0, "cost": 0.3, "scale_events": 1,
                "slo": {"p99_ms": {"target": 300.0, "value": 450.0, "met": False},
                        "error_rate": {"target": 0.001, "value": 0.0004, "met": True}},
                "slo_met": False,
            },
            "order": {
                "requests": 12000, "retries": 0, "completed": 12000, "timed_out": 0, "shed": 0,
                "failed": 0, "final_failures": 0, "error_rate": 0.0,
                "latency_ms": {"mean": 70.0, "p50": 50.0, "p95": 125.0, "p99": 250.0,
                               "max": 700.0},
                "offered_peak_rps": 40.0, "instances": {"min": 2, "max": 2, "mean": 2.0},
                "instance_seconds": 1200.0, "cost": 0.2, "scale_events": 0,
                "slo": {"p99_ms": {"target": 800.0, "value": 250.0, "met": True},
                        "error_rate": {"target": 0.001, "value": 0.0, "met": True}},
                "slo_met": True,
            },
        },
        "events": [{"t_s": 90.0, "service": "browse", "kind": "scale", "from": 4, "to": 8,
                    "reason": "utilization 100% above target 60%"}],
    }


def write_synthetic_run(run_dir: Path, summary: dict[str, Any] | None = None,
                        browse_p99_scale: float = 1.0) -> Path:
    """Write summary.json and timeseries.csv of the synthetic run into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary or synthetic_summary(), indent=2))
    t_s = np.arange(TICKS) * TICK_S
    per_service = {"browse": _browse_rows(t_s), "order": _order_rows(t_s)}
    for column in ("p50_ms", "p95_ms", "p99_ms"):
        per_service["browse"][column] = per_service["browse"][column] * browse_p99_scale
    with (run_dir / "timeseries.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUIRED_COLUMNS)
        for i, t in enumerate(t_s):
            for name, cols in per_service.items():
                writer.writerow([f"{t:g}", name,
                                 *[f"{cols[c][i]:.6g}" for c in REQUIRED_COLUMNS[2:]]])
    return run_dir


def test_synthetic_run_loads_with_both_services(tmp_path: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path / "run"))
    assert run.services == ["browse", "order"]
    assert run.series["browse"].t_s.tolist() == [i * TICK_S for i in range(TICKS)]
    assert run.start_clock_s == 23 * 3600 + 59 * 60


def _expect_error(run_dir: Path, *fragments: str) -> None:
    with pytest.raises(RunDirError) as info:
        load_run(run_dir)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nowhere", "not a directory")
    run_dir = write_synthetic_run(tmp_path / "run")
    (run_dir / "timeseries.csv").unlink()
    _expect_error(run_dir, "timeseries.csv", "missing")
    (run_dir / "summary.json").unlink()
    _expect_error(run_dir, "summary.json", "missing")


def test_corrupt_summary_is_reported_with_field(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    (run_dir / "summary.json").write_text('{"scenario": "x",')
    _expect_error(run_dir, "summary.json:1", "not valid JSON")
    summary = synthetic_summary()
    summary["services"]["order"]["requests"] = "many"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    _expect_error(run_dir, "summary.json", "services.order.requests")
    del summary["tick_s"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    _expect_error(run_dir, "tick_s")


def test_corrupt_timeseries_names_line_and_column(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    path = run_dir / "timeseries.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("utilization")] = "busy"
    path.write_text("\n".join([*lines[:3], ",".join(row), *lines[4:]]) + "\n")
    _expect_error(run_dir, "timeseries.csv:4", "utilization", "'busy'")
    path.write_text(",".join(c for c in header if c != "shed") + "\n")
    _expect_error(run_dir, "missing column", "shed")


def test_services_must_match_between_files(tmp_path: Path) -> None:
    summary = synthetic_summary()
    summary["services"]["payment"] = summary["services"]["order"]
    run_dir = write_synthetic_run(tmp_path / "run", summary)
    _expect_error(run_dir, "no rows for service 'payment'")


def test_cli_report_on_bad_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    (run_dir / "summary.json").write_text("[]")
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "summary.json" in lines[0]
    assert "Traceback" not in result.output


# --- checks of generated files, shared by the report test modules --------------------------


class _Images(HTMLParser):
    """Collects every ``<img src>`` and every tag that could load something from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.sources.append(values.get("src") or "")
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)


def embedded_pngs(html_text: str) -> list[bytes]:
    """The PNG bytes of every image of an HTML page; fails on anything not embedded."""
    parser = _Images()
    parser.feed(html_text)
    parser.close()
    assert parser.external == []
    pngs = []
    for src in parser.sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        data = base64.b64decode(src[len(prefix):], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        pngs.append(data)
    return pngs


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table of a Markdown text, checked for shape: a header, a separator row of
    ``:--``/``--:`` cells, and the same number of cells in every row."""
    tables: list[list[list[str]]] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            rows = [_md_cells(row) for row in block]
            assert len(rows) >= 2, block
            assert all(re.fullmatch(r":?-{2,}:?", cell) for cell in rows[1]), block[1]
            assert {len(row) for row in rows} == {len(rows[0])}, block
            tables.append([rows[0], *rows[2:]])
            block = []
    return tables


def _md_cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def html_tables(html_text: str) -> list[str]:
    """The ``<table>`` elements of a page, verbatim."""
    return re.findall(r"<table>.*?</table>", html_text, flags=re.S)
