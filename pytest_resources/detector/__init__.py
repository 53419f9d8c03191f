"""The leak detector: settings, the per-test window and verdict, probes, reports.

``pytest_resources.plugin`` wires pytest's hooks to this package; nothing here is imported by
the components or the brokers.
"""
