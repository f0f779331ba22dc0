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
  tui-stt takes [--json]
                        list the recorded takes (date, product, duration, turns, latency p50)
  tui-stt compare --products nova-3,flux,u3-rt-pro [--lane 'nova-3 endpointing=1000'] [--input FILE|TAKE]
                        the same audio through up to 4 lanes at once; per-lane turns, latency, differences

takes: every run is a take folder in the data dir (takes/<date>-<product>/: audio.wav, journal.jsonl,
events.jsonl with every server message, take.json with the latency summary). --input TAKE_FOLDER replays
a take's audio through any product and options; --no-record keeps everything but the audio.

environment (or .env in the current directory, then in the config directory):
  DEEPGRAM_API_KEY      key for nova-3 and flux
  ASSEMBLYAI_API_KEY    key for u3-rt-pro
  DEEPGRAM_URL          Deepgram base URL (like --deepgram-url)
  ASSEMBLYAI_URL        AssemblyAI base URL (like --assemblyai-url)
  TUI_STT_CONFIG        settings file (like --config)

examples:
  tui-stt                                  dashboard; the microphone, or the built-in sample without one
  tui-stt --product flux --input talk.wav  replay a recording at real speed to Deepgram Flux
  tui-stt --product u3-rt-pro -p patient   AssemblyAI, waiting through long pauses before ending a turn
  tui-stt --show-code --product flux -p snappy > flux_mic.py
                                           the same connection as a standalone Python program
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
    p.add_argument("-p", "--preset", metavar="NAME",
                   help="turn-taking preset for this run: snappy, balanced, patient (the same on every "
                        "product), or one of yours from the settings file ([presets.NAME.PRODUCT]); "
                        "-o options win over it")
    p.add_argument("--show-code", action="store_true",
                   help="print a Python program (decibri microphone + the product's official SDK) that "
                        "connects with this run's product and options (--product, -p, -o, settings), and exit")
    p.add_argument("--batch-ms", metavar="MS", type=_batch_ms,
                   help="audio batch size sent to the provider, 20-1000 ms (default 100)")
    p.add_argument("--vad", choices=("silero", "energy", "off"),
                   help="voice activity detector for the speaking indicator and the end-of-speech -> final "
                        "latency: silero (decibri's Silero model, accurate in noise, ~40 MB), energy (a level "
                        "threshold, light, for quiet rooms and recordings) or off (default: settings, silero)")
    p.add_argument("--no-vad", action="store_true", help="the same as --vad off")
    p.add_argument("--no-record", action="store_true",
                   help="do not keep this run's audio in its take folder (the journal, raw event log and "
                        "take.json are still written)")
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
        if args_list[:1] == ["takes"]:
            return run_takes(build_takes_parser().parse_args(args_list[1:]))
        if args_list[:1] == ["compare"]:
            return run_compare_cli(build_compare_parser().parse_args(args_list[1:]))
        args = build_parser().parse_args(args_list)
        if args.list_devices:
            return run_list_devices()
        if args.show_code:
            return run_show_code(args)
        if not args.headless:
            return run_dashboard(args)
        from tui_stt.app_config import ConfigProblem, build_run_config

        try:
            run = build_run_config(args)
        except ConfigProblem as exc:
            print(f"tui-stt: {exc}", file=sys.stderr)
            return 2
        from tui_stt.headless import run_headless

        return run_headless(run)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def run_dashboard(args: argparse.Namespace) -> int:
    """The dashboard. Python's cyclic garbage collector is paused from here to the first frame: start-up only
    allocates (modules, classes, widgets), and the full collection the allocation count would trigger on the
    way (~20 ms) would find next to nothing to free. The app turns it back on once that frame is drawn
    (``run_app(resume_gc=True)``), and at the latest it is back on when this returns."""
    import gc

    from tui_stt.app_config import ConfigProblem, build_run_config

    paused = gc.isenabled()
    gc.disable()
    try:
        try:
            run = build_run_config(args)
        except ConfigProblem as exc:
            print(f"tui-stt: {exc}", file=sys.stderr)
            return 2
        from tui_stt.ui.app import run_app

        return run_app(run, resume_gc=paused)
    finally:
        if paused:
            gc.enable()


def run_show_code(args: argparse.Namespace) -> int:
    """``--show-code``: the program on stdout, the settings file's warnings on stderr; no session."""
    from tui_stt.app_config import ConfigProblem, show_code_config
    from tui_stt.showcode import snippet

    try:
        product, options, warnings = show_code_config(args)
    except ConfigProblem as exc:
        print(f"tui-stt: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"tui-stt: {warning}", file=sys.stderr)
    sys.stdout.write(snippet(product, options))
    return 0


def build_takes_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tui-stt takes",
                                description="List the recorded takes, oldest first. Replay one with "
                                            "tui-stt --input FOLDER (any product, any options).")
    p.add_argument("--json", action="store_true", help="one JSON object per take")
    p.add_argument("--dir", metavar="DIR", type=Path, help="takes folder (default: the data dir's takes/)")
    return p


def run_takes(args: argparse.Namespace) -> int:
    import json

    from tui_stt import paths
    from tui_stt.takes import list_takes, takes_dir

    root = args.dir or takes_dir()
    infos = list_takes(root)
    if args.json:
        for t in infos:
            print(json.dumps({"folder": str(t.folder), "product": t.product, "started_at": t.started_at,
                              "audio_seconds": t.audio_seconds, "turns": t.turns,
                              "eos_to_final_p50_ms": t.latency_p50_ms, "has_audio": t.has_audio,
                              "source": t.source, "options": t.options, "first_words": t.first_words}))
        return 0
    if not infos:
        print(f"tui-stt: no takes in {paths.display_path(root)}", file=sys.stderr)
        return 0
    print(f"{'take':<34} {'product':<10} {'length':>7} {'turns':>5} {'p50':>7}  first words")
    for t in infos:
        length = "-" if t.audio_seconds is None else f"{t.audio_seconds:.1f}s"
        p50 = "-" if t.latency_p50_ms is None else f"{t.latency_p50_ms:.0f}ms"
        audio = "" if t.has_audio else " (no audio)"
        print(f"{t.name:<34} {t.product:<10} {length:>7} {t.turns if t.turns is not None else '-':>5} "
              f"{p50:>7}  {t.first_words[:40]}{audio}")
    print(f"\n{paths.display_path(root)}  (replay: tui-stt --input {paths.display_path(root)}/NAME)")
    return 0


def build_compare_parser() -> argparse.ArgumentParser:
    p = build_parser()
    p.prog = "tui-stt compare"
    p.description = ("Run the same audio through up to 4 lanes at once (one capture, one connection per lane) "
                     "and print, per lane: turns, words, first-text and end-of-speech -> final latency "
                     "(p50/p95), gaps and the word difference to lane 1 (or the WER against --reference). "
                     "Turns print as they arrive, prefixed with their lane.")
    p.epilog = ("examples:\n  tui-stt compare --products nova-3,flux,u3-rt-pro --input talk.wav\n"
                "  tui-stt compare --lane 'nova-3 endpointing=300' --lane 'nova-3 endpointing=1000' "
                "--input TAKE_FOLDER\n")
    p.add_argument("--products", metavar="A,B,...", help="one lane per product, with its current options")
    p.add_argument("--lane", metavar="'PRODUCT NAME=VALUE ...'", action="append", default=[],
                   help="one lane: a product and options of its own (repeatable)")
    p.add_argument("--reference", metavar="FILE", type=Path, help="reference text: report each lane's WER")
    p.add_argument("--json", metavar="PATH", type=Path, help="also write the summary here (it is always "
                                                              "written as compare.json in the compare folder)")
    return p


def run_compare_cli(args: argparse.Namespace) -> int:
    from tui_stt.app_config import ConfigProblem, build_run_config
    from tui_stt.compare import CompareError, parse_lanes

    try:
        lanes = parse_lanes(args.products, args.lane)
        reference = None
        if args.reference is not None:
            try:
                reference = args.reference.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CompareError(f"--reference {args.reference}: cannot read it ({exc})") from None
        args.product = lanes[0].product
        args.headless = True
        run = build_run_config(args)
    except (CompareError, ConfigProblem) as exc:
        print(f"tui-stt compare: {exc}", file=sys.stderr)
        return 2
    from tui_stt.headless import run_compare_headless

    return run_compare_headless(run, lanes, reference=reference, json_path=args.json)


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
        turns, gaps, latency = journal.turns, journal.gaps, journal.latency
    except (JournalError, OSError) as exc:
        print(f"tui-stt export: {exc}", file=sys.stderr)
        return 1
    if args.output is not None and str(args.output) == "-":
        sys.stdout.write(render(turns, args.format, gaps=gaps, latency=latency))
        return 0
    try:
        if args.output is None:
            path = write_export(turns, args.format, args.journal.parent, stem=args.journal.stem, gaps=gaps,
                                latency=latency)
        else:
            path = write_export(turns, args.format, args.output.parent or Path("."),
                                stem=args.output.stem if args.output.suffix.lstrip(".") == args.format
                                else args.output.name, gaps=gaps, latency=latency)
    except ExportError as exc:
        print(f"tui-stt export: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
