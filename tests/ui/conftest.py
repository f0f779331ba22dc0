"""Pilot tests of the dashboard against emulator-backed sessions. The user's own config never leaks in.

Shared fixtures (``emulator``, ``scripts``) come from ``tests/support/fixtures.py``; ``make_run``,
``wait_until`` and the fixture paths are imported from ``tests.support``.
"""
