"""The corpus of malformed and extreme scenarios (``tests/scenario_corpus.py``), run in a fresh
process so that its peak memory is measured alone: at least 1,000 inputs, no traceback, no
hang (each input is stopped after 60 s), every refusal one line naming the file, the line and
the field, and the whole corpus under 1 GB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_thousand_hostile_scenarios_give_results_or_one_line_each() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scenario_corpus.py"), "--examples", "1000"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout)
    assert counts["inputs"] >= 1000 and counts["fixed"] >= 20
    assert counts["tracebacks"] == 0 and counts["hangs"] == 0, counts["examples"]
    assert counts["bad_lines"] == 0, counts["examples"]
    assert counts["peak_rss_mb"] < 1024
    # the corpus reaches every stage: refusals, runs, and runs refused for their size
    assert counts["refused"] > 0 and counts["ran"] > 0 and counts["run_refused"] > 0
