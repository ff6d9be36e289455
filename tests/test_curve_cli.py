"""`peaksim curve`: traffic.csv and traffic.png in the output directory, the peak table on
stdout, exit 2 on a bad scenario."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [[float(cell) for cell in row] for row in rows[1:]]


def peak_table(stdout: str) -> dict[str, tuple[float, str]]:
    """service -> (peak rps, when) from the printed table rows."""
    table = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 4 and re.fullmatch(r"[\d,]+\.\d", cells[1]):
            table[cells[0]] = (float(cells[1].replace(",", "")), cells[2])
    return table


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk that follows the PNG signature."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_curve_writes_csv_and_png_matching_the_peak_table(
    tmp_path: Path, runner: CliRunner, scenarios_dir: Path
) -> None:
    out = tmp_path / "curve"
    scenario = str(scenarios_dir / "singles-day.yaml")
    result = runner.invoke(app, ["curve", scenario, "--out", str(out)])
    assert result.exit_code == 0, result.output
    header, rows = read_csv(out / "traffic.csv")
    assert header == ["t_s", "browse_rps", "order_rps", "payment_rps"]
    times = [row[0] for row in rows]
    assert times[0] == 0.0 and times[-1] == 7200.0  # the 2-hour window, 23:00 to 01:00
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    table = peak_table(result.stdout)
    assert set(table) == {"browse", "order", "payment"}
    for column, name in enumerate(header[1:], start=1):
        service = name.removesuffix("_rps")
        csv_peak = max(row[column] for row in rows)
        printed_peak = table[service][0]
        # The CSV keeps 6 significant digits, the table one decimal.
        assert csv_peak == pytest.approx(printed_peak, abs=0.05 + 1e-5 * printed_peak)
    # 2020 shape: orders peak 26 s after midnight, payments 20 s later (peak_delay_s).
    assert table["order"] == (583.0, "00:00:26")
    assert table["payment"][1] == "00:00:46"
    width, height = png_size((out / "traffic.png").read_bytes())
    assert width >= 600 and height >= 400


def test_curve_log_scale_and_scaling_options(
    tmp_path: Path, runner: CliRunner, scenarios_dir: Path
) -> None:
    scenario = str(scenarios_dir / "flash-sale.yaml")
    linear, log = tmp_path / "linear", tmp_path / "log"
    assert runner.invoke(app, ["curve", scenario, "--out", str(linear)]).exit_code == 0
    result = runner.invoke(app, ["curve", scenario, "--out", str(log), "--log",
                                 "--time-scale", "10", "--rate-scale", "0.5"])
    assert result.exit_code == 0, result.output
    png = (log / "traffic.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and png != (linear / "traffic.png").read_bytes()
    _, base_rows = read_csv(linear / "traffic.csv")
    header, rows = read_csv(log / "traffic.csv")
    # A 30-minute scenario replayed 10x faster lasts 180 s; rates are halved.
    assert rows[-1][0] == pytest.approx(180.0)
    peak_order = max(r[header.index("order_rps")] for r in rows)
    base_peak_order = max(r[header.index("order_rps")] for r in base_rows)
    assert peak_order == pytest.approx(0.5 * base_peak_order, rel=1e-4)
    assert peak_table(result.stdout)["order"][0] == pytest.approx(peak_order, abs=0.05)


def test_curve_of_a_bad_scenario_exits_2(tmp_path: Path, runner: CliRunner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: 1\nduration_s: -1\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["curve", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"error: {bad}:3: duration_s: expected a duration > 0, got -1" in result.stderr
    assert not (out / "traffic.csv").exists()
    missing = runner.invoke(app, ["curve", str(tmp_path / "nope.yaml"), "--out", str(out)])
    assert missing.exit_code == 2 and "file not found" in missing.stderr
