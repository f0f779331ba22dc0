"""Batch limits for the audio sent to a provider (core, no Textual).

The audio is cut in one place: ``ReplayBuffer.next_piece`` (``tui_stt.replay``) cuts pieces of the
configured batch size from the held audio, inside the product's chunk limits (``tui_stt.catalog``), and
folds a last remainder shorter than ``MIN_TAIL_MS`` into the piece before it (or drops it when it stands
alone: providers refuse or ignore chunks that short).
"""

from __future__ import annotations

MIN_BATCH_MS = 20
MAX_BATCH_MS = 1000
MIN_TAIL_MS = 50  # providers reject (AssemblyAI) or ignore chunks shorter than this
