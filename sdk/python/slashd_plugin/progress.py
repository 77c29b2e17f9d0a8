"""Capability `progress`: tell the session how a long command is going, and learn that it
was cancelled (then stop soon: the host stops the plugin at its next host call). Raises
:class:`slashd_plugin.HostError` when the host refuses."""

from __future__ import annotations

from typing import Optional

from ._host import call

__all__ = ["report", "cancelled"]


def report(text: str, fraction: Optional[float] = None) -> None:
    """Send `command_progress` to the session; `fraction` is 0.0..1.0 (clamped by the host)."""
    call(lambda b: b.progress.report, str(text), None if fraction is None else float(fraction))


def cancelled() -> bool:
    """True once the invoker or an admin cancelled this call."""
    return bool(call(lambda b: b.progress.cancelled))
