"""report.html rendered by headless Chromium is a real page, not a blank one (skipped when
``chromium`` is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report_rundir import write_synthetic_run

from sim.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, profile: Path, size: str = "1200,2400") -> None:
    """Render ``page`` headless, with no network services, into ``png``."""
    subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={png}",
         f"--window-size={size}", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=90,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_with_text_plots_and_the_red_verdict(tmp_path: Path) -> None:
    files = write_report(write_synthetic_run(tmp_path / "run"))
    shot = tmp_path / "shot.png"
    screenshot(files.html, shot, tmp_path / "profile")
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2400, 1200)
    grey = pixels.mean(axis=2)
    assert grey.std() > 20  # a blank (or single-colour) page has none
    # Dark text or axes on at least 1% of the page, white background on most of it.
    assert 0.01 < np.mean(grey < 100) < 0.5 and np.mean(grey > 240) > 0.4
    # The missed-SLO verdict box is drawn with its red border (#c00000) near the top.
    top = pixels[:600]
    red = (top[..., 0] > 170) & (top[..., 1] < 40) & (top[..., 2] < 40)
    assert red.sum() > 500
    # The browse traffic line (#1f77b4) of the first embedded plot is on screen.
    blue = (np.abs(pixels - np.array([31, 119, 180])).sum(axis=2) < 40)
    assert blue.sum() > 200
