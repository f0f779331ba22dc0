"""From command line + settings file + environment to one resolved run configuration (core, no Textual).

Shared by the headless runner and the dashboard so both choose products, keys, URLs, inputs and
options the same way.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import paths
from tui_stt.providers.options import CLOUD_PRODUCTS, PRODUCTS, OptionError, show_value, validate_options
from tui_stt.urls import UrlError, check_url

log = logging.getLogger("tui_stt")


class ConfigProblem(Exception):
    """A bad command line value: the message (one line) is shown as is and the program exits 2."""


def shown_path(path: Path | str) -> str:
    """A path for a one-line message: control characters escaped, a very long one cut in the middle."""
    text = str(path)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 200 else f"{text[:100]}...{text[-80:]} ({len(text)} characters)"


def _path_problem(path: Path, *, want_dir: bool, missing_ok: bool) -> str | None:
    """Why ``path`` cannot be used as a file (``want_dir``: a folder), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None if missing_ok else "no such file"
    except OSError as exc:
        return paths.os_error_reason(exc)
    except ValueError:
        return "the path contains a NUL character"
    if want_dir and not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if not want_dir and stat.S_ISDIR(info.st_mode):
        return "is a directory, not an audio file"
    return None


def _expand(path: Path | str) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~user for a user that does not exist
        return Path(path)


def check_input_path(path: Path) -> Path:
    """``--input``: an existing file, or a take folder with its audio; raises ConfigProblem naming the path."""
    problem = _path_problem(path, want_dir=False, missing_ok=False)
    if problem and problem.startswith("is a directory"):  # a take folder? (tui_stt.takes only for a folder)
        from tui_stt.takes import TakeError, is_take_dir, take_audio

        if is_take_dir(path):
            try:
                take_audio(path)
            except TakeError as exc:
                raise ConfigProblem(f"--input {shown_path(path)}: {exc}") from None
            return path
        problem += " or a take folder (no take.json in it)"
    if problem:
        raise ConfigProblem(f"--input {shown_path(path)}: {problem}")
    return path


def check_save_dir(path: Path, flag: str = "--save-dir") -> Path:
    """A folder to save into: it may not exist yet, but nothing else may be in its place."""
    expanded = _expand(path)
    problem = _path_problem(expanded, want_dir=True, missing_ok=True)
    if problem:
        raise ConfigProblem(f"{flag} {shown_path(path)}: {problem}")
    return expanded


def checked_url(given: str | None, flag: str, secrets: Any, var: str) -> str | None:
    """``--deepgram-url`` (or its environment variable ``var``) checked at start-up; ConfigProblem if bad.

    Only the form is checked here (ws:// or wss://, a host, a port in range, no user name or password);
    plain ws:// to a remote host is refused when connecting, unless --allow-insecure.
    """
    if given is not None and given.strip():
        value, source = given, flag
    else:
        value = secrets.get(var)
        if not value:
            return None
        source = secrets.describe_source(var)
    try:
        return check_url(value, allow_insecure=True, source=source)
    except UrlError as exc:
        raise ConfigProblem(str(exc)) from None


@dataclass
class RunConfig:
    product: str
    options: dict[str, dict[str, Any]]  # product -> validated options
    settings: Any  # tui_stt.settings.Settings
    secrets: Any  # tui_stt.secrets.Secrets
    input_path: Path | None = None
    speed: float = 1.0
    device: str | None = None
    output_format: str = "text"
    deepgram_url: str | None = None
    assemblyai_url: str | None = None
    urls: dict[str, str | None] = field(default_factory=dict)  # service name -> endpoint override
    allow_insecure: bool = False
    save_dir: Path = field(default_factory=paths.default_save_dir)
    save_format: str = "txt"
    batch_ms: int = 100
    vad: bool = True
    vad_model: str = "silero"  # decibri's detector when ``vad``: "silero" or "energy"
    log_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    cli_options: dict[str, Any] = field(default_factory=dict)
    record: bool = True  # keep each take's audio (--no-record: journal, wire log and summary only)
    takes_root: Path | None = None  # None: tui_stt.takes.takes_dir()
    preset: str | None = None  # -p/--preset: applied over the settings (every product that has it), under -o

    def service_urls(self) -> dict[str, str | None]:
        """Endpoint override per catalog service (the two built-in fields fill in what ``urls`` lacks)."""
        out = dict(self.urls)
        out.setdefault("deepgram", self.deepgram_url)
        out.setdefault("assemblyai", self.assemblyai_url)
        return out

    def options_for(self, product: str) -> dict[str, Any]:
        if product not in self.options:
            self.options[product] = self.settings.product_options(product)
        return self.options[product]


class _RedactSecrets(logging.Filter):
    """The log file gets the same redaction step as events: known keys and credential-looking text."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        from tui_stt.redact import Redactor

        self.redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = self.redactor.text(text)
        if clean is not text and clean != text:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            shown = self.redactor.text(str(record.exc_info[1]))
            if shown != str(record.exc_info[1]):
                record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__}: {shown})"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


_HANDLER_NAME = "tui-stt log file"


def setup_logging(secrets: list[str] | None = None) -> Path:
    """Everything (ours, the SDKs', websockets') goes to the log file, never to the terminal."""
    path = paths.log_file()
    try:
        paths.ensure_private_dir(path.parent)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2,
                                                                        encoding="utf-8")
        path.chmod(0o600)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactSecrets(list(secrets or [])))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        if h.get_name() == _HANDLER_NAME:  # ours from an earlier call: close its file
            h.close()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return path


def default_product(settings: Any, secrets: Any) -> str:
    """Last product used; on a first run the one a key is set for, else the offline one if installed."""
    saved = getattr(settings, "product", None)
    if saved in PRODUCTS and _product_saved(Path(settings.path)):
        return str(saved)
    from tui_stt import catalog

    for name, spec in catalog.PRODUCTS.items():  # the first product whose key is set
        if spec.needs_key and secrets.key_for(name):
            return name
    for name, spec in catalog.PRODUCTS.items():  # else the first that needs no key and can run here
        if not spec.needs_key and not spec.missing_reason():
            return name
    return next(iter(catalog.PRODUCTS))


def _product_saved(path: Path) -> bool:
    """Whether the settings file names a product (a first run has none)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            app = tomllib.load(f).get("app")
    except (OSError, ValueError, RecursionError):
        return False
    product = app.get("product") if isinstance(app, dict) else None
    return isinstance(product, str) and product.strip() in PRODUCTS


def parse_option_args(product: str, items: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    spec = PRODUCTS[product]
    for item in items:
        if "=" not in item:
            raise ConfigProblem(f"-o/--option takes NAME=VALUE (got {show_value(item)})")
        name, value = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if not name.isprintable() or len(name) > 100:
            raise ConfigProblem(f"-o/--option: {show_value(name)} is not an option name of {product}")
        try:
            opt = spec.option(name)
            raw[name] = opt.parse(value, product)
        except OptionError as exc:
            raise ConfigProblem(str(exc)) from None
    return raw


def run_options(product: str, settings: Any, preset: str | None,
                cli_options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every product's options for a run: the settings, then ``preset`` (on every product that has it; the
    chosen ``product`` must), then ``cli_options`` (``-o``, the chosen product's), which win.

    Raises ConfigProblem (one line) for a preset ``product`` does not have, or a bad value.
    """
    from tui_stt.presets import PresetError, preset_names, preset_options

    user = getattr(settings, "presets", None)
    options: dict[str, dict[str, Any]] = {}
    for name in PRODUCTS:
        options[name] = settings.product_options(name)
        if preset is not None and name != product and preset in preset_names(name, user):
            try:
                options[name] = {**options[name], **preset_options(name, preset, user)}
            except PresetError:
                pass  # a broken user preset of another product: that product keeps its settings
    chosen: dict[str, Any] = {}
    if preset is not None:
        try:
            chosen = preset_options(product, preset, user)
        except PresetError as exc:
            raise ConfigProblem(f"-p/--preset: {exc}") from None
    try:
        options[product] = validate_options(product, {**options[product], **chosen, **cli_options})
    except OptionError as exc:
        raise ConfigProblem(str(exc)) from None
    return options


def show_code_config(args: argparse.Namespace) -> tuple[str, dict[str, Any], list[str]]:
    """``--show-code``: the product and its options as a run would choose them (no logging, no checks of
    inputs or URLs), and the settings file's warnings. Raises ConfigProblem like ``build_run_config``."""
    from tui_stt.secrets import load_secrets
    from tui_stt.settings import load_settings

    settings = load_settings(args.config)
    product = args.product or default_product(settings, load_secrets())
    cli_options = parse_option_args(product, list(args.option or []))
    options = run_options(product, settings, getattr(args, "preset", None), cli_options)
    return product, options[product], list(settings.warnings)


def build_run_config(args: argparse.Namespace) -> RunConfig:
    from tui_stt.secrets import load_secrets
    from tui_stt.settings import load_settings

    settings = load_settings(args.config)
    secrets = load_secrets()
    log_path = setup_logging(secrets.values())
    product = args.product or default_product(settings, secrets)
    cli_options = parse_option_args(product, list(args.option or []))
    preset = getattr(args, "preset", None)
    options = run_options(product, settings, preset, cli_options)
    if args.input is not None:
        check_input_path(args.input)
    from tui_stt import catalog

    urls: dict[str, str | None] = {}
    for service in catalog.services():  # each service's endpoint override: its flag, else its variable
        if service.url_flag and service.url_env:
            given = getattr(args, service.url_flag.lstrip("-").replace("-", "_"), None)
            urls[service.name] = checked_url(given, service.url_flag, secrets, service.url_env)
    deepgram_url, assemblyai_url = urls.get("deepgram"), urls.get("assemblyai")
    if args.save_dir is not None:
        save_dir = check_save_dir(args.save_dir)
    else:
        save_dir = paths.default_save_dir()
        if settings.save_dir:
            try:
                save_dir = check_save_dir(Path(settings.save_dir), "app.save_dir:")
            except ConfigProblem as exc:
                settings.warnings.append(f"{paths.display_path(settings.path)}: {exc} (using the default)")
    from tui_stt import settings as settings_module

    vad_mode = "off" if args.no_vad else (
        getattr(args, "vad", None) or settings_module.vad_mode(settings_module.check_vad(settings.vad)))
    return RunConfig(
        product=product,
        options=options,
        settings=settings,
        secrets=secrets,
        input_path=args.input,
        speed=args.speed,
        device=args.device or (settings.device or None),
        output_format=args.format,
        deepgram_url=deepgram_url,
        assemblyai_url=assemblyai_url,
        urls=urls,
        allow_insecure=args.allow_insecure,
        save_dir=save_dir,
        save_format=settings.save_format,
        batch_ms=args.batch_ms or settings.batch_ms,
        vad=vad_mode != "off",
        vad_model=vad_mode if vad_mode != "off" else "silero",
        log_path=log_path,
        warnings=list(settings.warnings),
        cli_options=cli_options,
        record=not getattr(args, "no_record", False),
        preset=preset,
    )


def session_config(run: RunConfig, product: str | None = None) -> Any:
    """SessionConfig for ``product``; raises ProviderError subclasses with a user message (missing key, URL)."""
    from tui_stt.providers.registry import resolve_endpoint
    from tui_stt.session import SessionConfig

    product = product or run.product
    endpoint = resolve_endpoint(product, run.secrets, urls=run.service_urls(), allow_insecure=run.allow_insecure)
    return SessionConfig(product=product, options=run.options_for(product), api_key=endpoint.api_key,
                         base_url=endpoint.base_url, batch_ms=run.batch_ms)


def sample_path() -> Path:
    return Path(__file__).parent / "data" / "sample.wav"


def make_source(run: RunConfig, *, allow_sample: bool = False) -> tuple[Any, str | None]:
    """The audio source for this run, and a note for the user when the built-in sample stands in for a mic.

    Raises AudioInputError (one-line message) when the input cannot be used.
    """
    from tui_stt.audio.sources import AudioInputError, FileSource, MicSource, list_input_devices

    if run.input_path is not None:
        from tui_stt.takes import TakeError, is_take_dir, take_audio

        path = run.input_path
        if is_take_dir(path):  # a take folder: its recorded audio
            try:
                path = take_audio(path)
            except TakeError as exc:
                raise AudioInputError(str(exc)) from None
        speed = None if math.isinf(run.speed) else run.speed
        if path is not run.input_path:
            take_name = f"take {run.input_path.name}"

            class TakeSource(FileSource):
                @property
                def name(self) -> str:
                    return take_name

            return TakeSource(path, speed=speed, vad=run.vad, vad_model=run.vad_model), None
        return FileSource(path, speed=speed, vad=run.vad, vad_model=run.vad_model), None
    try:
        devices = list_input_devices(run.log_path)
    except AudioInputError:
        devices = []
    if devices or not allow_sample:
        return MicSource(run.device, vad=run.vad, vad_model=run.vad_model, log_path=run.log_path), None
    note = ("No microphone found: playing the built-in sample at real speed. Use --input FILE for your own "
            "recording.")
    return FileSource(sample_path(), speed=1.0, vad=run.vad, vad_model=run.vad_model), note


__all__ = ["CLOUD_PRODUCTS", "ConfigProblem", "RunConfig", "build_run_config", "make_source", "session_config",
           "setup_logging"]
