"""Capability `jobs`: the caller's running commands (generated `job` records: id, command,
user_id, user_name, session_id, started_at, text, fraction). Raises
:class:`slashd_plugin.HostError` when the host refuses."""

from __future__ import annotations

from typing import Any, List

from ._host import call

__all__ = ["list_mine", "cancel"]


def list_mine() -> List[Any]:
    """The caller's running commands (every user's, for an admin)."""
    return list(call(lambda b: b.jobs.list_mine))


def cancel(id: str) -> None:
    """Cancel a running command by its invocation id: the caller's own, or anyone's for an
    admin."""
    call(lambda b: b.jobs.cancel, id)
