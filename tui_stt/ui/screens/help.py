"""Help: keys and what each pane shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tui-stt

*Press escape (or q, or ?) to close.*

| key | action |
|---|---|
{keys}
| `^p` | command palette: every action above, the save formats, "Save options as defaults" |

**Panes.** *Mic level*: the input's RMS level in dBFS with a peak-hold tick, its recent history, whether the
voice activity detector hears speech, and a clipping warning. *Live*: the partial (not yet final) text of the
turn being spoken; **tentative** text is a likely end of turn (Flux EagerEndOfTurn) that may still resume.
*Transcript*: committed text with the audio time each turn started. *Events*: connection events, options
applied (in-session or by reconnect), reconnects and errors.

Options marked *live* change in-session while you talk; the others reconnect without losing audio.
Every committed turn is also written at once to a journal file (see the events pane); `tui-stt export`
turns a journal into txt, md, json, srt or vtt. Keys can be remapped in the settings file under `[keymap]`
using the binding ids below.

"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, bindings: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = bindings

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"| `{key}` | {desc} (id `{bid}`) |" for key, desc, bid in self.rows)
        with VerticalScroll():
            yield Markdown(HELP.format(keys=keys))

    def action_close(self) -> None:
        self.dismiss(None)
