"""Command line entry point: ``tui-stt`` (dashboard or headless) and ``tui-stt export``.

Kept light: nothing heavy (Textual, SDKs, decibri, numpy) is imported before it is needed, so
``tui-stt --help`` is fast.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from tui_stt import __version__

EXPORT_FORMATS = ("txt", "md", "json", "srt", "vtt")  # tui_stt.formats.FORMATS, without the import

DESCRIPTION = """\
A terminal dashboard for live speech-to-text. Streams your microphone (or a WAV/FLAC/AIFF file) to
Deepgram Nova-3, Deepgram Flux, AssemblyAI Universal-3 Pro streaming, or an offline local model, and shows
the mic level, live partials, the committed transcript and connection events.
"""

EPILOG = """\
subcommands:
  tui-stt export JOURNAL --format {txt,md,json,srt,vtt} [--output PATH]
                        turn a session journal (JSONL, written as you talk) into a transcript file

environment (or .env in the current directory, then in the config directory):
  DEEPGRAM_API_KEY      key for nova-3 and flux
  ASSEMBLYAI_API_KEY    key for u3-rt-pro
  DEEPGRAM_URL          Deepgram base URL (like --deepgram-url)
  ASSEMBLYAI_URL        AssemblyAI base URL (like --assemblyai-url)
  TUI_STT_CONFIG        settings file (like --config)

examples:
  tui-stt                                  dashboard; the microphone, or the built-in sample without one
  tui-stt --product flux --input talk.wav  replay a recording at real speed to Deepgram Flux
  tui-stt --headless --product nova-3 --input talk.wav --format jsonl > talk.jsonl
  python -m tui_stt.emulators --port 8765 & tui-stt --deepgram-url ws://127.0.0.1:8765

stopping: the first Ctrl+C, SIGTERM or SIGHUP finishes gracefully (the provider flushes; at most ~5 s);
a second one stops at once.

exit status (headless): 0 everything captured was transcribed; 1 the session failed (a missing or refused
key, an unusable input, an outage that outlasted recovery); 2 a bad command-line value (one line on stderr
names it); 3 the session ended but some audio was not transcribed (each gap is on stderr and in the
journal); 130 stopped at once by a second interrupt.
"""


def _shown(text: str) -> str:
    """A value the user typed, for a one-line message: quoted, escaped, a very long one cut short."""
    return repr(text if len(text) <= 60 else text[:50] + "...")


def _speed(text: str) -> float:
    if text.strip().lower() in ("max", "inf", "unpaced"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a number above 0 or 'max' (got {_shown(text)})") from None
    if not value > 0 or math.isinf(value) or math.isnan(value):
        raise argparse.ArgumentTypeError(f"--speed takes a number above 0 or 'max' (got {_shown(text)})")
    return value


def _batch_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch-ms takes a whole number of ms (got {_shown(text)})") from None
    if not 20 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"--batch-ms must be from 20 to 1000 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tui-stt", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tui_stt import catalog  # plain dataclasses: cheap

    p.add_argument("--product", choices=list(catalog.PRODUCTS),
                   help="speech-to-text product (default: the last one used; on first run nova-3 with a "
                        "Deepgram key, u3-rt-pro with an AssemblyAI key, else local if installed)")
    p.add_argument("--input", metavar="PATH", type=Path,
                   help="replay a WAV/FLAC/AIFF file (resampled to 16 kHz mono) instead of the microphone")
    p.add_argument("--speed", metavar="X", type=_speed, default=1.0,
                   help="with --input: play X times real time (default 1; 'max' = as fast as possible)")
    p.add_argument("--device", metavar="NAME|INDEX",
                   help="microphone by index or name substring (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    p.add_argument("--headless", action="store_true",
                   help="no dashboard: print each committed turn on stdout, events on stderr")
    p.add_argument("--format", choices=("text", "jsonl"), default="text",
                   help="headless output: text (one line per turn) or jsonl (one JSON object per turn, "
                        "partials included as type=partial)")
    url_examples = {"deepgram": "e.g. wss://my-host or ws://127.0.0.1:8765",
                    "assemblyai": "e.g. wss://streaming.eu.assemblyai.com"}
    for service in catalog.services():  # one endpoint flag per service of the catalog
        if service.url_flag:
            example = url_examples.get(service.name, "e.g. wss://HOST")
            p.add_argument(service.url_flag, metavar="URL",
                           help=f"{service.label} base URL, {example} (env {service.url_env})")
    p.add_argument("--allow-insecure", action="store_true",
                   help="allow unencrypted ws:// to a non-loopback host (your API key travels in clear)")
    p.add_argument("--save-dir", metavar="DIR", type=Path,
                   help="where ctrl+s saves transcripts (default: the save_dir setting, else the data dir)")
    p.add_argument("--config", metavar="PATH", type=Path, help="settings file (default: platform config dir)")
    p.add_argument("-o", "--option", metavar="NAME=VALUE", action="append", default=[],
                   help="set a connect option of the product for this run, e.g. -o endpointing=500 "
                        "(repeatable; see the options editor for names and ranges)")
    p.add_argument("--batch-ms", metavar="MS", type=_batch_ms,
                   help="audio batch size sent to the provider, 20-1000 ms (default 100)")
    p.add_argument("--no-vad", action="store_true", help="do not run the local voice activity detector")
    p.add_argument("--version", action="version", version=f"tui-stt {__version__}")
    return p


def build_export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tui-stt export",
        description="Turn a session journal (the JSONL file tui-stt appends each committed turn to) into a "
                    "transcript file.",
    )
    p.add_argument("journal", metavar="JOURNAL", type=Path, help="journal file (.jsonl)")
    p.add_argument("--format", choices=EXPORT_FORMATS, required=True, help="output format")
    p.add_argument("--output", metavar="PATH", type=Path,
                   help="output file, or - for stdout (default: next to the journal, same name)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["export"]:
            return run_export(build_export_parser().parse_args(args_list[1:]))
        args = build_parser().parse_args(args_list)
        if args.list_devices:
            return run_list_devices()
        from tui_stt.app_config import ConfigProblem, build_run_config

        try:
            run = build_run_config(args)
        except ConfigProblem as exc:
            print(f"tui-stt: {exc}", file=sys.stderr)
            return 2
        if args.headless:
            from tui_stt.headless import run_headless

            return run_headless(run)
        from tui_stt.ui.app import run_app

        return run_app(run)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def run_list_devices() -> int:
    from tui_stt.app_config import setup_logging
    from tui_stt.audio.sources import AudioInputError, list_input_devices

    log_path = setup_logging()
    try:
        devices = list_input_devices(log_path)
    except AudioInputError as exc:
        print(f"tui-stt: {exc}", file=sys.stderr)
        return 1
    if not devices:
        print("tui-stt: no audio input device found (use --input FILE to replay a recording)", file=sys.stderr)
        return 1
    for d in devices:
        print(f"{d.index:3d}  {d.name}{'  (default)' if d.is_default else ''}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from tui_stt.export import ExportError, render, write_export
    from tui_stt.journal import JournalError, read_journal_full

    try:
        journal = read_journal_full(args.journal)
        turns, gaps = journal.turns, journal.gaps
    except (JournalError, OSError) as exc:
        print(f"tui-stt export: {exc}", file=sys.stderr)
        return 1
    if args.output is not None and str(args.output) == "-":
        sys.stdout.write(render(turns, args.format, gaps=gaps))
        return 0
    try:
        if args.output is None:
            path = write_export(turns, args.format, args.journal.parent, stem=args.journal.stem, gaps=gaps)
        else:
            path = write_export(turns, args.format, args.output.parent or Path("."),
                                stem=args.output.stem if args.output.suffix.lstrip(".") == args.format
                                else args.output.name, gaps=gaps)
    except ExportError as exc:
        print(f"tui-stt export: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
