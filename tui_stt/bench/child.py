"""What the benchmark runs in its child processes (``python -m tui_stt.bench.child KIND ...``).

* ``dashboard [--preload N] [--hooks] [--exit-on-end] [--out JSON] -- TUI_STT_ARGS``: the real dashboard,
  configured by the real CLI path (``build_parser`` + ``build_run_config``: settings, secrets, logging), run
  as ``run_app`` runs it. The bench-only subclass only adds: ``--preload`` N committed turns in the
  transcript before streaming, ``--hooks`` (send-delay instrumentation, ``tui_stt.bench.hooks``) and
  ``--exit-on-end`` (write the figures and quit when the session ends).
* ``headless [--out JSON] -- TUI_STT_ARGS``: the real headless path (``headless_main``) with the hooks.
* for both, ``--profile PATH`` writes a cProfile of the run (the main thread: the event loop) and ``--memory
  PATH`` traces allocations from the start (``tracemalloc``, slow) and writes, at the end, where the memory
  still held was allocated, by package and by file, with the modules loaded.
* ``console --url URL --input WAV``: the console baseline, shaped like the Deepgram streaming guide: the
  SDK's ``listen.v1.connect``, ``connection.on(EventType.MESSAGE, on_message)``, ``start_listening()``,
  100 ms chunks paced with ``asyncio.sleep``, and ``print`` of the transcript in the callback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import wave
from pathlib import Path
from typing import Any


def _write(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _package(filename: str) -> str:
    """``.../site-packages/rich/text.py`` -> ``rich``; ``.../tui_stt/ui/app.py`` -> ``tui_stt.ui``."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return parts[parts.index(marker) + 1].removesuffix(".py")
    if "tui_stt" in parts:
        i = parts.index("tui_stt")
        return ".".join(parts[i:i + 2]).removesuffix(".py")
    return "stdlib/other" if "python3" in filename or filename.startswith("<") else filename


def write_memory(path: str) -> None:
    """Where the memory still held was allocated (``tracemalloc``, started at ``main``), by package and file."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    by_file = snapshot.statistics("filename")
    packages: dict[str, float] = {}
    for stat in snapshot.statistics("traceback"):
        # the innermost frame that is not the import machinery: a module's code objects and globals count for
        # the package that was imported
        frames = [f.filename for f in reversed(stat.traceback) if "importlib" not in f.filename]
        name = _package(frames[0] if frames else stat.traceback[0].filename)
        packages[name] = packages.get(name, 0.0) + stat.size / 1e6
    _write(path, {
        "traced_mb": round(sum(stat.size for stat in by_file) / 1e6, 2),
        "peak_traced_mb": round(tracemalloc.get_traced_memory()[1] / 1e6, 2),
        "by_package_mb": {k: round(v, 2) for k, v in sorted(packages.items(), key=lambda kv: -kv[1])},
        "top_files_mb": {stat.traceback[0].filename: round(stat.size / 1e6, 3) for stat in by_file[:40]},
        "modules": sorted(sys.modules),
    })


def _profiled(opts: argparse.Namespace, run: Any) -> Any:
    """``run()``, under cProfile if ``--profile`` (written when it returns)."""
    if not opts.profile:
        return run()
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        return run()
    finally:
        profile.disable()
        profile.dump_stats(opts.profile)


def _run_config(argv: list[str]) -> Any:
    from tui_stt.app_config import build_run_config
    from tui_stt.cli import build_parser

    return build_run_config(build_parser().parse_args(argv))


def run_dashboard(opts: argparse.Namespace, argv: list[str]) -> int:
    import time

    from tui_stt import events as ev
    from tui_stt.audio.stderr import move_terminal_off_fd2
    from tui_stt.bench import hooks
    from tui_stt.ui.app import TuiSttApp
    from tui_stt.ui.widgets import StatusLine, TranscriptView

    run = _run_config(argv)
    times = hooks.install() if opts.hooks else None

    class BenchApp(TuiSttApp):
        """The dashboard plus bench hooks; Textual calls these handlers before the app's own ones."""

        CSS_PATH = str(Path(sys.modules[TuiSttApp.__module__].__file__ or "").with_name("app.tcss"))

        def on_mount(self) -> None:
            if opts.preload:
                t0 = time.monotonic()
                view = self.query_one(TranscriptView)
                for i in range(opts.preload):
                    turn = ev.Turn(text=f"Preloaded turn {i}: the quick brown fox jumps over the lazy dog.",
                                   start=i * 3.0, end=i * 3.0 + 2.5, product=run.product, turn_index=i)
                    view.add_turn(self.transcript.add(turn))
                self.query_one(StatusLine).turns = len(self.transcript)
                self.preload_s = time.monotonic() - t0

        def show_event(self, e: ev.Event) -> None:
            super().show_event(e)
            if isinstance(e, ev.Ended) and opts.exit_on_end:
                result: dict[str, Any] = {"ended": e.reason,
                                          "turns": len(self.transcript),
                                          "preload_s": getattr(self, "preload_s", None)}
                if times is not None:
                    result["send"] = hooks.summary(times)
                _write(opts.out, result)
                if opts.memory:
                    write_memory(opts.memory)
                self.call_after_refresh(self.exit, 0)

    app = BenchApp(run)
    with move_terminal_off_fd2(run.log_path):
        _profiled(opts, app.run)
    return 0


def run_headless(opts: argparse.Namespace, argv: list[str]) -> int:
    from tui_stt.bench import hooks
    from tui_stt.headless import headless_main

    run = _run_config(argv)
    times = hooks.install()
    code = _profiled(opts, lambda: asyncio.run(headless_main(run, sys.stdout, sys.stderr)))
    _write(opts.out, {"exit": code, "send": hooks.summary(times)})
    if opts.memory:
        write_memory(opts.memory)
    return int(code)


async def console_main(url: str, wav_path: str, key: str) -> None:
    # The shape of the provider's own streaming example: everything happens in the SDK callback.
    from deepgram import AsyncDeepgramClient
    from deepgram.core.events import EventType
    from deepgram.environment import DeepgramClientEnvironment

    http = url.replace("ws://", "http://")
    env = DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)
    client = AsyncDeepgramClient(api_key=key, environment=env)
    async with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=16000,
                                        interim_results="true") as connection:
        def on_message(message: Any) -> None:
            if getattr(message, "type", None) == "Results":
                transcript = message.channel.alternatives[0].transcript
                if transcript:
                    print(transcript)

        connection.on(EventType.MESSAGE, on_message)
        connection.on(EventType.ERROR, lambda error: print(f"Caught: {error}"))
        listen_task = asyncio.create_task(connection.start_listening())
        with wave.open(wav_path, "rb") as wav:
            while True:
                chunk = wav.readframes(1600)  # 100 ms at 16 kHz
                if not chunk:
                    break
                await connection.send_media(chunk)
                await asyncio.sleep(0.1)
        await connection.send_close_stream()
        await asyncio.wait_for(listen_task, 10)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in args:
        i = args.index("--")
        args, rest = args[:i], args[i + 1:]
    p = argparse.ArgumentParser(prog="python -m tui_stt.bench.child")
    p.add_argument("kind", choices=("dashboard", "headless", "console"))
    p.add_argument("--preload", type=int, default=0)
    p.add_argument("--hooks", action="store_true")
    p.add_argument("--exit-on-end", action="store_true")
    p.add_argument("--out")
    p.add_argument("--url")
    p.add_argument("--input")
    p.add_argument("--key", default="bench-key")
    p.add_argument("--profile", metavar="PATH", help="write a cProfile of the run here")
    p.add_argument("--memory", metavar="PATH", help="trace allocations; write where the memory is held here")
    opts = p.parse_args(args)
    if opts.memory:
        import tracemalloc

        tracemalloc.start(25)
    if opts.kind == "dashboard":
        return run_dashboard(opts, rest)
    if opts.kind == "headless":
        return run_headless(opts, rest)
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(console_main(opts.url, opts.input, opts.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
