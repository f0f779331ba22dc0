"""The Textual dashboard: a thin layer that turns core events into widgets."""

import os

# Repaint up to 120 times a second: Textual's default of 60 adds up to 17 ms before any update is shown. The
# screen's update timer only runs when something changed, so an idle dashboard costs nothing more. Set here,
# before Textual is imported (it reads TEXTUAL_FPS once); a user's own TEXTUAL_FPS wins.
os.environ.setdefault("TEXTUAL_FPS", "120")
