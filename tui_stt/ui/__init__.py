"""The Textual dashboard: a thin layer that turns core events into widgets."""
