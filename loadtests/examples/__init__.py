"""Small example targets for load tests and calibration (not the reference shop)."""
