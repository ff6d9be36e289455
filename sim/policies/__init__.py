"""Autoscaling policies: pure decisions the engine asks for (see autoscaling.py)."""
