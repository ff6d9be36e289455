"""``peaksim calibrate``: measure a running system, fit the scenario that describes it.

Modules, from the measurement up: ``measure`` (the one path to the load tester: a rate profile
for one service in, per-window measurements out), ``staircase`` (the bounded climb to
saturation), ``steps`` (per-step statistics), ``sources`` (measurements already taken:
``results.jsonl``, Locust CSV), ``distfit`` (service-time distribution and its goodness of fit),
``capacity`` (mean service time, workers, the M/G/c check, overload), ``fit`` (one service
end to end), ``output`` (the calibrated scenario, ``calibration.json``), ``report`` (the
Markdown report, plots and terminal output) and ``run`` (the command). Imports ``sim`` (model,
queueing, plots) and the load tester's runner; ``sim`` never imports this package (only
``sim/cli.py`` does).
"""
