"""Log through the server's log, tagged with the plugin's name. Always available (no
grant); never raises. Outside a component (no bindings) it writes to stderr."""

from __future__ import annotations

import sys

from . import _bindings

__all__ = ["debug", "info", "warn", "error"]


def _log(level: str, message: object) -> None:
    text = str(message)
    try:
        b = _bindings.load()
    except _bindings.BindingsMissing:
        print(f"[{level}] {text}", file=sys.stderr)
        return
    try:
        b.log.log(getattr(b.log.Level, level.upper()), text)
    except Exception:  # logging must never break a command
        pass


def debug(message: object) -> None:
    _log("debug", message)


def info(message: object) -> None:
    _log("info", message)


def warn(message: object) -> None:
    _log("warn", message)


def error(message: object) -> None:
    _log("error", message)
