"""Fixtures for the local product's tests: XDG dirs under ``tmp_path/xdg``, a skip when the extra is missing.

The fixture paths and audio helpers are defined in ``tests.support`` and re-exported here for this folder's
tests; ``isolated_xdg`` is ``tests/support/fixtures.py``'s, made autouse for this folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.audio import fixture_script as fixture_script
from tests.support.audio import read_wav as read_wav
from tests.support.paths import FIXTURES as FIXTURES
from tests.support.paths import SAMPLE_TXT as SAMPLE_TXT
from tests.support.paths import SAMPLE_WAV as SAMPLE_WAV
from tui_stt.providers.local_model import missing_reason

needs_local = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")


@pytest.fixture(autouse=True)
def _xdg_under_tmp_path(isolated_xdg: Path) -> Path:
    """The developer's cache and config never leak in (tests that need the folder ask for ``isolated_xdg``)."""
    return isolated_xdg
