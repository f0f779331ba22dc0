"""Where tui-stt keeps its files, plus small helpers for writing them safely (core: no Textual).

Every location comes from platformdirs with ``appname="tui-stt", appauthor=False`` and is computed at
call time, so ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``, ``XDG_CACHE_HOME`` and ``XDG_STATE_HOME`` are
honoured on Linux (and tests can point them at a temporary directory). ``TUI_STT_CONFIG`` overrides the
settings file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "tui-stt"
CONFIG_ENV = "TUI_STT_CONFIG"


def config_dir() -> Path:
    """Settings and the saved-key ``.env`` (``~/.config/tui-stt`` on Linux)."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False)


def config_file() -> Path:
    """The settings file: ``$TUI_STT_CONFIG`` when set, else ``config_dir()/settings.toml``."""
    override = os.environ.get(CONFIG_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return config_dir() / "settings.toml"


def data_dir() -> Path:
    """Journals and saved transcripts (``~/.local/share/tui-stt`` on Linux)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def journal_dir() -> Path:
    """Crash-safe JSONL journals, one per session."""
    return data_dir() / "journals"


def default_save_dir() -> Path:
    """Where transcripts are saved when the ``save_dir`` setting is empty."""
    return data_dir() / "transcripts"


def log_dir() -> Path:
    """Log files (``~/.local/state/tui-stt/log`` on Linux)."""
    return platformdirs.user_log_path(APP_NAME, appauthor=False)


def log_file() -> Path:
    return log_dir() / "tui-stt.log"


def cache_dir() -> Path:
    """Downloaded models and other re-creatable files (``~/.cache/tui-stt`` on Linux)."""
    return platformdirs.user_cache_path(APP_NAME, appauthor=False)


def ensure_private_dir(path: Path | str) -> Path:
    """Create ``path`` and any missing parents with mode 0700; existing directories are left alone."""
    path = Path(path).expanduser()
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    return path


_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "it is a directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "file exists",
    errno.EIO: "input/output error",
    errno.EMFILE: "too many open files",
}
if hasattr(errno, "EDQUOT"):
    _REASONS[errno.EDQUOT] = "disk quota exceeded"


def os_error_reason(exc: OSError) -> str:
    """A short lower-case reason for an OS error, e.g. ``no space left on device``."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    if exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def display_path(path: Path | str) -> str:
    """``path`` with the home directory shown as ``~`` (for messages)."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home):]
    return text


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort; not possible on Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically with mode 0600; return the path written.

    The data goes to a temporary file in the same directory, is fsynced, then renamed over ``path``
    (``os.replace``). With ``overwrite=False`` an existing ``path`` is never replaced: ``FileExistsError``
    is raised instead (a hard link makes the check and the rename one atomic step where the file system
    allows it). A symlink at ``path`` is followed, so the link itself survives. On any error the
    temporary file is removed and the ``OSError`` propagates; ``path`` is then untouched.
    """
    path = Path(path)
    if overwrite and path.is_symlink():
        path = path.resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # no hard links here (FAT, some network shares): check, then rename
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
                os.replace(tmp, path)
            else:
                tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return path
