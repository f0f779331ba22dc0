"""The transcript formats tui-stt saves (kept apart so settings and the UI need not import the exporters)."""

FORMATS = ("txt", "md", "json", "srt", "vtt")
