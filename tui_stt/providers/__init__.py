"""Provider connections (Deepgram Nova-3, Deepgram Flux, AssemblyAI u3-rt-pro, local) behind one interface.

Importing this package is cheap; the SDK modules are imported only when a connection is made. What each
product is (its options, its connection class, its key) is in ``tui_stt.catalog``.
"""
