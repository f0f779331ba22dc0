"""Provider sessions (Deepgram Nova-3, Deepgram Flux, AssemblyAI u3-rt-pro, local) behind one interface.

Importing this package is cheap; the SDK modules are imported only when a connection is made.
"""

from tui_stt.providers.options import PRODUCTS, OptionError, OptionSpec, ProductSpec, validate_options

__all__ = ["PRODUCTS", "OptionError", "OptionSpec", "ProductSpec", "validate_options"]
