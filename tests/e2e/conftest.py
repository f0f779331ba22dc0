"""The e2e tests: real SDKs and the headless CLI against the emulators.

Shared fixtures (``emulator``, ``scripts``) come from ``tests/support/fixtures.py``; helpers are imported
from ``tests.support``.
"""
