"""Capability `stats`: server statistics (the generated `server-stats` record). Raises
:class:`slashd_plugin.HostError` when the host refuses."""

from __future__ import annotations

from typing import Any

from ._host import call

__all__ = ["get"]


def get() -> Any:
    """uptime_secs, connections, users_online, sessions_active, sessions_total,
    messages_total, messages_last_24h, plugins (name, calls, failures)."""
    return call(lambda b: b.stats.get)
