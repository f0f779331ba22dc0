from tui_stt.ui.screens.help import HelpScreen
from tui_stt.ui.screens.key import KeyScreen
from tui_stt.ui.screens.product import ProductScreen

__all__ = ["HelpScreen", "KeyScreen", "ProductScreen"]
