"""Fixtures for the fault, bad-input and secrets tests.

The emulators (``emulator``, ``emulator_thread``, ``scripts``) and ``restore_logging`` come from
``tests/support/fixtures.py``; isolation (XDG directories under ``tmp_path``, no keys or proxies from the
developer's environment, ``NO_PROXY`` for loopback, a scratch working directory) from the autouse fixture
in ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_logging_after_each_test(restore_logging: None) -> None:
    """These tests run ``setup_logging`` (headless runs, the dashboard): pytest's handlers are put back."""
