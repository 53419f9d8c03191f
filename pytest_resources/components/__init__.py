"""Managed components usable with or without pytest: task manager, state monitor, queues."""
