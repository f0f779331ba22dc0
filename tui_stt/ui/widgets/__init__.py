from tui_stt.ui.widgets.events_log import EventsLog
from tui_stt.ui.widgets.mic_level import MicLevel
from tui_stt.ui.widgets.partial import PartialView
from tui_stt.ui.widgets.status import StatusLine
from tui_stt.ui.widgets.transcript_view import TranscriptView

__all__ = ["EventsLog", "MicLevel", "PartialView", "StatusLine", "TranscriptView"]
