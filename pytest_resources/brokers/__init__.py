"""Real brokers for tests: one provider chain per broker kind, resolved once per session.

The chain is explicit URL → user hook → container → local binary → fakeredis (Redis only,
mode ``auto``) → skip with the reasons. Nothing in this package imports pytest except
``options``, ``settings`` and ``hookspec``; broker clients and testcontainers are imported
lazily by the code that needs them.
"""
