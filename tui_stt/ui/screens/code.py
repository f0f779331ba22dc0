"""Show code (``C``): the Python program for the current product and options (``tui_stt.showcode``), to copy
into the clipboard or save next to the transcripts."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class CodeScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    CodeScreen { align: center middle; }
    CodeScreen > Vertical { width: 95%; height: 95%; border: thick $primary; background: $surface; }
    CodeScreen #code-note { height: auto; padding: 0 1; color: $text-muted; }
    CodeScreen VerticalScroll { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="code.close"),
        Binding("y", "copy", "Copy", id="code.copy"),
        Binding("w", "write", "Save", id="code.save"),
    ]

    def __init__(self, code: str, label: str, save_dir: Path, file_name: str) -> None:
        super().__init__()
        self.code = code
        self.label = label
        self.save_dir = save_dir
        self.file_name = file_name
        self.saved: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"{self.label}: the same connection as a Python program"
            yield Static("y copies it to the clipboard, w saves it with the transcripts, escape closes. The key is "
                         "read from the environment; the program never contains it.", id="code-note")
            with VerticalScroll():
                yield Static(Syntax(self.code, "python", line_numbers=True, word_wrap=False), id="code")
        yield Footer(compact=True)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.code)
        self.notify("copied to the clipboard (a terminal that supports OSC 52 is needed)", timeout=4)

    def action_write(self) -> None:
        from tui_stt import paths

        try:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            target = self.save_dir / self.file_name
            n = 1
            while target.exists():
                target = self.save_dir / f"{Path(self.file_name).stem}-{n}.py"
                n += 1
            paths.atomic_write(target, self.code.encode(), overwrite=False)
        except OSError as exc:
            self.notify(f"could not save the program: {paths.os_error_reason(exc)}", severity="error")
            return
        self.saved = target
        self.notify(f"saved {paths.display_path(target)}", timeout=6)

    def action_close(self) -> None:
        self.dismiss(None)
