"""The load-testing half of peaksim: the reference shop (``loadtests.shop``) and the Locust
replay of a scenario's traffic.

Modules here may import any package of ``sim/`` but its CLI (``sim/`` never imports them: the
load-test report joins ``sim.report`` through a ``ReportExtension``). Only the locustfile
imports Locust (it runs as a subprocess of the CLI).
"""
