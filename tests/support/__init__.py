"""Shared test code, imported by every test folder (no test module imports another folder's conftest).

* ``paths``: the fixture files (``FIXTURES``, ``SPEECH``, ``SCRIPT_NAMES``, the package's sample).
* ``fixtures``: pytest fixtures for every folder (``scripts``, ``emulator``, ``emulator_thread``,
  ``restore_logging``, ``isolated_xdg``), registered by ``tests/conftest.py``.
* ``audio``: WAV files and fixture scripts (``write_wav``, ``read_wav``, ``file_pcm``, ``script_texts``).
* ``sessions``: a ``StreamSession`` against an emulator (``make_session``, ``GatedSource``, ``committed``).
* ``cli``: ``python -m tui_stt`` in a subprocess (``cli_env``, ``cli``).
* ``ui``: the dashboard under Pilot (``make_run``, ``FAKE_KEY``).
* ``waiting``: bounded polling (``wait_until`` for a Pilot, ``wait_for`` in plain code).
* ``dummy_product``: a fifth product registered from a test, and a list source.
"""
