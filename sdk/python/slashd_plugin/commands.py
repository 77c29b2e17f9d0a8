"""Capability `commands`: the commands the calling user may run (generated `command-info`
records: name, aliases, summary, usage, min_role, plugin). Raises
:class:`slashd_plugin.HostError` when the host refuses."""

from __future__ import annotations

from typing import Any, List

from ._host import call

__all__ = ["visible"]


def visible() -> List[Any]:
    """The commands the caller's role may run, by name."""
    return list(call(lambda b: b.commands.visible))
