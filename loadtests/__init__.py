"""The load-testing half of peaksim: the reference shop (``loadtests.shop``) and the Locust
replay of a scenario's traffic.

Modules here may import ``sim.scenario``, ``sim.traffic`` and ``sim.servicetime``, never the
simulation engine; only the locustfile imports Locust (it runs as a subprocess of the CLI).
"""
