"""Capability `secrets`: values the admin configures for this plugin (``[plugins.NAME]
secrets``), read from the server's environment or a file. The host hides a secret's value
in the plugin's log lines, errors and replies. Raises :class:`slashd_plugin.HostError`
when the host refuses."""

from __future__ import annotations

from typing import Optional

from ._host import call

__all__ = ["get"]


def get(name: str) -> Optional[str]:
    """The secret named `name`, None when the config names no such secret."""
    return call(lambda b: b.secrets.get, name)
