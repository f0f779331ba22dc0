"""tui-stt: a terminal dashboard for live speech-to-text.

Importing the package is cheap: nothing heavy (Textual, the SDKs, decibri) is imported here.
"""

__version__ = "0.1.0"
APP_NAME = "tui-stt"
