"""From command line + settings file + environment to one resolved run configuration (core, no Textual).

Shared by the headless runner and the dashboard so both choose products, keys, URLs, inputs and
options the same way.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_stt import paths
from tui_stt.providers.options import CLOUD_PRODUCTS, PRODUCTS, OptionError, validate_options

log = logging.getLogger("tui_stt")


class ConfigProblem(Exception):
    """A bad command line value: the message is shown as is and the program exits 2."""


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
    allow_insecure: bool = False
    save_dir: Path = field(default_factory=paths.default_save_dir)
    save_format: str = "txt"
    batch_ms: int = 100
    vad: bool = True
    log_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    cli_options: dict[str, Any] = field(default_factory=dict)

    def options_for(self, product: str) -> dict[str, Any]:
        if product not in self.options:
            self.options[product] = self.settings.product_options(product)
        return self.options[product]


class _RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for s in self.secrets:
                if s in text:
                    text = text.replace(s, "[REDACTED]")
                    record.msg, record.args = text, None
        return True


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
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
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
    if secrets.deepgram_api_key:
        return "nova-3"
    if secrets.assemblyai_api_key:
        return "u3-rt-pro"
    from tui_stt.providers.local_model import local_available

    return "local" if local_available() else "nova-3"


def _product_saved(path: Path) -> bool:
    """Whether the settings file names a product (a first run has none)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return "product" in tomllib.load(f).get("app", {})
    except (OSError, ValueError):
        return False


def parse_option_args(product: str, items: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    spec = PRODUCTS[product]
    for item in items:
        if "=" not in item:
            raise ConfigProblem(f"-o/--option takes NAME=VALUE (got {item!r})")
        name, value = item.split("=", 1)
        name = name.strip().replace("-", "_")
        try:
            opt = spec.option(name)
            raw[name] = opt.parse(value, product)
        except OptionError as exc:
            raise ConfigProblem(str(exc)) from None
    return raw


def build_run_config(args: argparse.Namespace) -> RunConfig:
    from tui_stt.secrets import load_secrets
    from tui_stt.settings import load_settings

    settings = load_settings(args.config)
    secrets = load_secrets()
    log_path = setup_logging(secrets.values())
    product = args.product or default_product(settings, secrets)
    cli_options = parse_option_args(product, list(args.option or []))
    options: dict[str, dict[str, Any]] = {}
    for name in PRODUCTS:
        options[name] = settings.product_options(name)
    try:
        options[product] = validate_options(product, {**options[product], **cli_options})
    except OptionError as exc:
        raise ConfigProblem(str(exc)) from None
    if args.input is not None and not args.input.exists():
        raise ConfigProblem(f"--input {args.input}: no such file")
    save_dir = args.save_dir or (Path(settings.save_dir).expanduser() if settings.save_dir else
                                 paths.default_save_dir())
    return RunConfig(
        product=product,
        options=options,
        settings=settings,
        secrets=secrets,
        input_path=args.input,
        speed=args.speed,
        device=args.device or (settings.device or None),
        output_format=args.format,
        deepgram_url=args.deepgram_url or secrets.deepgram_url,
        assemblyai_url=args.assemblyai_url or secrets.assemblyai_url,
        allow_insecure=args.allow_insecure,
        save_dir=save_dir,
        save_format=settings.save_format,
        batch_ms=args.batch_ms or settings.batch_ms,
        vad=not args.no_vad and bool(settings.vad),
        log_path=log_path,
        warnings=list(settings.warnings),
        cli_options=cli_options,
    )


def session_config(run: RunConfig, product: str | None = None) -> Any:
    """SessionConfig for ``product``; raises ProviderError subclasses with a user message (missing key, URL)."""
    from tui_stt.providers.registry import resolve_endpoint
    from tui_stt.session import SessionConfig

    product = product or run.product
    if product == "local":
        from tui_stt.providers.local_model import missing_reason

        reason = missing_reason()
        if reason:
            from tui_stt.providers.base import FatalProviderError

            raise FatalProviderError(reason)
    endpoint = resolve_endpoint(product, run.secrets, deepgram_url=run.deepgram_url,
                                assemblyai_url=run.assemblyai_url, allow_insecure=run.allow_insecure)
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
        return FileSource(run.input_path, speed=None if math.isinf(run.speed) else run.speed, vad=run.vad), None
    try:
        devices = list_input_devices(run.log_path)
    except AudioInputError:
        devices = []
    if devices or not allow_sample:
        return MicSource(run.device, vad=run.vad, log_path=run.log_path), None
    note = ("No microphone found: playing the built-in sample at real speed. Use --input FILE for your own "
            "recording.")
    return FileSource(sample_path(), speed=1.0, vad=run.vad), note


__all__ = ["CLOUD_PRODUCTS", "ConfigProblem", "RunConfig", "build_run_config", "make_source", "session_config",
           "setup_logging"]
