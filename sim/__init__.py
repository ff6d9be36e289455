"""peaksim: peak-traffic load-test and autoscaling simulator (import package ``sim``)."""

__version__ = "0.1.0"
